"""The EM chapter's experiment: the claims its text makes, for every profile, and in the built book."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")


import matplotlib.pyplot as plt
import numpy as np
import pytest

from dgm.experiments.em_gmm import (
    SETTINGS,
    match_components,
    plot_amortised,
    plot_em_snapshots,
    plot_log_likelihood,
    run,
)
from dgm.gmm import fit_gmm
from dgm.profiles import PROFILES, RunLog

from bookutils import glued

CHAPTER = "book/theory/em_gmm.ipynb"


@pytest.fixture(scope="module", params=["smoke", "cpu"])  # gpu uses the cpu settings
def demo(request):
    log = RunLog()
    return run(SETTINGS.get(request.param), log=log), log


def test_gpu_profile_is_the_cpu_one():
    # the experiment is numpy on the CPU: testing the cpu settings covers the gpu profile
    assert SETTINGS.get("gpu") == SETTINGS.get("cpu")
    assert set(PROFILES) == {"smoke", "cpu", "gpu"}


def test_em_claims(demo):
    result, log = demo
    fit = result.fit
    assert fit.converged and fit.n_iter < result.settings.n_iter
    assert result.min_increment >= -1e-12  # "it never decreased"
    assert np.isclose(result.min_increment, np.diff(fit.log_likelihoods).min())
    assert fit.log_likelihood > result.true_log_likelihood  # "above the true parameters'"
    assert fit.log_likelihood > fit.log_likelihoods[0] + 0.1
    assert [t.name for t in log.trainings] == ["em", "amortised_linear", "amortised_quadratic"]
    assert log.trainings[0].epochs == fit.n_iter


def test_snapshots_are_the_iterates(demo):
    result, _ = demo
    assert max(result.snapshots) == result.fit.n_iter
    np.testing.assert_array_equal(result.snapshots[0].means, result.init.means)
    t = sorted(result.snapshots)[1]
    again = fit_gmm(result.X, 3, n_iter=t, tol=0.0, init=result.init)
    np.testing.assert_allclose(result.snapshots[t].covariances, again.covariances)


def test_staircase_claims(demo):
    result, _ = demo
    stairs = result.stairs.reshape(-1)
    assert np.diff(stairs).min() > 0  # "no half-step goes down"
    # after each E-step the ELBO is the log-likelihood of that iterate
    np.testing.assert_allclose(
        result.stairs[:, 0], result.fit.log_likelihoods[: len(result.stairs)], atol=1e-10
    )


def test_sklearn_claims(demo):
    result, _ = demo
    c = result.sklearn
    assert c.n_iter == result.fit.n_iter
    assert np.isclose(c.log_likelihood, result.fit.log_likelihood)
    assert c.log_likelihood_diff < 1e-6 and c.curve_diff < 1e-6
    assert max(c.weights_diff, c.means_diff, c.covariances_diff) < 1e-4


def test_amortised_claims(demo):
    result, _ = demo
    lin, quad = result.amortised["linear"], result.amortised["quadratic"]
    assert np.isclose(lin.log_likelihood, result.fit.log_likelihood)
    assert quad.gap < 0.05 and lin.gap > 0.1  # "within ... nats", "stuck ... below"
    assert lin.gap / quad.gap > 10
    assert quad.elbos[-1] > quad.elbos[-101]  # "still closing in"
    for f in (lin, quad):
        assert (f.elbos <= f.log_likelihood + 1e-12).all()


def test_match_components():
    rng = np.random.default_rng(0)
    means = rng.standard_normal((5, 3))
    perm = rng.permutation(5)
    p = match_components(means, means[perm] + 1e-3)
    np.testing.assert_allclose(means[perm][p], means)


def test_figures(demo):
    result, _ = demo
    for make in (plot_em_snapshots, plot_log_likelihood, plot_amortised):
        fig = make(result)
        assert fig.axes
        plt.close(fig)


def check_claims(g: dict) -> None:
    """The claims the chapter's text makes about its experiment's numbers (glued strings or values)."""
    num = lambda k: float(g[k])  # noqa: E731
    assert str(g["em_converged"]) == "True"
    assert num("em_min_increment") >= -1e-12
    assert num("em_stairs_min_rise") > 0
    assert num("em_final_ll") > num("em_true_ll") and num("em_final_ll") > num("em_init_ll")
    assert int(g["em_sk_n_iter"]) == int(g["em_n_iter"])
    assert num("em_sk_log_likelihood_diff") < 1e-6 and num("em_sk_curve_diff") < 1e-6
    for k in ("weights", "means", "covariances"):
        assert num(f"em_sk_{k}_diff") < 1e-4
    assert num("em_gap_quadratic") < 0.05 < 0.1 < num("em_gap_linear")
    assert num("em_gap_ratio") > 10
    assert num("em_gap_ratio") == pytest.approx(num("em_gap_linear") / num("em_gap_quadratic"), rel=1e-4)


def test_chapter_values_hold_the_chapters_claims(demo):
    result, _ = demo
    values = result.chapter_values()
    check_claims(values)
    assert values["em_n_iter"] == result.fit.n_iter and values["em_n_points"] == result.settings.n_points
    assert values["em_final_ll"] == result.fit.log_likelihood
    assert values["em_stairs_min_rise"] == pytest.approx(np.diff(result.stairs.reshape(-1)).min())


@pytest.mark.book
def test_glued_numbers_in_the_built_book(built_book):
    assert built_book.returncode == 0, built_book.log[-3000:]
    g = glued(built_book.executed / CHAPTER)
    assert g["em_kkt_holds"] == g["em_identities_hold"] == g["em_covariance_ok"] == "True"
    check_claims(g)
    assert int(g["em_n_points"]) == SETTINGS.get("smoke").n_points


def test_em_steps_replay_the_fit_and_the_animation_scrubs_offline():
    from dgm.animation import offline_player
    from dgm.experiments.em_gmm import em_animation, em_steps

    result = run(SETTINGS.get("smoke"))
    steps = em_steps(result)
    assert len(steps) == result.fit.n_iter + 1
    np.testing.assert_allclose(steps[-1].means, result.fit.params.means, atol=1e-10)  # fit_gmm's own answer
    np.testing.assert_allclose(steps[0].means, result.init.means)
    anim = em_animation(result, max_iter=4)
    assert anim.n_frames == 5 and anim._repr_html_() == anim.html
    assert 'type="range"' in anim.html and anim.html.count("data:image/png;base64") == 5
    assert "https://" not in anim.html and 'class="fa' not in anim.html  # nothing loaded from a CDN
    with pytest.raises(ValueError, match="player changed"):
        offline_player("<html>no stylesheet here</html>")


def test_the_animation_shows_its_last_frame_where_nothing_animates():
    import base64
    import io
    import re

    from PIL import Image

    from dgm.experiments.em_gmm import em_animation

    anim = em_animation(run(SETTINGS.get("smoke")), max_iter=4)
    frames = [f.replace("\\n", "") for f in re.findall(r'data:image/png;base64,([^"]+)"', anim.html)]

    def pixels(png: bytes) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=float)

    still = pixels(anim._repr_png_())  # what the PDF shows
    assert np.array_equal(still, pixels(base64.b64decode(frames[-1])))
    assert not np.array_equal(still, pixels(base64.b64decode(frames[0])))
