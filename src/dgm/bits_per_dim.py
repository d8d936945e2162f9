"""Bits per dimension: the negative log-likelihood of 8-bit images under a VAE, in bits per pixel value.

An 8-bit pixel value k in {0, ..., 255} is scaled to x = 2k/255 - 1 in [-1, 1], so neighbouring
values lie ``BIN_WIDTH = 2/255`` apart. A continuous density p on the scaled values gives each
8-bit image the probability of its bin, P(k) = int_bin p(y) dy, and by Jensen's inequality
(uniform dequantization, Theis et al. 2016)

    -log P(k) <= E_u[-log p(x + u)] - D log(bin_width),    u ~ U(-bin_width/2, bin_width/2)^D.

The term -D log(bin_width) is the Jacobian of the scaling together with the discretisation:
measured on the 0-255 scale, where bins have width 1, densities are 2/255 times smaller per
dimension. Replacing -log p by the negative ELBO keeps an upper bound. Divided by D log 2, this is
bits per dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from dgm.elbo import elbo_terms

BIN_WIDTH = 2 / 255  # distance between neighbouring 8-bit values scaled to [-1, 1]


def dequantize(
    x: torch.Tensor, bin_width: float = BIN_WIDTH, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x + u with u ~ U(-bin_width/2, bin_width/2), elementwise: (...) -> (...)."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return x + bin_width * (u - 0.5)


def bits_per_dim_from_nats(nll_nats: float, n_dims: int, bin_width: float = BIN_WIDTH) -> float:
    """Bits per dimension of discrete data from a density's NLL (nats per example, continuous scale)."""
    if n_dims < 1 or not bin_width > 0:
        raise ValueError(f"need n_dims >= 1 and bin_width > 0, got {n_dims}, {bin_width}")
    return (nll_nats / n_dims - math.log(bin_width)) / math.log(2)


def unit_variance_floor(bin_width: float = BIN_WIDTH) -> float:
    """-log2 of the largest probability a unit-variance Gaussian gives one bin: erf(bin_width / (2 sqrt 2)).

    No decoder N(mu_x, I), whatever its means, and so no mixture of them, puts more mass on
    an 8-bit value: bits per dimension of such a model cannot go below this (8.32 for 2/255).
    """
    return -math.log2(math.erf(bin_width / (2 * math.sqrt(2))))


@dataclass(frozen=True)
class BitsPerDim:
    """An upper bound on -log2 P(x) / D over a data set, and its three parts (they add up)."""

    total: float
    recon: float  # E_q[-log p(x | z)] / (D ln 2), on the [-1, 1] scale
    kl: float  # KL(q(z | x) || p(z)) / (D ln 2): the rate
    discretisation: float  # -log2(bin_width): the Jacobian of the scaling and the binning


@torch.no_grad()
def bits_per_dim(
    model: nn.Module, data: torch.Tensor, bin_width: float = BIN_WIDTH, batch_size: int = 500, seed: int = 0
) -> BitsPerDim:
    """Dequantized negative ELBO (beta = 1) of ``data`` (N, ...) in [-1, 1] under ``model``, in bits/dim.

    The dequantization noise and the samples of z come from ``seed``: the same model and data give
    the same number.
    """
    if data.dim() < 2 or len(data) == 0:
        raise ValueError(f"expected a non-empty batch of examples, got shape {tuple(data.shape)}")
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    recon_sum = kl_sum = 0.0
    for i in range(0, len(data), batch_size):
        x = dequantize(data[i : i + batch_size], bin_width, generator)
        terms = elbo_terms(model, x, generator)  # beta = 1: the ELBO, whatever beta trained the model
        recon_sum += float(terms.recon.sum())
        kl_sum += float(terms.kl.sum())
    model.train(was_training)
    n, n_dims = len(data), data[0].numel()
    scale = n * n_dims * math.log(2)
    offset = -math.log2(bin_width)
    total = bits_per_dim_from_nats((recon_sum + kl_sum) / n, n_dims, bin_width)
    return BitsPerDim(total=total, recon=recon_sum / scale, kl=kl_sum / scale, discretisation=offset)
