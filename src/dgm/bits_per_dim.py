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
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from dgm.elbo import elbo_terms
from dgm.iwae import iwae_bound, positive_integer

BIN_WIDTH = 2 / 255  # distance between neighbouring 8-bit values scaled to [-1, 1]


def dequantize(
    x: torch.Tensor, bin_width: float = BIN_WIDTH, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x + u with u ~ U(-bin_width/2, bin_width/2), elementwise: (...) -> (...)."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return x + bin_width * (u - 0.5)


def bits_per_dim_from_nats(nll_nats, n_dims: int, bin_width: float = BIN_WIDTH):
    """Bits per dimension of discrete data from a density's NLL (nats per example, continuous scale):
    a float, or an array of examples' NLLs elementwise."""
    if n_dims < 1 or not bin_width > 0:
        raise ValueError(f"need n_dims >= 1 and bin_width > 0, got {n_dims}, {bin_width}")
    return (nll_nats / n_dims - math.log(bin_width)) / math.log(2)


def unit_variance_floor(bin_width: float = BIN_WIDTH) -> float:
    """-log2 of the largest probability a unit-variance Gaussian gives one bin: erf(bin_width / (2 sqrt 2)).

    No decoder N(mu_x, I), whatever its means, and so no mixture of them, puts more mass on
    an 8-bit value: bits per dimension of such a model cannot go below this (8.32 for 2/255).
    """
    return -math.log2(math.erf(bin_width / (2 * math.sqrt(2))))


IW_CHUNK = 64  # importance samples decoded at a time per image


def images_per_step(k: int, batch_size: int = 500) -> int:
    """How many images :func:`bits_per_dim` bounds at a time with ``k`` importance samples: at most
    about ``batch_size`` decoded images at once (``k = 1``: ``batch_size`` images)."""
    return max(1, batch_size // min(k, IW_CHUNK))


@dataclass(frozen=True)
class BitsPerDim:
    """An upper bound on -log2 P(x) / D over a data set; from the ELBO (k = 1) with its three parts.

    For k = 1, ``total = recon + kl + discretisation``. For k > 1 the bound is -L_k, which does not
    split into a reconstruction and a rate: ``recon`` and ``kl`` are None. ``per_image`` holds each
    example's bound (N,), whose mean is ``total``: two models on the same examples are compared by
    their paired differences (:func:`dgm.significance.paired_difference`).
    """

    total: float
    recon: float | None  # E_q[-log p(x | z)] / (D ln 2), on the [-1, 1] scale
    kl: float | None  # KL(q(z | x) || p(z)) / (D ln 2): the rate
    discretisation: float  # -log2(bin_width): the Jacobian of the scaling and the binning
    k: int = 1  # importance samples of the bound: 1 is the ELBO
    per_image: np.ndarray | None = field(default=None, compare=False, repr=False)  # (N,) bits/dim


@torch.no_grad()
def bits_per_dim(
    model: nn.Module,
    data: torch.Tensor,
    k: int = 1,
    bin_width: float = BIN_WIDTH,
    batch_size: int = 500,
    seed: int = 0,
) -> BitsPerDim:
    """The dequantized bound -L_k (beta = 1) of ``data`` (N, ...) in [-1, 1] under ``model``, in bits/dim.

    ``k = 1`` is the negative ELBO; a larger ``k`` the importance-weighted bound
    (:func:`dgm.iwae.iwae_bound`), tighter in expectation. The dequantization noise and the samples
    of z come from ``seed``: the same model and data give the same number.
    """
    if data.dim() < 2 or len(data) == 0:
        raise ValueError(f"expected a non-empty batch of examples, got shape {tuple(data.shape)}")
    k = positive_integer("k", k)
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    n, n_dims = len(data), data[0].numel()
    offset = -math.log2(bin_width)
    if k == 1:
        recon_sum = kl_sum = 0.0
        nats = []
        for i in range(0, n, batch_size):
            x = dequantize(data[i : i + batch_size], bin_width, generator)
            terms = elbo_terms(model, x, generator)  # beta = 1: the ELBO, whatever beta trained the model
            recon_sum += float(terms.recon.sum())
            kl_sum += float(terms.kl.sum())
            nats.append((terms.recon + terms.kl).double().cpu())
        model.train(was_training)
        scale = n * n_dims * math.log(2)
        total = bits_per_dim_from_nats((recon_sum + kl_sum) / n, n_dims, bin_width)
        each = bits_per_dim_from_nats(torch.cat(nats).numpy(), n_dims, bin_width)
        return BitsPerDim(total, recon_sum / scale, kl_sum / scale, offset, per_image=each)
    chunk, rows = min(k, IW_CHUNK), images_per_step(k, batch_size)
    bound_sum = 0.0
    nats = []
    for i in range(0, n, rows):
        x = dequantize(data[i : i + rows], bin_width, generator)
        bound = iwae_bound(model, x, k, chunk_size=chunk, generator=generator).double().cpu()
        bound_sum += float(bound.sum())
        nats.append(-bound)
    model.train(was_training)
    total = bits_per_dim_from_nats(-bound_sum / n, n_dims, bin_width)
    each = bits_per_dim_from_nats(torch.cat(nats).numpy(), n_dims, bin_width)
    return BitsPerDim(total=total, recon=None, kl=None, discretisation=offset, k=k, per_image=each)
