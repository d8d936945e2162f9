"""Posterior collapse: measuring which latent dimensions are used, and free bits as a remedy.

A latent dimension j is *collapsed* (inactive) when the encoder's q(z_j | x) equals the prior
N(0, 1) for every x: its KL term is zero and the decoder receives pure noise through it. The
per-dimension KL, averaged over the data, measures this. *Free bits* (Kingma et al. 2016, the
IAF paper) stops the optimiser from pushing a dimension's average KL below ``kappa`` (``free_bits``)
nats: below that budget the KL term has no gradient, so only the reconstruction term acts and
it has every reason to put information in the latent. *KL annealing* (Bowman et al. 2016)
instead weights the KL term by beta_t, raised linearly from 0 to 1 over the first training steps,
so that the decoder learns to use z before the KL term pulls q(z | x) to the prior.
:class:`FreeBitsConvVAE` and :class:`AnnealedConvVAE` are the two remedies on the image model.
"""

from __future__ import annotations

import numpy as np
import torch

from dgm.elbo import ELBOTerms, elbo_terms
from dgm.gaussians import get_normal_KL
from dgm.vae import ConvVAE, VAE2d, check_batch, model_device


def kl_per_dimension(mu_z: torch.Tensor, log_std_z: torch.Tensor) -> torch.Tensor:
    """KL(q(z_j | x) || N(0, 1)) averaged over the batch, one value per latent dimension: (B, d) -> (d,)."""
    if mu_z.dim() != 2 or mu_z.shape != log_std_z.shape or mu_z.shape[0] == 0:
        raise ValueError(
            f"need two non-empty (B, d) tensors, got {tuple(mu_z.shape)} and {tuple(log_std_z.shape)}"
        )
    return get_normal_KL(mu_z, log_std_z).mean(dim=0)


def free_bits_kl(kl_dims: torch.Tensor, free_bits: float) -> torch.Tensor:
    """sum_j max(kappa, KL_j), kappa = free_bits, over the per-dimension average KLs (free bits,
    Kingma et al. 2016): (d,) -> ()."""
    if free_bits < 0:
        raise ValueError(f"free_bits must be >= 0 nats, got {free_bits}")
    if kl_dims.dim() != 1:
        raise ValueError(f"expected per-dimension KLs of shape (d,), got {tuple(kl_dims.shape)}")
    return torch.clamp(kl_dims, min=free_bits).sum()


def free_bits_losses(terms: ELBOTerms, free_bits: float, beta: float = 1.0) -> dict[str, torch.Tensor]:
    """Batch means of the ELBO's terms, ``elbo_loss = recon_loss + beta * kl_loss``, and
    ``free_bits_loss = recon_loss + sum_j max(free_bits, KL_j)`` with KL_j averaged over the batch."""
    recon_loss = terms.recon.mean()
    kl_dims = terms.kl_dims.mean(dim=0)  # (d,): the batch's average KL of each dimension
    kl_loss = kl_dims.sum()
    return {
        "elbo_loss": recon_loss + beta * kl_loss,
        "recon_loss": recon_loss,
        "kl_loss": kl_loss,
        "free_bits_loss": recon_loss + free_bits_kl(kl_dims, free_bits),
    }


class FreeBitsVAE2d(VAE2d):
    """:class:`VAE2d` trained on the free-bits objective: ``loss(x)["free_bits_loss"]``.

    ``elbo_loss``, ``recon_loss`` and ``kl_loss`` are the usual terms (so the true ELBO is still
    monitored); ``free_bits_loss = recon_loss + sum_j max(free_bits, KL_j)``.
    """

    def __init__(
        self,
        n_in: int,
        n_latent: int,
        enc_hidden_sizes: list[int],
        dec_hidden_sizes: list[int],
        free_bits: float,
    ) -> None:
        super().__init__(n_in, n_latent, enc_hidden_sizes, dec_hidden_sizes)
        if free_bits < 0:
            raise ValueError(f"free_bits must be >= 0 nats, got {free_bits}")
        self.free_bits = free_bits

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative ELBO, its terms and the free-bits objective, averaged over the batch."""
        return free_bits_losses(elbo_terms(self, check_batch(x, (self.n_in,), self)), self.free_bits)


class FreeBitsConvVAE(ConvVAE):
    """:class:`ConvVAE` trained on ``free_bits_loss = recon_loss + sum_j max(free_bits, KL_j)``, the
    KL_j averaged over the batch; ``elbo_loss`` (with the model's beta), ``recon_loss`` and
    ``kl_loss`` are the usual terms."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_latent: int,
        beta: float = 1,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        free_bits: float = 0.25,
    ) -> None:
        if free_bits < 0:
            raise ValueError(f"free_bits must be >= 0 nats, got {free_bits}")
        super().__init__(input_shape, n_latent, beta, channels)
        self.free_bits = float(free_bits)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return free_bits_losses(elbo_terms(self, x), self.free_bits, self.beta)


class AnnealedConvVAE(ConvVAE):
    """:class:`ConvVAE` trained on ``annealed_loss = recon_loss + beta_t * kl_loss``, with
    beta_t = beta * min(1, t / warmup_steps) after t training steps.

    A step is a call of ``loss`` in training mode with gradients enabled (as :func:`dgm.training.train_model`
    makes one per batch); the count ``steps_done`` is a buffer, saved with the weights.
    ``elbo_loss`` keeps the model's beta, so the test curves show the objective annealing ends at.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_latent: int,
        beta: float = 1,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        warmup_steps: int = 1000,
    ) -> None:
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or warmup_steps < 1:
            raise ValueError(f"warmup_steps must be a positive integer, got {warmup_steps!r}")
        super().__init__(input_shape, n_latent, beta, channels)
        self.warmup_steps = warmup_steps
        self.register_buffer("steps_done", torch.zeros((), dtype=torch.long))

    def current_beta(self) -> float:
        """beta_t of the next training step."""
        return self.beta * min(1.0, int(self.steps_done) / self.warmup_steps)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = elbo_terms(self, x).losses(self.beta)
        out["annealed_loss"] = out["recon_loss"] + self.current_beta() * out["kl_loss"]
        if self.training and torch.is_grad_enabled():
            self.steps_done += 1
        return out


def diagonal_fit_penalty(cov) -> float:
    """Nats per point lost by the best diagonal Gaussian fit to N(m, cov): 1/2 log(prod_i cov_ii / det cov).

    A VAE whose decoder ignores z models a Gaussian with diagonal covariance; the best of those
    matches the marginal variances, and KL(N(m, cov) || N(m, diag(cov))) is this number.
    """
    cov = torch.as_tensor(cov, dtype=torch.float64)
    if cov.dim() != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"need a square covariance matrix, got shape {tuple(cov.shape)}")
    sign, logdet = torch.linalg.slogdet(cov)
    if sign <= 0 or not torch.allclose(cov, cov.T):
        raise ValueError("the covariance matrix must be symmetric positive definite")
    return float(0.5 * (torch.log(torch.diagonal(cov)).sum() - logdet))


def get_latent_stats(
    model: VAE2d,
    test_data: np.ndarray,
    use_cuda: bool = False,
    batch_size: int = 3000,
    generator: torch.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Means and stds of q(z | x) on a random batch of ``batch_size`` test points:
    two (b, n_latent) arrays."""
    device = torch.device("cuda") if use_cuda else model_device(model)
    if model_device(model) != device:
        raise ValueError(f"the model is on {model_device(model)}, not on {device}; move it or set use_cuda")
    data = torch.as_tensor(test_data)
    if data.dim() != 2 or data.shape[0] == 0:
        raise ValueError(f"test_data must be a non-empty (N, D) array, got shape {tuple(data.shape)}")
    idx = torch.randperm(data.shape[0], generator=generator)[:batch_size]
    with torch.no_grad():  # a homework model has no encode: its forward starts with mu_z, log_std_z
        encode = getattr(model, "encode", None) or (lambda x: model(x)[:2])
        mu_z, log_std_z = encode(data[idx].to(device))
    return mu_z.cpu().numpy(), log_std_z.exp().cpu().numpy()
