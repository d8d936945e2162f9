"""One report on a trained image VAE: its likelihood bounds on test images and how it uses its code.

:func:`evaluate_image_model` computes, on test images in [-1, 1], bits per dimension from the ELBO
and from L_K (:func:`dgm.bits_per_dim.bits_per_dim`, on the same images), the ELBO's two parts in
nats per image, and, from the posterior means E_q[z | x] (:func:`dgm.collapse.posterior_means`, which
handles flows), the active units and directions and the codes projected onto the plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from dgm.bits_per_dim import BitsPerDim, bits_per_dim
from dgm.collapse import covariance_of_means, posterior_means
from dgm.latent_space import Projection, project_2d


@dataclass(frozen=True)
class ImageModelReport:
    """A trained image VAE on test images (the first ``n_bound`` of them for the bounds)."""

    n_bound: int  # images of both bounds (and so of rate and distortion)
    n_latent_images: int  # images of the latent statistics
    elbo: BitsPerDim  # k = 1: its recon and kl are the distortion and the rate
    bound: BitsPerDim  # from L_K
    active: int  # units j with Cov_x(E_q[z_j | x]) above the threshold (Burda et al. 2016)
    directions: int  # eigenvalues of Cov_x(E_q[z | x]) above the threshold: rotation-invariant
    mean_variance: np.ndarray  # (d,): Cov_x(E_q[z_j | x])
    codes: Projection  # E_q[z | x] of the images, onto their first two principal components
    n_dims: int  # of an image

    @property
    def rate(self) -> float:
        """KL(q(z | x) || p(z)) in nats per image (its estimate)."""
        return self.elbo.kl * self.n_dims * math.log(2)

    @property
    def distortion(self) -> float:
        """E_q[-log p(x | z)] in nats per image (on the [-1, 1] scale)."""
        return self.elbo.recon * self.n_dims * math.log(2)

    @property
    def gap(self) -> float:
        """L_K - ELBO in nats per image: estimates a lower bound on KL(q(z | x) || p(z | x))."""
        return (self.elbo.total - self.bound.total) * self.n_dims * math.log(2)


@torch.no_grad()
def evaluate_image_model(
    model: torch.nn.Module,
    x: torch.Tensor,
    k: int,
    n_bound: int | None = None,
    threshold: float = 0.01,
    batch_size: int = 500,
    seed: int = 0,
) -> ImageModelReport:
    """Evaluate ``model`` on the images x (N, C, H, W) in [-1, 1]: the ELBO and L_k on the first
    ``n_bound`` (None: all), the latent statistics on all of them (N >= 2)."""
    if len(x) < 2:
        raise ValueError(f"need at least two images for the latent statistics, got {len(x)}")
    model.eval()
    bx = x[:n_bound]
    elbo = bits_per_dim(model, bx, batch_size=batch_size, seed=seed)
    bound = bits_per_dim(model, bx, k=k, batch_size=batch_size, seed=seed)
    means, error = posterior_means(model, x, batch_size=batch_size, seed=seed)
    cov = covariance_of_means(means, error)
    var = torch.diagonal(cov)
    return ImageModelReport(
        n_bound=len(bx),
        n_latent_images=len(x),
        elbo=elbo,
        bound=bound,
        active=int((var > threshold).sum()),
        directions=int((torch.linalg.eigvalsh(cov) > threshold).sum()),
        mean_variance=var.cpu().numpy(),
        codes=project_2d(means.cpu().numpy()),
        n_dims=x[0].numel(),
    )
