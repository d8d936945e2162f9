"""Plots of the book, as the homework's helpers.

Each function returns a matplotlib ``Figure`` and leaves no figure open in pyplot, so that in a
notebook the figure shows exactly once: as the value of the cell (Jupyter's inline backend
would otherwise also show every open pyplot figure when the cell ends).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def _closed(fig: Figure) -> Figure:
    """Detach ``fig`` from pyplot, so that only returning it displays it."""
    plt.close(fig)
    return fig


# --------------------------------------------------------------------------- image grids


def image_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2,
               pad_value: float = 0.0) -> np.ndarray:
    """(N, C, H, W) in [0, 1], C = 1 or 3 -> one (H', W', 3) image with ``nrow`` images per row.

    The layout of torchvision's ``make_grid``: ``padding`` pixels of ``pad_value`` around every
    image, rows filled left to right; ``nrow`` defaults to floor(sqrt(N)).
    """
    x = np.asarray(images)
    if x.ndim != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
        raise ValueError(f"expected images of shape (N, C, H, W) with C = 1 or 3, got {x.shape}")
    if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
        raise ValueError("image values must be finite and in [0, 1]; map them there first")
    n, c, h, w = x.shape
    nrow = max(1, int(math.sqrt(n))) if nrow is None else nrow
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    ncol_imgs, nrows = min(nrow, n), math.ceil(n / nrow)
    if c == 1:
        x = np.repeat(x, 3, axis=1)
    grid = np.full((nrows * (h + padding) + padding, ncol_imgs * (w + padding) + padding, 3),
                   pad_value, dtype=np.float32)
    for i, img in enumerate(x):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[top:top + h, left:left + w] = img.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    return grid


def show_samples(samples: np.ndarray, title: str, figsize: tuple[float, float] | None = None,
                 nrow: int | None = None) -> Figure:
    """A grid of images (N, C, H, W) in [0, 1] with a title, ``nrow`` per row (default floor(sqrt(N)))."""
    grid = image_grid(samples, nrow=nrow)
    fig, ax = plt.subplots(figsize=figsize)
    ax.imshow(grid, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    return _closed(fig)


def visualize_images(data: np.ndarray, title: str, n: int = 100, seed: int = 0) -> Figure:
    """``n`` images of ``data`` (N, C, H, W) in [0, 1], drawn without replacement (seeded), in a grid."""
    data = np.asarray(data)
    if data.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {data.shape}")
    idx = np.random.default_rng(seed).choice(len(data), size=min(n, len(data)), replace=False)
    return show_samples(data[np.sort(idx)], title)


# --------------------------------------------------------------------------- curves


def plot_curves(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str,
                xlabel: str, ylabel: str, logy: bool = False) -> Figure:
    """One line per ``label: (x, y)``, e.g. several models' test losses per epoch."""
    if not series:
        raise ValueError("nothing to plot")
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for label, (x, y) in series.items():
        if len(x) != len(y):
            raise ValueError(f"{label}: {len(x)} x values for {len(y)} y values")
        ax.plot(x, y, label=label, marker="o" if len(x) <= 30 else None, markersize=3)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return _closed(fig)


def plot_rate_distortion(betas: Sequence[float], rates: Sequence[float],
                         distortions: Sequence[float]) -> Figure:
    """Distortion against rate, one labelled point per beta (Alemi et al. 2018)."""
    if not len(betas) == len(rates) == len(distortions) or not betas:
        raise ValueError("need one rate and one distortion per beta")
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot(rates, distortions, color="0.6", zorder=1)
    ax.scatter(rates, distortions, zorder=2)
    for b, r, d in zip(betas, rates, distortions):
        ax.annotate(f"beta = {b:g}", (r, d), textcoords="offset points", xytext=(6, 4))
    ax.set(title="Rate and distortion on the test set", xlabel="rate: KL(q(z|x) || p(z)) [nats]",
           ylabel="distortion: E[-log p(x|z)] [nats]")
    ax.grid(alpha=0.3)
    return _closed(fig)
