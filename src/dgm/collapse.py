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

Two measures work for every model of the package, a learned prior or a flow included:
:func:`active_units` (Burda et al. 2016: Cov_x(E_q[z_j | x]) above 0.01) and
:func:`kl_per_dimension_to_prior`, KL(q(z_j | x) || p(z_j)) with p(z_j) the prior's marginal.
"""

from __future__ import annotations

import numpy as np
import torch

from dgm.elbo import ELBOTerms, elbo_terms
from dgm.gaussians import get_normal_KL, get_normal_nll
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


# --------------------------------------------------------------------------- any model's latent use


POSTERIOR_DRAWS = 128  # draws of q(z | x) per example that estimate a flow's posterior mean


def posterior_means(
    model: torch.nn.Module,
    x: torch.Tensor,
    n_samples: int = POSTERIOR_DRAWS,
    batch_size: int = 500,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """E_q[z | x] of each example x (B, ...), and the covariance of its estimation error: (B, d) and
    (d, d), float64.

    For a Gaussian posterior E_q[z | x] is the encoder's mean, exact (the error is zero). For a flow
    (``sample_posterior``) it is the average m_x of ``n_samples`` draws of q(z | x), whose error has
    covariance Cov_q(z | x) / n_samples; the average of that over the examples is returned, estimated
    from the same draws (each x's sample covariance, unbiased).
    """
    if x.dim() < 2 or len(x) == 0:
        raise ValueError(f"need a non-empty batch of examples, got shape {tuple(x.shape)}")
    flow = getattr(model, "sample_posterior", None)
    if flow is not None and n_samples < 2:
        raise ValueError(f"a flow's posterior mean needs n_samples >= 2 draws, got {n_samples}")
    generator = torch.Generator().manual_seed(seed)
    means, within = [], 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            mu_z, log_std_z = model.encode(x[i : i + batch_size])
            if flow is None:
                means.append(mu_z.double())
                continue
            eps = torch.randn((n_samples, *mu_z.shape), generator=generator, dtype=mu_z.dtype).to(mu_z.device)
            z = flow(mu_z, log_std_z, eps)[0].double()  # (S, b, d)
            means.append(z.mean(dim=0))
            centred = z - means[-1]
            within = within + torch.einsum("sbi,sbj->ij", centred, centred) / (n_samples - 1)
    m = torch.cat(means)
    if flow is None:
        return m, torch.zeros(m.shape[1], m.shape[1], dtype=m.dtype, device=m.device)
    return m, within / (len(m) * n_samples)


def posterior_mean_covariance(model: torch.nn.Module, x: torch.Tensor, **kwargs) -> torch.Tensor:
    """Cov_x(E_q[z | x]) over the examples x (B, ...), B >= 2: (d, d), float64.

    From :func:`posterior_means` (``kwargs`` go there): the covariance of the estimated means less the
    average covariance of their estimation error, which would otherwise add to it.
    """
    if len(x) < 2:
        raise ValueError(f"a covariance over examples needs at least two, got {len(x)}")
    return covariance_of_means(*posterior_means(model, x, **kwargs))


def covariance_of_means(means: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
    """The covariance of estimated posterior means (B, d) over the examples, less the average
    covariance (d, d) of their estimation error (:func:`posterior_means`): (d, d)."""
    return torch.cov(means.T).reshape(means.shape[1], means.shape[1]) - error


def active_units(
    model: torch.nn.Module, x: torch.Tensor, threshold: float = 0.01, **kwargs
) -> tuple[int, torch.Tensor]:
    """Burda et al.'s active units: the number of dimensions j with Cov_x(E_q[z_j | x]) > threshold,
    and those variances (d,). ``kwargs`` go to :func:`posterior_mean_covariance`."""
    var = torch.diagonal(posterior_mean_covariance(model, x, **kwargs))
    return int((var > threshold).sum()), var


def active_directions(model: torch.nn.Module, x: torch.Tensor, threshold: float = 0.01, **kwargs) -> int:
    """Directions of the latent space the posterior means use: eigenvalues of Cov_x(E_q[z | x]) above
    ``threshold``. Unlike :func:`active_units` (per coordinate), it does not change when the code is
    rotated."""
    return int((torch.linalg.eigvalsh(posterior_mean_covariance(model, x, **kwargs)) > threshold).sum())


def kl_per_dimension_to_prior(
    model: torch.nn.Module, x: torch.Tensor, n_samples: int = 16, batch_size: int | None = None, seed: int = 0
) -> torch.Tensor:
    """KL(q(z_j | x) || p(z_j)) averaged over the examples x (B, ...), per dimension j: (d,), float64.

    p(z_j) is the prior's marginal in dimension j. For N(0, I) this is :func:`kl_per_dimension`, in
    closed form; for a learned prior that is a mixture of diagonal Gaussians (``prior_mixture``), the
    marginal is a mixture of 1-d Gaussians and the KL is estimated with ``n_samples`` draws of
    q(z_j | x) per example. A flow's marginals q(z_j | x) have no closed form: refused.
    ``batch_size`` examples are encoded at a time (default: about 2^22 numbers of each mixture step).
    """
    if hasattr(model, "sample_posterior"):
        raise ValueError("a flow's posterior marginals q(z_j | x) have no closed form; use active_units")
    mixture = getattr(model, "prior_mixture", None)
    if mixture is None and hasattr(model, "log_prior"):
        raise ValueError("the learned prior's marginals are unknown: the model needs prior_mixture()")
    generator = torch.Generator().manual_seed(seed)
    if batch_size is None:
        size = 1 if mixture is None else n_samples * mixture()[0].numel()  # S * C * d per example
        batch_size = max(1, 2**22 // size)
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            mu_z, log_std_z = (t.double() for t in model.encode(x[i : i + batch_size]))
            if mixture is None:
                total = total + get_normal_KL(mu_z, log_std_z).sum(dim=0)
                continue
            means, log_stds, log_weights = (t.double() for t in mixture())  # (C, d), (C, d), (C,)
            eps = torch.randn((n_samples, *mu_z.shape), generator=generator, dtype=mu_z.dtype).to(mu_z.device)
            z = mu_z + log_std_z.exp() * eps  # (S, b, d)
            log_q = -get_normal_nll(z, mu_z, log_std_z)
            zc = z[..., None].expand(*z.shape, len(log_weights))  # (S, b, d, C): each z_j against each c
            per_component = -get_normal_nll(zc, means.T, log_stds.T) + log_weights
            total = total + (log_q - torch.logsumexp(per_component, dim=-1)).mean(dim=0).sum(dim=0)
    return total / len(x)
