"""Reconstructions and interpolations of a VAE, as the homework shows them, and how good they are.

A reconstruction decodes the encoder's mean: ``decode(mu_z(x))``'s mean, with no sampling. An
interpolation decodes points on the segment between two codes. Images are returned on the
[0, 1] scale (:func:`dgm.data.to_image_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from dgm.data import to_image_scale


@torch.no_grad()
def reconstruct(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Decoder means at the encoder means, as in the homework: (B, ...) -> (B, ...)."""
    mu_z, _ = model.encode(x)
    return model.decode(mu_z)[0]


@torch.no_grad()
def interpolate(model: nn.Module, x1: torch.Tensor, x2: torch.Tensor, n_steps: int = 10) -> torch.Tensor:
    """Decode ``n_steps`` points on the segment between the codes of x1 and x2:
    (B, ...) -> (B, n_steps, ...)."""
    if x1.shape != x2.shape or n_steps < 2:
        raise ValueError(
            f"need two batches of one shape and n_steps >= 2, got {tuple(x1.shape)}, "
            f"{tuple(x2.shape)}, {n_steps}"
        )
    z1, z2 = model.encode(x1)[0], model.encode(x2)[0]
    alphas = torch.linspace(0, 1, n_steps, device=z1.device)
    steps = [model.decode(torch.lerp(z1, z2, a))[0] for a in alphas]  # each (B, ...)
    return torch.stack(steps, dim=1)


def reconstruction_pairs(model: torch.nn.Module, x: torch.Tensor) -> np.ndarray:
    """Inputs and their reconstructions interleaved, as images: (B, C, H, W) -> (2B, C, H, W)."""
    pairs = torch.stack((x, reconstruct(model, x)), dim=1)  # (B, 2, C, H, W)
    return to_image_scale(pairs.flatten(0, 1))


def interpolation_rows(
    model: torch.nn.Module, x1: torch.Tensor, x2: torch.Tensor, n_steps: int = 10
) -> np.ndarray:
    """One row of ``n_steps`` decoded points per pair, from x1 to x2: (B, ...) -> (B * n_steps, ...)."""
    return to_image_scale(interpolate(model, x1, x2, n_steps).flatten(0, 1))


@dataclass(frozen=True)
class ReconstructionError:
    """Mean squared error per pixel value on the [0, 1] scale, of reconstructions and of two baselines."""

    reconstruction: float  # decoder mean at the encoder mean vs the input
    mean_image: float  # the training set's mean image vs the input
    other_image: float  # another test image vs the input


@torch.no_grad()
def reconstruction_error(
    model: torch.nn.Module, test_x: torch.Tensor, train_x: torch.Tensor, batch_size: int = 500
) -> ReconstructionError:
    """How close reconstructions of the test images are, next to two reconstructions that ignore them."""
    x = test_x
    recon = torch.cat([reconstruct(model, x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    images = to_image_scale(x)
    mean_image = to_image_scale(train_x.mean(dim=0, keepdim=True))
    return ReconstructionError(
        reconstruction=float(((to_image_scale(recon) - images) ** 2).mean()),
        mean_image=float(((mean_image - images) ** 2).mean()),
        other_image=float(((np.roll(images, 1, axis=0) - images) ** 2).mean()),
    )
