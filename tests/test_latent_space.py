from __future__ import annotations

import numpy as np
import pytest

from dgm.latent_space import Projection, plot_codes, plot_per_dimension, project_2d


def test_project_2d_against_the_eigenvectors_of_the_covariance():
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    codes = (rng.normal(size=(3000, 4)) * [3.0, 1.0, 0.3, 0.1]) @ rotation.T + 5.0
    p = project_2d(codes)
    values, vectors = np.linalg.eigh(np.cov(codes.T))  # ascending
    top = vectors[:, ::-1][:, :2]
    top = top * np.sign(top[np.abs(top).argmax(axis=0), [0, 1]])  # the largest loading positive
    np.testing.assert_allclose(p.points, (codes - codes.mean(axis=0)) @ top, atol=1e-8)
    assert p.explained == pytest.approx(values[::-1][:2].sum() / values.sum())
    assert p.explained == pytest.approx((9 + 1) / (9 + 1 + 0.09 + 0.01), abs=0.01)
    again = project_2d(-codes)  # a reflected cloud gives the same picture up to the reflection
    np.testing.assert_allclose(np.abs(again.points), np.abs(p.points), atol=1e-8)
    for bad in (np.zeros((1, 3)), np.zeros((5, 1)), np.zeros(5)):
        with pytest.raises(ValueError, match=r"\(N, d\)"):
            project_2d(bad)
    with pytest.raises(ValueError, match="NaN"):
        project_2d(np.full((3, 2), np.nan))
    assert project_2d(np.ones((4, 3))).explained == 0.0  # no variance at all


def test_plots_draw_one_panel_per_model_and_check_their_input():
    rng = np.random.default_rng(1)
    projections = {name: Projection(rng.normal(size=(10, 2)), 0.5) for name in "abcd"}
    labels = np.arange(10) % 2
    fig = plot_codes(projections, labels, ("china", "flower"), ncols=3)
    drawn = [ax for ax in fig.axes if ax.axison]
    assert len(drawn) == 4 and [ax.get_title() for ax in drawn][0] == "a (50% of the variance)"
    assert sum(len(ax.collections) for ax in drawn) == 8  # one scatter per label and panel
    with pytest.raises(ValueError, match="5 labels"):
        plot_codes(projections, labels[:5], ("china", "flower"))
    with pytest.raises(ValueError, match="index the 2 label names"):
        plot_codes(projections, labels + 1, ("china", "flower"))
    with pytest.raises(ValueError, match="nothing"):
        plot_codes({}, labels, ("china",))
    fig = plot_per_dimension(
        {"a": np.array([0.1, 2.0, 0.0]), "b": np.array([1.0, 1.0, 1.0])}, "t", "nats", 0.01
    )
    line = fig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata()[:2], [2.0, 0.1])  # sorted from the largest
    assert line.get_ydata()[2] > 0  # zero is drawn at the bottom of the log axis
    with pytest.raises(ValueError, match="one value per dimension"):
        plot_per_dimension({"a": np.zeros((2, 2))}, "t", "nats")
