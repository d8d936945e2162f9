"""The latent space of a trained model, seen: its codes projected onto a plane, and a statistic per dimension.

:func:`project_2d` is principal component analysis of the codes (each example's E_q[z | x]): the
plane through their mean that keeps the most of their variance. :func:`plot_codes` draws one
projection per model, coloured by the examples' labels; :func:`plot_per_dimension` draws one
statistic per latent dimension (a KL, a variance), sorted, one line per model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from dgm.plotting import new_figure, show


@dataclass(frozen=True)
class Projection:
    """Codes (N, d) projected onto their first two principal components."""

    points: np.ndarray  # (N, 2): coordinates along the two components
    explained: float  # the fraction of the codes' total variance the plane keeps, in [0, 1]


def project_2d(codes: np.ndarray) -> Projection:
    """The codes (N, d), N >= 2 and d >= 2, projected onto their first two principal components.

    Each component's sign is fixed so that its largest loading is positive: the same codes always
    give the same picture.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] < 2 or codes.shape[1] < 2:
        raise ValueError(f"need codes of shape (N, d) with N >= 2 and d >= 2, got {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("the codes contain NaN or infinite values")
    centred = codes - codes.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:2]  # (2, d)
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    total = float((singular**2).sum())
    explained = float((singular[:2] ** 2).sum() / total) if total > 0 else 0.0
    return Projection(centred @ components.T, explained)


def plot_codes(
    projections: Mapping[str, Projection], labels: np.ndarray, label_names: Sequence[str], ncols: int = 3
) -> Figure:
    """One scatter plot per model of its projected codes, coloured by ``labels`` (N,), integers that
    index ``label_names``."""
    if not projections:
        raise ValueError("nothing to plot")
    labels = np.asarray(labels)
    for name, p in projections.items():
        if p.points.shape != (len(labels), 2):
            raise ValueError(f"{name}: {p.points.shape[0]} points for {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(label_names)):
        raise ValueError(f"labels must index the {len(label_names)} label names")
    ncols = min(ncols, len(projections))
    nrows = -(-len(projections) // ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(3.4 * ncols, 3.2 * nrows))
    colours = [f"C{i % 10}" for i in range(len(label_names))]
    for ax, (name, p) in zip(axes.flat, projections.items()):
        for c, label in enumerate(label_names):
            at = labels == c
            ax.scatter(*p.points[at].T, s=4, alpha=0.6, color=colours[c], label=label)
        ax.set(title=f"{name} ({p.explained:.0%} of the variance)", xticks=[], yticks=[])
    for ax in axes.flat[len(projections) :]:
        ax.set_axis_off()
    fig.legend(
        *axes.flat[0].get_legend_handles_labels(),
        loc="outside lower center",
        ncols=min(5, len(label_names)),
        markerscale=3,
    )
    return show(fig)


def plot_per_dimension(
    stats: Mapping[str, np.ndarray], title: str, ylabel: str, threshold: float | None = None
) -> Figure:
    """Each model's statistic per latent dimension (d,), sorted from the largest, on a log scale;
    ``threshold`` draws a horizontal line. Values <= 0 are drawn at the bottom of the axis."""
    if not stats:
        raise ValueError("nothing to plot")
    fig, axes = new_figure(figsize=(6.4, 4))
    ax = axes[0, 0]
    positive = [v[v > 0] for v in map(np.asarray, stats.values()) if (v > 0).any()]
    floor = min(float(v.min()) for v in positive) / 10 if positive else 1e-6
    for name, values in stats.items():
        values = np.sort(np.asarray(values, dtype=np.float64))[::-1]
        if values.ndim != 1:
            raise ValueError(f"{name}: need one value per dimension, shape (d,), got {values.shape}")
        ax.plot(
            np.arange(1, len(values) + 1), np.maximum(values, floor), label=name, marker=".", markersize=3
        )
    if threshold is not None:
        ax.axhline(threshold, color="k", linestyle="--", linewidth=1, label=f"{threshold:g}")
    ax.set_yscale("log")
    ax.set(title=title, xlabel="latent dimension, sorted", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return show(fig)
