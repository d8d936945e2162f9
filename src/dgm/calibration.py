"""A Gaussian decoder that learns its variance: one standard deviation per channel, set to its optimum.

:class:`CalibratedConvVAE` fits sigma_c at every training step (the sigma-VAE of Rybkin et al.
2021); :func:`calibrate` fits it once, after training, to a trained unit-variance :class:`ConvVAE`.
"""

from __future__ import annotations

import torch

from dgm.elbo import elbo_terms
from dgm.gaussians import sample_normal
from dgm.vae import ConvVAE, check_batch


class CalibratedConvVAE(ConvVAE):
    """:class:`ConvVAE` whose Gaussian decoder learns one standard deviation per channel.

    p(x | z) = N(mu_x, diag(sigma_c^2)). In training, sigma_c is set at every step to the value
    that maximises the ELBO for the current means, sigma_c^2 = mean squared error of channel c
    over the batch (the "optimal sigma" of the sigma-VAE, Rybkin et al. 2021), floored at
    ``bin_width^2 / 12``, the variance of the rounding of 8-bit pixels. A running average of it is
    kept in the buffer ``log_std_x``, which ``decode`` returns and evaluation uses.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_latent: int,
        beta: float = 1,
        channels: tuple[int, ...] = (32, 64, 128, 256),
        bin_width: float = 2 / 255,
        momentum: float = 0.05,
    ) -> None:
        super().__init__(input_shape, n_latent, beta, channels)
        if not 0 < momentum <= 1 or not bin_width > 0:
            raise ValueError(f"need 0 < momentum <= 1 and bin_width > 0, got {momentum}, {bin_width}")
        self.momentum = momentum
        self.min_var = bin_width**2 / 12
        self.register_buffer("log_std_x", torch.zeros(self.input_shape[0], 1, 1))  # (C, 1, 1)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(x | z): (B, n_latent) -> mu_x, log_std_x, each (B, C, H, W); log_std_x per channel."""
        mu_x = self.decoder(check_batch(z, (self.n_latent,), self))
        return mu_x, self.log_std_x.expand_as(mu_x)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """As :meth:`ConvVAE.loss`; in training, with each channel's sigma fitted to the batch."""
        if not self.training:
            return super().loss(x)

        def batch_log_std(mu_x: torch.Tensor) -> torch.Tensor:
            # The optimal variance needs no gradient: at the optimum d(loss)/d(sigma) = 0.
            var = ((x - mu_x.detach()) ** 2).mean(dim=(0, 2, 3), keepdim=True)[0]  # (C, 1, 1)
            var = var.clamp_min(self.min_var)
            with torch.no_grad():
                running = torch.lerp(torch.exp(2 * self.log_std_x), var, self.momentum)
                self.log_std_x.copy_(0.5 * torch.log(running))
            return 0.5 * torch.log(var).expand_as(mu_x)

        return elbo_terms(self, x, decoder_log_std=batch_log_std).losses(self.beta)


@torch.no_grad()
def calibrate(model: ConvVAE, x: torch.Tensor, batch_size: int = 500) -> CalibratedConvVAE:
    """A copy of a trained unit-variance ``model`` whose per-channel sigma is fitted on ``x`` (no retraining).

    sigma_c^2 = mean over ``x`` of (x - mu_x)^2 in channel c, with z ~ q(z | x): the value that
    maximises the ELBO of ``x`` for the model's encoder and decoder means.
    """
    if hasattr(model, "log_prior") or hasattr(model, "sample_posterior"):
        raise TypeError(
            f"calibrate copies a ConvVAE with the N(0, I) prior and a Gaussian posterior; a "
            f"{type(model).__name__} has a learned prior or a flow, which the copy would drop"
        )
    with torch.random.fork_rng(devices=[]):  # building the copy leaves the random stream alone
        out = CalibratedConvVAE(model.input_shape, model.n_latent, model.beta, model.channels)
    out.load_state_dict(model.state_dict(), strict=False)  # all but log_std_x
    out.to(x.device).eval()
    sq = torch.zeros(model.input_shape[0], device=x.device)
    for i in range(0, len(x), batch_size):
        xb = x[i : i + batch_size]
        mu_z, log_std_z = model.encode(xb)
        mu_x, _ = model.decode(sample_normal(mu_z, log_std_z, eps=model.prior(len(xb))))  # at z ~ q(z | x)
        sq += ((xb - mu_x) ** 2).sum(dim=(0, 2, 3))
    var = (sq / (len(x) * x[0, 0].numel())).clamp_min(out.min_var)
    out.log_std_x.copy_(0.5 * torch.log(var).view(-1, 1, 1))
    return out
