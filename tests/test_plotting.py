from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import dgm.plotting as plotting
from dgm.plotting import (
    image_grid,
    plot_curves,
    plot_posteriors,
    plot_rate_distortion,
    plot_training_curves,
    show_samples,
    visualize_2d_data,
    visualize_2d_samples,
    visualize_images,
)
from dgm.vae import VAE2d


def render(fig: Figure) -> bytes:
    """Draw the figure to PNG: layout errors only show at draw time."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class FakeShell:
    """Stands in for a Jupyter kernel's shell: only the execution counter matters."""

    kernel = object()

    def __init__(self) -> None:
        self.execution_count = 1


@pytest.fixture
def notebook(monkeypatch):
    """Pretend to run in a kernel; record every PNG the figures publish."""
    shell, published = FakeShell(), []
    monkeypatch.setattr(plotting, "_kernel_shell", lambda: shell)
    monkeypatch.setattr(plotting, "_publish_png", lambda fig: published.append(fig))
    return shell, published


def test_samples_plot_shows_the_points():
    data = np.random.default_rng(0).normal(size=(50, 2))
    fig = visualize_2d_samples(data, title="Samples", xlabel="a", ylabel="b")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), data)
    assert ax.get_title() == "Samples" and ax.get_xlabel() == "a" and ax.get_ylabel() == "b"
    assert render(fig)[:4] == b"\x89PNG"
    labelled = visualize_2d_samples(torch.as_tensor(data), "t", labels=np.arange(50) % 3)
    assert len(labelled.axes[0].collections[0].get_array()) == 50


def test_data_plot_has_train_and_test_panels():
    rng = np.random.default_rng(1)
    train, test = rng.normal(size=(40, 2)), rng.normal(size=(10, 2))
    fig = visualize_2d_data(train, test)
    offsets = [ax.collections[0].get_offsets() for ax in fig.axes]
    np.testing.assert_array_equal(offsets[0], train)
    np.testing.assert_array_equal(offsets[1], test)
    assert [ax.get_title() for ax in fig.axes] == ["train data", "test data"]
    assert render(fig)[:4] == b"\x89PNG"


def test_training_curves_plot_every_loss_against_epochs():
    train = {"elbo_loss": [5.0, 4.0, 3.0, 2.5], "kl_loss": [0.1, 0.2, 0.3, 0.2]}
    test = {"elbo_loss": [6.0, 3.5, 2.4], "kl_loss": [0.05, 0.3, 0.2]}
    fig = plot_training_curves(train, test)
    assert [ax.get_title() for ax in fig.axes] == ["elbo_loss", "kl_loss"]
    steps, epochs = fig.axes[0].lines
    np.testing.assert_array_equal(steps.get_ydata(), train["elbo_loss"])
    np.testing.assert_allclose(steps.get_xdata(), [0.5, 1.0, 1.5, 2.0])  # 2 steps per epoch
    np.testing.assert_array_equal(epochs.get_xdata(), [0, 1, 2])
    np.testing.assert_array_equal(epochs.get_ydata(), test["elbo_loss"])
    assert render(fig)[:4] == b"\x89PNG"
    assert plot_training_curves(train, test, logscale_y=True, logscale_x=True).axes[0].get_yscale() == "log"


def test_bad_plot_input_is_refused():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        visualize_2d_samples(np.zeros((5, 3)), "t")
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        visualize_2d_data(np.zeros((0, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="one label per point"):
        visualize_2d_samples(np.zeros((5, 2)), "t", labels=[1, 2])
    with pytest.raises(ValueError, match="both"):
        plot_training_curves({"a": [1.0]}, {"b": [1.0, 2.0]})
    with pytest.raises(ValueError, match="log scale"):
        plot_training_curves({"a": [-1.0]}, {"a": [1.0, 2.0]}, logscale_y=True)


def test_a_figure_shows_once_per_cell_in_a_notebook(notebook):
    shell, published = notebook
    fig = visualize_2d_samples(np.zeros((3, 2)), "t")
    assert published == [fig]  # shown by the call itself
    fig._ipython_display_()  # what IPython does when the cell ends with `fig`
    assert published == [fig]  # ... not a second time
    shell.execution_count += 1  # a later cell that shows `fig` again
    fig._ipython_display_()
    assert published == [fig, fig]


def test_ipython_routes_figures_through_their_own_display():
    from IPython.core.formatters import DisplayFormatter

    calls = []
    fig = plotting.new_figure()[0]
    fig._ipython_display_ = lambda: calls.append(1)  # type: ignore[method-assign]
    assert DisplayFormatter().format(fig) == ({}, {})  # no PNG or text from the default formatters
    assert calls == [1]


def test_nothing_is_shown_outside_a_kernel(monkeypatch):
    published = []
    monkeypatch.setattr(plotting, "_publish_png", lambda fig: published.append(fig))
    visualize_2d_samples(np.zeros((3, 2)), "t")
    assert published == []


def test_posterior_plot_has_one_panel_per_point():
    torch.manual_seed(0)
    model = VAE2d(2, 2, [8], [8])
    fig = plot_posteriors(model, np.array([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]]), extent=3.0, step=0.1)
    assert len(fig.axes) == 3
    assert fig.axes[1].get_title() == "x = (1.0, 2.0)"
    assert render(fig)[:4] == b"\x89PNG"


def test_grid_layout_by_hand():
    imgs = np.stack([np.full((1, 2, 3), v) for v in (0.1, 0.2, 0.3, 0.4, 0.5)])  # (5, 1, 2, 3)
    grid = image_grid(imgs, nrow=2, padding=1, pad_value=1.0)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1, 3)
    # Image i sits at row i // 2, column i % 2; grey replicated to RGB.
    for i, v in enumerate((0.1, 0.2, 0.3, 0.4, 0.5)):
        top, left = 1 + (i // 2) * 3, 1 + (i % 2) * 4
        np.testing.assert_allclose(grid[top : top + 2, left : left + 3], v)
    assert grid[0].min() == 1.0 and grid[:, 0].min() == 1.0  # padding
    np.testing.assert_allclose(grid[7:9, 5:8], 1.0)  # the empty sixth cell
    assert image_grid(np.zeros((9, 3, 4, 4))).shape == (3 * 6 + 2, 3 * 6 + 2, 3)  # nrow = sqrt(9)


def test_grid_refuses_bad_images():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_grid(np.full((2, 3, 4, 4), 1.5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        image_grid(np.full((2, 3, 4, 4), np.nan))
    with pytest.raises(ValueError, match="C = 1 or 3"):
        image_grid(np.zeros((2, 4, 4, 4)))


def test_figures_are_returned_and_left_closed():
    rng = np.random.default_rng(0)
    before = plt.get_fignums()
    figs = [
        show_samples(rng.random((6, 3, 8, 8)), "samples", figsize=(3, 2), nrow=3),
        visualize_images(rng.random((30, 3, 8, 8)), "data"),
        plot_curves({"a": ([0, 1, 2], [3.0, 2.0, 1.0])}, "t", "epoch", "loss"),
        plot_rate_distortion([0.5, 1, 2], [30.0, 20.0, 10.0], [100.0, 110.0, 130.0]),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert plt.get_fignums() == before, "an open pyplot figure would show a second time in Jupyter"
    assert figs[0].axes[0].get_title() == "samples"
    assert tuple(figs[0].get_size_inches()) == (3, 2)
    shown = figs[1].axes[0].images[0].get_array()
    assert shown.shape == (6 * 10 + 2, 5 * 10 + 2, 3)  # 30 images, floor(sqrt(30)) = 5 per row
    with pytest.raises(ValueError, match="one rate"):
        plot_rate_distortion([1], [1.0, 2.0], [1.0])
