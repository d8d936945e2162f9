"""The homework's plotting helpers, each returning a matplotlib Figure that shows itself in a notebook.

Figures are built without pyplot, so the inline backend never shows them on its own at the end
of a cell. In a Jupyter kernel each function displays its figure once when called; returning the
same figure as the cell's last expression does not show it a second time (:class:`NotebookFigure`
shows itself at most once per cell). Outside Jupyter nothing is shown: save the returned figure
with ``fig.savefig``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from dgm.gaussians import get_normal_nll
from dgm.jupyter import kernel_shell as _kernel_shell
from dgm.likelihood import true_posterior


def _publish_png(fig: Figure) -> None:
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    display(Image(data=buf.getvalue(), format="png"))


class NotebookFigure(Figure):
    """A Figure that displays itself as a PNG in Jupyter, at most once per executed cell."""

    _shown_in_cell: int | None = None

    def _ipython_display_(self) -> None:
        shell = _kernel_shell()
        cell = getattr(shell, "execution_count", None)
        if cell is not None and cell == self._shown_in_cell:
            return  # already shown by the call that made it, in this same cell
        self._shown_in_cell = cell
        _publish_png(self)


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] | None = None, **kwargs):
    """A :class:`NotebookFigure` and its axes (``squeeze=False``: a 2d array of axes)."""
    fig = NotebookFigure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def show(fig: Figure) -> Figure:
    """Display ``fig`` now if running in a Jupyter kernel (once per cell); return it."""
    if _kernel_shell() is not None:
        if isinstance(fig, NotebookFigure):
            fig._ipython_display_()
        else:
            _publish_png(fig)
    return fig


def _as_points(name: str, data) -> np.ndarray:
    arr = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty array of 2d points, shape (N, 2); got {arr.shape}")
    return arr


def _check_labels(name: str, labels, n: int):
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name} must have one label per point, shape ({n},); got {labels.shape}")
    return labels


def plot_training_curves(
    train_losses: dict[str, list[float]],
    test_losses: dict[str, list[float]],
    logscale_y: bool = False,
    logscale_x: bool = False,
) -> Figure:
    """One panel per loss: the per-step training curve and the per-epoch test values, against epochs.

    ``test_losses[key]`` has one value before training and one per epoch (as :func:`train_model`
    returns them); the training steps are spread evenly over the epochs.
    """
    keys = [k for k in train_losses if k in test_losses]
    if not keys:
        raise ValueError(
            f"no loss appears in both train_losses {sorted(train_losses)} and "
            f"test_losses {sorted(test_losses)}"
        )
    fig, axes = new_figure(1, len(keys), figsize=(4.2 * len(keys), 3.4))
    for ax, key in zip(axes[0], keys):
        train, test = np.asarray(train_losses[key], float), np.asarray(test_losses[key], float)
        if train.size == 0 or test.size < 2:
            raise ValueError(
                f"{key}: need training steps and at least two test values, got {train.size} and {test.size}"
            )
        if logscale_y and (train.min() <= 0 or test.min() <= 0):
            raise ValueError(f"{key} has values <= 0: it cannot be drawn on a log scale (logscale_y=False)")
        epochs = test.size - 1
        x_train = np.linspace(0, epochs, train.size + 1)[1:]  # the end of each step
        ax.plot(x_train, train, lw=0.8, alpha=0.6, label="train (per step)")
        ax.plot(np.arange(epochs + 1), test, "o-", ms=4, label="test (per epoch)")
        ax.set_title(key)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if logscale_y:
            ax.set_yscale("log")
        if logscale_x:
            ax.set_xscale("symlog", linthresh=1)
    axes[0, 0].set_ylabel("loss")
    axes[0, 0].legend()
    return show(fig)


def visualize_2d_data(train_data, test_data, train_labels=None, test_labels=None) -> Figure:
    """Scatter plots of 2d training and test points side by side, coloured by label if given."""
    train, test = _as_points("train_data", train_data), _as_points("test_data", test_data)
    labels = [
        _check_labels("train_labels", train_labels, len(train)),
        _check_labels("test_labels", test_labels, len(test)),
    ]
    fig, axes = new_figure(1, 2, figsize=(9, 4.2), sharex=True, sharey=True)
    for ax, pts, lab, title in zip(axes[0], (train, test), labels, ("train data", "test data")):
        ax.scatter(pts[:, 0], pts[:, 1], s=2, c=lab, cmap=None if lab is None else "tab10")
        ax.set_title(title)
        ax.set_xlabel("$x_1$")
        ax.set_aspect("equal", adjustable="box")  # shared axes: the box adapts, not the limits
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel("$x_2$")
    return show(fig)


def visualize_2d_samples(
    data, title: str, labels=None, xlabel: str | None = None, ylabel: str | None = None
) -> Figure:
    """A scatter plot of 2d samples with a title, coloured by label if given."""
    pts = _as_points("data", data)
    lab = _check_labels("labels", labels, len(pts))
    fig, axes = new_figure(figsize=(4.6, 4.2))
    ax = axes[0, 0]
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c=lab, cmap=None if lab is None else "tab10")
    ax.set_title(title)
    ax.set_xlabel(xlabel if xlabel is not None else "$x_1$")
    ax.set_ylabel(ylabel if ylabel is not None else "$x_2$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    return show(fig)


def plot_posteriors(
    model: torch.nn.Module, x, extent: float = 4.0, step: float = 0.05, title: str | None = None
) -> Figure:
    """For each point of x (k, 2): the true posterior p(z | x) (filled) and the encoder's q(z | x) (lines).

    p(z | x) comes from :func:`dgm.likelihood.true_posterior` on a latent grid; contours of both
    are drawn at the same levels of density.
    """
    device = next(model.parameters()).device
    x = torch.as_tensor(_as_points("x", x), dtype=torch.float32, device=device)
    post = true_posterior(model, x, extent, step)
    with torch.no_grad():
        mu_z, log_std_z = (t.double().cpu() for t in model.encode(x))
    z = post.axis.cpu()
    z1, z2 = np.meshgrid(z.numpy(), z.numpy(), indexing="ij")
    fig, axes = new_figure(1, len(x), figsize=(3.2 * len(x), 3.4), sharex=True, sharey=True)
    for k, ax in enumerate(axes[0]):
        p = post.log_density[k].exp().cpu().numpy()
        lq = [-get_normal_nll(z, mu_z[k, j], log_std_z[k, j]) for j in (0, 1)]  # log q(z_j | x): (n,) each
        log_q = lq[0][:, None] + lq[1][None, :]  # q factorises: (n, n)
        q = log_q.exp().numpy()
        levels = np.linspace(0, max(p.max(), q.max()), 8)[1:]
        ax.contourf(z1, z2, p, levels=np.concatenate([[0], levels]), cmap="Blues")
        ax.contour(z1, z2, q, levels=levels, colors="tab:orange", linewidths=1)
        ax.set_title(f"x = ({x[k, 0]:.1f}, {x[k, 1]:.1f})")
        ax.set_xlabel("$z_1$")
        ax.set_aspect("equal")
    axes[0, 0].set_ylabel("$z_2$")
    if title:
        fig.suptitle(title)
    return show(fig)


# --------------------------------------------------------------------------- image grids


def image_grid(
    images: np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: float = 0.0
) -> np.ndarray:
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
    grid = np.full(
        (nrows * (h + padding) + padding, ncol_imgs * (w + padding) + padding, 3), pad_value, dtype=np.float32
    )
    for i, img in enumerate(x):
        top, left = padding + (i // nrow) * (h + padding), padding + (i % nrow) * (w + padding)
        grid[top : top + h, left : left + w] = img.transpose(1, 2, 0)  # (C, H, W) -> (H, W, C)
    return grid


def show_samples(
    samples: np.ndarray, title: str, figsize: tuple[float, float] | None = None, nrow: int | None = None
) -> Figure:
    """A grid of images (N, C, H, W) in [0, 1] with a title, ``nrow`` per row (default floor(sqrt(N)))."""
    grid = image_grid(samples, nrow=nrow)
    fig, axes = new_figure(figsize=figsize)
    ax = axes[0, 0]
    ax.imshow(grid, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
    return show(fig)


def visualize_images(data: np.ndarray, title: str, n: int = 100, seed: int = 0) -> Figure:
    """``n`` images of ``data`` (N, C, H, W) in [0, 1], drawn without replacement (seeded), in a grid."""
    data = np.asarray(data)
    if data.ndim != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got {data.shape}")
    idx = np.random.default_rng(seed).choice(len(data), size=min(n, len(data)), replace=False)
    return show_samples(data[np.sort(idx)], title)


# --------------------------------------------------------------------------- curves


def plot_curves(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    logy: bool = False,
) -> Figure:
    """One line per ``label: (x, y)``, e.g. several models' test losses per epoch."""
    if not series:
        raise ValueError("nothing to plot")
    fig, axes = new_figure(figsize=(6.4, 4))
    ax = axes[0, 0]
    for label, (x, y) in series.items():
        if len(x) != len(y):
            raise ValueError(f"{label}: {len(x)} x values for {len(y)} y values")
        ax.plot(x, y, label=label, marker="o" if len(x) <= 30 else None, markersize=3)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return show(fig)


def draw_rate_distortion(ax, betas, rates, distortions, highlight: int | None = None) -> None:
    ax.plot(rates, distortions, color="0.6", zorder=1)
    ax.scatter(rates, distortions, zorder=2)
    for b, r, d in zip(betas, rates, distortions):
        ax.annotate(f"beta = {b:g}", (r, d), textcoords="offset points", xytext=(6, 4))
    if highlight is not None:
        ax.scatter(
            [rates[highlight]], [distortions[highlight]], s=160, facecolors="none", edgecolors="C3", lw=2
        )
    ax.set(
        title="Rate and distortion on the test set",
        xlabel="rate: KL(q(z|x) || p(z)) [nats]",
        ylabel="distortion: E[-log p(x|z)] [nats]",
    )
    ax.grid(alpha=0.3)


def check_sweep(betas, rates, distortions) -> None:
    if not len(betas) == len(rates) == len(distortions) or not betas:
        raise ValueError("need one rate and one distortion per beta")


def plot_rate_distortion(
    betas: Sequence[float], rates: Sequence[float], distortions: Sequence[float]
) -> Figure:
    """Distortion against rate, one labelled point per beta (Alemi et al. 2018)."""
    check_sweep(betas, rates, distortions)
    fig, axes = new_figure(figsize=(5.5, 4))
    draw_rate_distortion(axes[0, 0], betas, rates, distortions)
    return show(fig)
