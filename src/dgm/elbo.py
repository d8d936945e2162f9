"""The book's central objective: the ELBO of a Gaussian VAE, and its two terms per example.

For q(z | x) = N(mu_z, diag(std_z^2)), the prior p(z) = N(0, I) and a decoder
p(x | z) = N(mu_x(z), diag(std_x(z)^2)),

    -ELBO(x) = E_q[-log p(x | z)] + KL(q(z | x) || p(z)),

estimated with one reparameterised sample z = mu_z + std_z * eps, eps ~ N(0, I): the first term
(the reconstruction, or distortion) by its value at z, the second (the rate) in closed form.
:func:`negative_elbo_terms` is the formula on tensors; :func:`elbo_terms` runs it through a model's
``encode`` and ``decode``. Every model's ``loss``, the collapse diagnostics, bits per dimension and
the quadrature ELBO use them.

Two optional methods go beyond the Gaussians (:func:`posterior_sample`, :func:`log_prior_density`):
a learned prior, ``log_prior(z)`` (:mod:`dgm.priors`), and a posterior pushed through a flow,
``sample_posterior(mu_z, log_std_z, eps) -> (z, log q(z | x))`` (:mod:`dgm.flows`). With either, the
KL term has no closed form and is sampled at the same z: log q(z | x) - log p(z).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from dgm.gaussians import get_normal_KL, get_normal_nll, sample_normal


@dataclass(frozen=True)
class ELBOTerms:
    """The two terms of the negative ELBO of a batch, per example."""

    recon: torch.Tensor  # (B,): -log p(x | z) at the sampled z, summed over the data's dimensions
    kl_dims: torch.Tensor | None  # (B, d): KL(q(z_j | x) || N(0, 1)) of each latent dimension j
    kl_sampled: torch.Tensor | None = None  # (B,): log q(z | x) - log p(z) at z (learned prior, flow)

    def __post_init__(self) -> None:
        if (self.kl_dims is None) == (self.kl_sampled is None):
            raise ValueError("ELBOTerms needs exactly one of kl_dims (closed form) and kl_sampled")

    @property
    def kl(self) -> torch.Tensor:
        """KL(q(z | x) || p(z)) per example, in closed form or (learned prior) sampled: (B,)."""
        return self.kl_sampled if self.kl_dims is None else self.kl_dims.sum(dim=1)

    def losses(self, beta: float = 1.0) -> dict[str, torch.Tensor]:
        """Batch means: ``recon_loss``, ``kl_loss`` and ``elbo_loss = recon_loss + beta * kl_loss``."""
        recon_loss, kl_loss = self.recon.mean(), self.kl.mean()
        return {"elbo_loss": recon_loss + beta * kl_loss, "recon_loss": recon_loss, "kl_loss": kl_loss}


def negative_elbo_terms(
    x: torch.Tensor,
    mu_z: torch.Tensor,
    log_std_z: torch.Tensor,
    mu_x: torch.Tensor,
    log_std_x: torch.Tensor,
) -> ELBOTerms:
    """-log N(x | mu_x, std_x^2) and KL(N(mu_z, std_z^2) || N(0, I)): x, mu_x, log_std_x (B, ...);
    mu_z (B, d).

    ``mu_x`` and ``log_std_x`` are the decoder's outputs at a sample of q(z | x); the result's
    ``recon`` is (B,), its ``kl_dims`` (B, d).
    """
    if mu_z.dim() != 2 or mu_z.shape != log_std_z.shape or x.shape[:1] != mu_z.shape[:1]:
        raise ValueError(
            f"need mu_z, log_std_z of shape (B, d) for x of shape (B, ...), got "
            f"{tuple(mu_z.shape)}, {tuple(log_std_z.shape)} and {tuple(x.shape)}"
        )
    recon = get_normal_nll(x, mu_x, log_std_x).flatten(1).sum(dim=1)
    return ELBOTerms(recon=recon, kl_dims=get_normal_KL(mu_z, log_std_z))


def elbo_terms(
    model: nn.Module,
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    decoder_log_std: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> ELBOTerms:
    """Encode x (B, ...), sample z ~ q(z | x) by reparameterisation, decode, and return the two terms.

    The noise eps ~ N(0, I) is drawn from ``generator`` when one is given, else from torch's global
    stream through ``model.prior`` (as training does). ``decoder_log_std(mu_x)``, when given,
    replaces the decoder's log standard deviation (a decoder whose variance is fitted to the batch).
    A model with a learned prior or a flow (see the module's docstring) gets the KL term sampled at
    the same z, ``log q(z | x) - log p(z)``, and no ``kl_dims``.
    """
    mu_z, log_std_z = model.encode(x)
    if generator is None:
        eps = model.prior(x.shape[0])
    else:
        eps = torch.randn(mu_z.shape, generator=generator, dtype=mu_z.dtype).to(mu_z.device)
    z, log_q = posterior_sample(model, mu_z, log_std_z, eps)  # gradients reach the encoder through z
    mu_x, log_std_x = model.decode(z)
    if decoder_log_std is not None:
        log_std_x = decoder_log_std(mu_x)
    terms = negative_elbo_terms(x.to(mu_x.dtype), mu_z, log_std_z, mu_x, log_std_x)
    if log_q is None and not hasattr(model, "log_prior"):
        return terms  # the closed form
    if log_q is None:
        log_q = -get_normal_nll(z, mu_z, log_std_z).sum(dim=-1)
    return ELBOTerms(recon=terms.recon, kl_dims=None, kl_sampled=log_q - log_prior_density(model, z))


def posterior_sample(
    model: nn.Module, mu_z: torch.Tensor, log_std_z: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """z ~ q(z | x) from the noise eps (..., B, d) and the encoder's outputs (B, d): (z, None) for the
    Gaussian posterior, (z, log q(z | x)) (..., B) for a model with ``sample_posterior`` (a flow)."""
    flow = getattr(model, "sample_posterior", None)
    if flow is None:
        return sample_normal(mu_z, log_std_z, eps=eps), None
    z, log_q = flow(mu_z, log_std_z, eps)
    if z.shape != eps.shape or log_q.shape != eps.shape[:-1]:
        raise ValueError(
            f"sample_posterior must return z {tuple(eps.shape)} and log q {tuple(eps.shape[:-1])}, "
            f"got {tuple(z.shape)} and {tuple(log_q.shape)}"
        )
    return z, log_q


def log_prior_density(model: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """log p(z): the model's ``log_prior`` if it has one (a learned prior), else log N(z | 0, I):
    (..., d) -> (...)."""
    log_prior = getattr(model, "log_prior", None)
    if log_prior is None:
        return -get_normal_nll(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=-1)
    out = log_prior(z)
    if out.shape != z.shape[:-1]:
        raise ValueError(
            f"log_prior must return shape {tuple(z.shape[:-1])} for z of shape {tuple(z.shape)}, "
            f"got {tuple(out.shape)}"
        )
    return out
