"""The book's central objective: the ELBO of a Gaussian VAE, and its two terms per example.

For q(z | x) = N(mu_z, diag(std_z^2)), the prior p(z) = N(0, I) and a decoder
p(x | z) = N(mu_x(z), diag(std_x(z)^2)),

    -ELBO(x) = E_q[-log p(x | z)] + KL(q(z | x) || p(z)),

estimated with one reparameterised sample z = mu_z + std_z * eps, eps ~ N(0, I): the first term
(the reconstruction, or distortion) by its value at z, the second (the rate) in closed form.
:func:`negative_elbo_terms` is the formula on tensors; :func:`elbo_terms` runs it through a model's
``encode`` and ``decode``. Every model's ``loss``, the collapse diagnostics, bits per dimension and
the quadrature ELBO use them.
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
    kl_sampled: torch.Tensor | None = None  # (B,): log q(z | x) - log p(z) at z, for a learned prior

    @property
    def kl(self) -> torch.Tensor:
        """KL(q(z | x) || p(z)) per example, in closed form or (learned prior) sampled: (B,)."""
        if self.kl_dims is None:
            if self.kl_sampled is None:
                raise ValueError("ELBOTerms needs kl_dims or kl_sampled")
            return self.kl_sampled
        return self.kl_dims.sum(dim=1)

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
    A model with ``log_prior(z)`` (a learned prior, :mod:`dgm.priors`) or with
    ``sample_posterior(x, eps) -> (z, log q(z | x))`` (a flow, :mod:`dgm.flows`) gets the KL term
    sampled at the same z, ``log q(z | x) - log p(z)``, and no ``kl_dims``.
    """
    log_prior = getattr(model, "log_prior", None)  # a learned prior (dgm.priors), else N(0, I)
    flow = getattr(model, "sample_posterior", None)  # a posterior beyond the Gaussian (dgm.flows)
    mu_z, log_std_z = model.encode(x)
    if generator is not None:
        eps = torch.randn(mu_z.shape, generator=generator, dtype=mu_z.dtype).to(mu_z.device)
    elif log_prior is not None or flow is not None:
        eps = torch.randn_like(mu_z)  # a learned prior's model.prior is not N(0, I)
    else:
        eps = model.prior(x.shape[0])
    if flow is None:
        z = sample_normal(mu_z, log_std_z, eps=eps)  # the reparameterisation: gradients reach the encoder
    else:
        z, log_q = flow(x, eps)
    mu_x, log_std_x = model.decode(z)
    if decoder_log_std is not None:
        log_std_x = decoder_log_std(mu_x)
    terms = negative_elbo_terms(x.to(mu_x.dtype), mu_z, log_std_z, mu_x, log_std_x)
    if log_prior is None and flow is None:
        return terms
    if flow is None:
        log_q = -get_normal_nll(z, mu_z, log_std_z).sum(dim=1)  # (B,)
    if log_prior is None:
        log_p = -get_normal_nll(z, torch.zeros_like(z), torch.zeros_like(z)).sum(dim=1)
    else:
        log_p = log_prior(z)
    return ELBOTerms(recon=terms.recon, kl_dims=None, kl_sampled=log_q - log_p)
