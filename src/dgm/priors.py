"""Learned priors p(z): a mixture of Gaussians in z, and the VampPrior (Tomczak & Welling, 2018).

The standard VAE fixes p(z) = N(0, I). Here the prior has parameters of its own, trained with the
rest of the model on the same ELBO. Its KL term KL(q(z | x) || p(z)) then has no closed form, and is
estimated with the same sample z ~ q(z | x) as the reconstruction: log q(z | x) - log p(z).

- :class:`MixturePrior`: p(z) = sum_c pi_c N(z | m_c, diag(s_c^2)), every m_c, s_c and pi_c learned.
- :class:`VampPrior`: p(z) = (1/C) sum_c q(z | u_c), the encoder's own posterior at C learned
  pseudo-inputs u_c, so that the prior lives where the encoder puts its codes.
- :class:`PriorVAE`: the :class:`dgm.vae.ConvVAE` with either of them. It has ``log_prior(z)``,
  which :func:`dgm.elbo.elbo_terms` and :func:`dgm.iwae.log_importance_weights` use in place of
  the standard normal, and ``sample_prior(n)``, whose draws ``sample`` decodes. ``prior(n)`` stays
  N(0, I): the noise of the reparameterisation, as in every model of the package.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn

from dgm.data import to_image_scale
from dgm.gaussians import get_normal_nll
from dgm.vae import ConvVAE, model_device

Encode = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Mixture = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # means, log_stds (C, d); log_weights (C,)


def mixture_log_prob(z: torch.Tensor, means: torch.Tensor, log_stds: torch.Tensor, log_weights: torch.Tensor):
    """log sum_c w_c N(z | means_c, diag(exp(log_stds_c)^2)): z (..., d), means and log_stds (C, d),
    log_weights (C,) normalised -> (...)."""
    if means.dim() != 2 or log_stds.shape != means.shape or log_weights.shape != means.shape[:1]:
        raise ValueError(
            f"need means and log_stds (C, d) and log_weights (C,), got {tuple(means.shape)}, "
            f"{tuple(log_stds.shape)} and {tuple(log_weights.shape)}"
        )
    if z.shape[-1] != means.shape[1]:
        raise ValueError(f"z has {z.shape[-1]} dimensions, the mixture's components {means.shape[1]}")
    zc = z[..., None, :].expand(*z.shape[:-1], *means.shape)  # (..., C, d): each z against each component
    per_component = -get_normal_nll(zc, means, log_stds).sum(dim=-1)  # (..., C)
    return torch.logsumexp(per_component + log_weights, dim=-1)


def _sample_mixture(n: int, means: torch.Tensor, log_stds: torch.Tensor, log_weights: torch.Tensor):
    """n draws of the mixture (not reparameterised): (n, d)."""
    c = torch.multinomial(log_weights.exp(), n, replacement=True)  # (n,)
    return means[c] + log_stds[c].exp() * torch.randn(
        n, means.shape[1], device=means.device, dtype=means.dtype
    )


class MixturePrior(nn.Module):
    """p(z) = sum_c pi_c N(z | m_c, diag(s_c^2)) with C components in d dimensions, all learned.

    The means start at N(0, init_spread^2) draws, the standard deviations at 1 and the weights equal.
    """

    def __init__(self, n_latent: int, n_components: int, init_spread: float = 1.0) -> None:
        if n_latent < 1 or n_components < 1:
            raise ValueError(f"need n_latent >= 1 and n_components >= 1, got {n_latent}, {n_components}")
        super().__init__()
        self.means = nn.Parameter(init_spread * torch.randn(n_components, n_latent))
        self.log_stds = nn.Parameter(torch.zeros(n_components, n_latent))
        self.logits = nn.Parameter(torch.zeros(n_components))

    def mixture(self, encode: Encode | None = None) -> Mixture:
        """The components' means and log standard deviations (C, d) and log weights (C,).
        ``encode`` is not used (the VampPrior's needs it)."""
        return self.means, self.log_stds, torch.log_softmax(self.logits, dim=0)

    def log_prob(self, z: torch.Tensor, encode: Encode | None = None) -> torch.Tensor:
        """log p(z): (..., d) -> (...)."""
        return mixture_log_prob(z, *self.mixture())

    @torch.no_grad()
    def sample(self, n: int, encode: Encode | None = None) -> torch.Tensor:
        """n draws of p(z): (n, d)."""
        return _sample_mixture(n, *self.mixture())


class VampPrior(nn.Module):
    """p(z) = (1/C) sum_c q(z | u_c): the encoder's posterior at C learned pseudo-inputs u_c.

    The pseudo-inputs have the data's shape and start at N(0, init_spread^2) noise (the data are on
    the [-1, 1] scale); the encoder is passed to each call, so that it is trained once, as the encoder.
    """

    def __init__(self, input_shape: tuple[int, ...], n_components: int, init_spread: float = 0.5) -> None:
        if n_components < 1:
            raise ValueError(f"need n_components >= 1, got {n_components}")
        super().__init__()
        self.pseudo_inputs = nn.Parameter(init_spread * torch.randn(n_components, *input_shape))

    def _log_weights(self, means: torch.Tensor) -> torch.Tensor:
        return torch.full((len(means),), -math.log(len(means)), dtype=means.dtype, device=means.device)

    def components(self, encode: Encode) -> tuple[torch.Tensor, torch.Tensor]:
        """The means and log standard deviations of the components, q(z | u_c): (C, d) each."""
        return encode(self.pseudo_inputs)

    def mixture(self, encode: Encode | None = None) -> Mixture:
        """The components' means and log standard deviations (C, d) and log weights (C,), equal."""
        if encode is None:
            raise ValueError("the VampPrior needs the encoder: pass encode")
        means, log_stds = self.components(encode)
        return means, log_stds, self._log_weights(means)

    def log_prob(self, z: torch.Tensor, encode: Encode | None = None) -> torch.Tensor:
        """log p(z): (..., d) -> (...)."""
        return mixture_log_prob(z, *self.mixture(encode))

    @torch.no_grad()
    def sample(self, n: int, encode: Encode | None = None) -> torch.Tensor:
        """n draws of p(z): (n, d)."""
        return _sample_mixture(n, *self.mixture(encode))


PRIORS = ("mixture", "vamp")


class PriorVAE(ConvVAE):
    """The convolutional VAE with a learned prior: ``kind`` "mixture" (:class:`MixturePrior`) or "vamp".

    Everything else is the :class:`ConvVAE`'s: encoder, decoder, unit-variance likelihood and beta.
    The KL term of ``loss`` is the one-sample estimate log q(z | x) - log p(z) at the z of the
    reconstruction, unbiased for KL(q(z | x) || p(z)).
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_latent: int,
        beta: float = 1,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        kind: str = "mixture",
        n_components: int = 10,
    ) -> None:
        if kind not in PRIORS:
            raise ValueError(f"unknown prior {kind!r}; valid: {', '.join(PRIORS)}")
        super().__init__(input_shape, n_latent, beta, channels)
        self.kind = kind
        self.n_components = int(n_components)
        if kind == "mixture":
            self.learned_prior: nn.Module = MixturePrior(n_latent, n_components)
        else:
            self.learned_prior = VampPrior(self.input_shape, n_components)

    def _encode_raw(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x)

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) of the learned prior: (..., n_latent) -> (...)."""
        return self.learned_prior.log_prob(z, self._encode_raw)

    def prior_mixture(self) -> Mixture:
        """The learned prior as a mixture of diagonal Gaussians: means, log_stds (C, d), log_weights (C,)."""
        return self.learned_prior.mixture(self._encode_raw)

    def sample_prior(self, n: int) -> torch.Tensor:
        """n draws of the learned prior p(z): (n, n_latent), on the model's device."""
        return self.learned_prior.sample(n, self._encode_raw).to(model_device(self))

    @torch.no_grad()
    def sample(self, n: int) -> np.ndarray:
        """n images decoded from draws of the learned prior (decoder means), in [0, 1]: (n, C, H, W)."""
        mu_x, _ = self.decode(self.sample_prior(n))
        return to_image_scale(mu_x)
