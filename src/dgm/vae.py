"""Variational autoencoders.

Every model here has the same interface, which the likelihood estimators rely on:

- ``encode(x) -> (mu_z, log_std_z)``: the parameters of q(z | x) = N(mu_z, diag(exp(log_std_z)^2));
- ``decode(z) -> (mu_x, log_std_x)``: the parameters of p(x | z) = N(mu_x, diag(exp(log_std_x)^2));
- ``prior(n)``: n samples of p(z) = N(0, I), on the model's device;
- ``loss(x) -> dict(elbo_loss, recon_loss, kl_loss)``: summed over dimensions, averaged over the batch,
  from :func:`dgm.elbo.elbo_terms`;
- ``sample(n)``: n samples of the model's p(x), as numpy.

``forward`` returns what the homework's ``forward`` returns for each model; nothing here relies on
its positions.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from dgm.data import to_image_scale
from dgm.elbo import elbo_terms
from dgm.gaussians import sample_normal
from dgm.nets import ConvDecoder, ConvEncoder, FullyConnectedMLP


def model_device(model: nn.Module) -> torch.device:
    """The device of a model's parameters."""
    return next(model.parameters()).device


def check_batch(x: torch.Tensor, shape: tuple[int, ...], model: nn.Module) -> torch.Tensor:
    """Refuse a batch that is not a non-empty tensor of shape (B, *shape) on ``model``'s device.

    Returns it in the dtype of the model's parameters (a float64 or integer batch is converted, as
    ``x.float()`` would), so that a batch of another dtype never meets the weights in a raw torch error.
    """
    param = next(model.parameters())
    device = param.device
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor batch, got {type(x).__name__}")
    if tuple(x.shape[1:]) != tuple(shape) or x.dim() != len(shape) + 1:
        raise ValueError(f"expected a batch of shape (B, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError("the batch is empty")
    if x.device != device:
        raise ValueError(f"the batch is on {x.device} but the model is on {device}; move one of them")
    return x if x.dtype == param.dtype else x.to(param.dtype)


class VAE2d(nn.Module):
    """A VAE with fully connected encoder and decoder and a Gaussian decoder of learned variance.

    Shapes: x (B, n_in), z (B, n_latent). The encoder outputs (B, 2 n_latent), split into
    ``mu_z, log_std_z``; the decoder outputs (B, 2 n_in), split into ``mu_x, log_std_x``.
    """

    def __init__(
        self, n_in: int, n_latent: int, enc_hidden_sizes: list[int], dec_hidden_sizes: list[int]
    ) -> None:
        if not isinstance(enc_hidden_sizes, list) or not isinstance(dec_hidden_sizes, list):
            raise TypeError("enc_hidden_sizes and dec_hidden_sizes must be lists of layer sizes")
        super().__init__()
        self.n_in = n_in
        self.n_latent = n_latent
        self.encoder = FullyConnectedMLP(n_in, enc_hidden_sizes, 2 * n_latent)
        self.decoder = FullyConnectedMLP(n_latent, dec_hidden_sizes, 2 * n_in)

    def prior(self, n: int) -> torch.Tensor:
        """n samples of p(z) = N(0, I): () -> (n, n_latent)."""
        return torch.randn(n, self.n_latent, device=model_device(self))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): (B, n_in) -> mu_z, log_std_z, each (B, n_latent)."""
        x = check_batch(x, (self.n_in,), self)
        mu_z, log_std_z = self.encoder(x).chunk(2, dim=1)
        return mu_z, log_std_z

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(x | z): (B, n_latent) -> mu_x, log_std_x, each (B, n_in)."""
        z = check_batch(z, (self.n_latent,), self)
        mu_x, log_std_x = self.decoder(z).chunk(2, dim=1)
        return mu_x, log_std_x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, n_in) -> mu_z, log_std_z (B, n_latent), mu_x, log_std_x (B, n_in), via z ~ q(z | x)."""
        mu_z, log_std_z = self.encode(x)
        z = sample_normal(mu_z, log_std_z, eps=self.prior(x.shape[0]))  # reparameterisation
        mu_x, log_std_x = self.decode(z)
        return mu_z, log_std_z, mu_x, log_std_x

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative ELBO and its two terms, summed over dimensions and averaged over the batch."""
        return elbo_terms(self, check_batch(x, (self.n_in,), self)).losses()

    @torch.no_grad()
    def sample(self, n: int, sample_from_decoder: bool = True) -> np.ndarray:
        """n samples of p(x) = int p(x | z) p(z) dz: (n, n_in); decoder means if not
        ``sample_from_decoder``."""
        mu_x, log_std_x = self.decode(self.prior(n))
        x = sample_normal(mu_x, log_std_x) if sample_from_decoder else mu_x
        return x.cpu().numpy()


class ConvVAE(nn.Module):
    """The homework's convolutional VAE on images scaled to [-1, 1], with a beta weight on the KL term.

    q(z | x) = N(mu_z, diag(exp(log_std_z)^2)) from :class:`ConvEncoder`; p(x | z) = N(mu_x, I) with
    mu_x from :class:`ConvDecoder` (unit variance: ``decode`` returns ``log_std_x = 0``). The loss is
    ``recon_loss + beta * kl_loss``, each summed over dimensions and averaged over the batch.
    """

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        n_latent: int,
        beta: float = 1,
        channels: tuple[int, ...] = (32, 64, 128, 256),
    ) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"input_shape is (C, H, W), got {tuple(input_shape)}")
        if not beta >= 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if len(channels) < 2:
            raise ValueError(f"channels lists the encoder's convs, at least two, got {tuple(channels)}")
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.n_latent = n_latent
        self.beta = float(beta)
        self.channels = tuple(channels)
        self.encoder = ConvEncoder(self.input_shape, n_latent, channels)
        self.decoder = ConvDecoder(n_latent, self.input_shape, tuple(channels[-2::-1]))  # mirrored

    def prior(self, n: int) -> torch.Tensor:
        """n samples of p(z) = N(0, I): () -> (n, n_latent)."""
        return torch.randn(n, self.n_latent, device=model_device(self))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): (B, C, H, W) -> mu_z, log_std_z, each (B, n_latent)."""
        return self.encoder(check_batch(x, self.input_shape, self))

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """p(x | z): (B, n_latent) -> mu_x, log_std_x, each (B, C, H, W); here log_std_x = 0."""
        mu_x = self.decoder(check_batch(z, (self.n_latent,), self))
        return mu_x, torch.zeros_like(mu_x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> mu_z, log_std_z (B, n_latent) and x_recon = mu_x (B, C, H, W), via z ~ q(z | x)."""
        mu_z, log_std_z = self.encode(x)
        z = sample_normal(mu_z, log_std_z, eps=self.prior(x.shape[0]))  # reparameterisation
        return mu_z, log_std_z, self.decoder(z)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``elbo_loss = recon_loss + beta * kl_loss``, summed over dimensions, averaged over the batch."""
        return elbo_terms(self, x).losses(self.beta)

    @torch.no_grad()
    def sample(self, n: int) -> np.ndarray:
        """n images decoded from prior samples (decoder means), clamped and mapped to [0, 1]: (n, C, H, W)."""
        mu_x, _ = self.decode(self.prior(n))
        return to_image_scale(mu_x)
