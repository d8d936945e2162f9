"""A richer posterior: the inverse autoregressive flow (IAF) of Kingma et al. (2016).

The encoder's Gaussian sample z_0 = mu + sigma * eps is pushed through T invertible steps,

    z_t = s_t * z_{t-1} + (1 - s_t) * m_t,    (m_t, s_t) = MADE_t(z_{t-1}, h),   s_t in (0, 1),

where output i of the masked autoencoder MADE_t depends on the coordinates before i only (in the
step's order; each step reverses the order of the one before) and on a context h from the encoder
(the first output on h alone).
Each step's Jacobian is then triangular with diagonal s_t, so the density of the last sample is

    log q(z_T | x) = log N(z_0 | mu, diag sigma^2) - sum_t sum_i log s_{t,i}.

:class:`IAFVAE` is the :class:`dgm.vae.ConvVAE` with this posterior. It has
``sample_posterior(mu_z, log_std_z, eps) -> (z, log q(z | x))``, which :func:`dgm.elbo.elbo_terms`
and :func:`dgm.iwae.log_importance_weights` use in place of the Gaussian of ``encode``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from dgm.gaussians import get_normal_nll
from dgm.vae import ConvVAE


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor) -> None:
        super().__init__(in_features, out_features)
        if mask.shape != (out_features, in_features):
            raise ValueError(f"the mask must be ({out_features}, {in_features}), got {tuple(mask.shape)}")
        self.register_buffer("mask", mask.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """(z (B, d), h (B, c)) -> m, s_logit (B, d) each, output i a function of z_{<i} and h only.

    Hidden unit k gets a degree in 1..d-1; it sees the inputs of degree <= its own, and output i
    sees the hidden units of degree < i (Germain et al. 2015). The context enters every hidden unit.
    """

    def __init__(self, n_latent: int, n_context: int, hidden: int) -> None:
        if n_latent < 2:
            raise ValueError(f"an autoregressive flow needs n_latent >= 2, got {n_latent}")
        if hidden < n_latent - 1:
            raise ValueError(
                f"need hidden >= n_latent - 1 units (one per degree), got {hidden} for {n_latent}"
            )
        super().__init__()
        d = n_latent
        in_degree = torch.arange(1, d + 1)  # (d,)
        hidden_degree = torch.arange(hidden) % (d - 1) + 1  # (hidden,), in 1..d-1
        self.hidden1 = MaskedLinear(d, hidden, hidden_degree[:, None] >= in_degree[None, :])
        self.hidden2 = MaskedLinear(hidden, hidden, hidden_degree[:, None] >= hidden_degree[None, :])
        out_mask = (in_degree[:, None] > hidden_degree[None, :]).repeat(2, 1)  # (2d, hidden)
        self.out = MaskedLinear(hidden, 2 * d, out_mask)
        self.context = nn.Linear(n_context, hidden)
        self.context_out = nn.Linear(n_context, 2 * d, bias=False)  # h reaches every output directly

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = torch.relu(self.hidden1(z) + self.context(h))
        a = torch.relu(self.hidden2(a))
        m, s_logit = (self.out(a) + self.context_out(h)).chunk(2, dim=-1)
        return m, s_logit


class IAF(nn.Module):
    """T inverse autoregressive steps; ``forward(z0, h) -> (z_T, sum of log s)``, each (B, d) and (B,)."""

    def __init__(self, n_latent: int, n_context: int, n_steps: int = 2, hidden: int = 64) -> None:
        if n_steps < 1:
            raise ValueError(f"need n_steps >= 1, got {n_steps}")
        super().__init__()
        self.steps = nn.ModuleList(MADE(n_latent, n_context, hidden) for _ in range(n_steps))

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_s_sum = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        for t, made in enumerate(self.steps):
            if t > 0:
                z = z.flip(-1)  # each step reverses the order of the one before
            m, s_logit = made(z, h)
            # bias +1 as in Kingma et al. (2016): s starts near sigmoid(1), close to the identity
            s = torch.sigmoid(s_logit + 1.0)
            z = s * z + (1 - s) * m
            log_s_sum = log_s_sum + torch.nn.functional.logsigmoid(s_logit + 1.0).sum(dim=-1)
        if len(self.steps) % 2 == 0:  # back to the encoder's order
            z = z.flip(-1)
        return z, log_s_sum


class IAFVAE(ConvVAE):
    """The convolutional VAE with an IAF posterior of ``n_steps`` steps on the encoder's Gaussian.

    The flow's context is the encoder's output (mu_z, log_std_z). Prior N(0, I), decoder and beta are
    the :class:`ConvVAE`'s; the KL term of ``loss`` is the one-sample log q(z | x) - log p(z).
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_latent: int,
        beta: float = 1,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        n_steps: int = 2,
        hidden: int = 256,
    ) -> None:
        super().__init__(input_shape, n_latent, beta, channels)
        self.flow = IAF(n_latent, 2 * n_latent, n_steps, hidden)

    def sample_posterior(
        self, mu_z: torch.Tensor, log_std_z: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """z ~ q(z | x) from the encoder's outputs (B, d) and the noise eps (..., B, d), and
        log q(z | x): (..., B, d) and (..., B)."""
        z0 = mu_z + log_std_z.exp() * eps
        log_q0 = -get_normal_nll(z0, mu_z.expand_as(z0), log_std_z.expand_as(z0)).sum(dim=-1)
        context = torch.cat([mu_z, log_std_z], dim=-1).expand(*eps.shape[:-1], -1)
        z, log_s_sum = self.flow(z0, context)
        return z, log_q0 - log_s_sum

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> mu_z, log_std_z of the flow's base Gaussian (B, n_latent), x_recon (B, C, H, W)."""
        mu_z, log_std_z = self.encode(x)
        z, _ = self.sample_posterior(mu_z, log_std_z, self.prior(x.shape[0]))
        return mu_z, log_std_z, self.decoder(z)
