from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from dgm.plotting import image_grid, plot_curves, plot_rate_distortion, show_samples, visualize_images


def test_grid_layout_by_hand():
    imgs = np.stack([np.full((1, 2, 3), v) for v in (0.1, 0.2, 0.3, 0.4, 0.5)])  # (5, 1, 2, 3)
    grid = image_grid(imgs, nrow=2, padding=1, pad_value=1.0)
    assert grid.shape == (3 * 3 + 1, 2 * 4 + 1, 3)
    # Image i sits at row i // 2, column i % 2; grey replicated to RGB.
    for i, v in enumerate((0.1, 0.2, 0.3, 0.4, 0.5)):
        top, left = 1 + (i // 2) * 3, 1 + (i % 2) * 4
        np.testing.assert_allclose(grid[top:top + 2, left:left + 3], v)
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
