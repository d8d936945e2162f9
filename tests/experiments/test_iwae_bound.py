"""The IWAE chapter's experiment: its estimators against closed forms (probabilistic PCA), and the
chapter's claims on the cpu-profile run and on the glued values of the built (smoke) book."""

from __future__ import annotations

import math
from dataclasses import replace
from statistics import NormalDist

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from dgm.experiments.iwae_bound import (
    KS,
    SETTINGS,
    IWAEResult,
    IWAESettings,
    bounds_animation,
    bounds_for_model,
    plot_bounds,
    run,
)
from dgm.experiments.vae_2d import SETTINGS as VAE2D_SETTINGS
from dgm.iwae import ModeBounds, chi_square, repeated_iwae_bound
from dgm.profiles import RunLog

from bookutils import glued_values
from ppca import B_MEAN, LOG_S_DIAG, W_DIAG, linear_vae, ppca_marginal, ppca_posterior

CHAPTER = "book/vae/iwae_bound.ipynb"
W_FULL, LOG_S_FULL = torch.tensor([[2.0, 0.5], [-1.0, 1.5]]), torch.tensor([0.0, -0.5])


def sample_x(W, log_s, n, seed):
    torch.manual_seed(seed)
    return ppca_marginal(W, B_MEAN, log_s).sample((n,)).float()


def grid_chi_square(model, W, log_s, x, half_width=8.0, n=401) -> torch.Tensor:
    """chi^2(p(z | x) || q(z | x)) = sum_g p^2 / q h^2 - 1 on a grid, densities from
    torch.distributions: (B,)."""
    post = ppca_posterior(W, B_MEAN, log_s, x)
    with torch.no_grad():
        mu_z, log_std_z = (t.double() for t in model.encode(x))
    out = []
    for i in range(x.shape[0]):
        sd = post.covariance_matrix[i].diag().sqrt().max().item() + log_std_z[i].exp().max().item()
        axis = torch.linspace(-half_width * sd, half_width * sd, n, dtype=torch.float64)
        h = (axis[1] - axis[0]).item()
        z = torch.cartesian_prod(axis, axis) + post.mean[i]
        log_p = MultivariateNormal(post.mean[i], post.covariance_matrix[i]).log_prob(z)
        log_q = Normal(mu_z[i], log_std_z[i].exp()).log_prob(z).sum(dim=1)
        out.append(torch.exp(torch.logsumexp(2 * log_p - log_q, dim=0)).item() * h * h - 1)
    return torch.tensor(out, dtype=torch.float64)


# --------------------------------------------------------------------------- the estimators


def test_repeated_estimates_are_laid_out_by_repeat_and_point():
    # q = p(z | x): every one-draw estimate is log p(x) exactly, for every repeat and K.
    model = linear_vae(W_DIAG, LOG_S_DIAG)
    x = sample_x(W_DIAG, LOG_S_DIAG, 7, seed=0)
    log_px = ppca_marginal(W_DIAG, B_MEAN, LOG_S_DIAG).log_prob(x.double())
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for k, repeats, max_latent in [
            (1, 5, 2**18),
            (3, 4, 6),
            (300, 3, 500),
        ]:  # one group; 2 rows; 1 row a call
            est = repeated_iwae_bound(model, x, k, repeats, g, max_latent=max_latent)
            assert est.shape == (repeats, 7) and est.dtype == torch.float64
            torch.testing.assert_close(est, log_px.expand(repeats, 7), atol=2e-5, rtol=0)
    for bad in (dict(k=0), dict(repeats=0), dict(repeats=2.0), dict(x=x[0])):
        with pytest.raises(ValueError, match="k must|repeats must|shape"):
            repeated_iwae_bound(model, **{"x": x, "k": 2, "repeats": 3, **bad})


def test_repeats_are_independent_draws():
    model = linear_vae(W_FULL, LOG_S_FULL, inflate=1.5)
    x = sample_x(W_FULL, LOG_S_FULL, 1, seed=1)
    with torch.no_grad():
        est = repeated_iwae_bound(model, x, 2, 4000, torch.Generator().manual_seed(1), max_latent=1000)[:, 0]
    assert est.unique().numel() == 4000
    # independent draws: neighbouring repeats (also across groups of 500 rows) are uncorrelated
    r = np.corrcoef(est[:-1].numpy(), est[1:].numpy())[0, 1]
    assert abs(r) < 4 / math.sqrt(4000)


def test_chi_square_against_grid_integration():
    model = linear_vae(W_FULL, LOG_S_FULL, inflate=1.5)
    x = sample_x(W_FULL, LOG_S_FULL, 3, seed=2)
    log_px = ppca_marginal(W_FULL, B_MEAN, LOG_S_FULL).log_prob(x.double())
    with torch.no_grad():
        ours = chi_square(model, x, log_px, 100_000, torch.Generator().manual_seed(2))
    ref = grid_chi_square(model, W_FULL, LOG_S_FULL, x)
    assert (ref > 0.1).all()  # not a trivial case
    torch.testing.assert_close(ours, ref, rtol=0.05, atol=0)
    exact = linear_vae(W_DIAG, LOG_S_DIAG)  # q = p(z | x): chi^2 = 0
    x = sample_x(W_DIAG, LOG_S_DIAG, 3, seed=3)
    with torch.no_grad():
        zero = chi_square(exact, x, ppca_marginal(W_DIAG, B_MEAN, LOG_S_DIAG).log_prob(x.double()), 1000)
    assert zero.abs().max() < 1e-4
    with pytest.raises(ValueError, match="log_px must have shape"):
        chi_square(exact, x, torch.zeros(2), 10)


SMALL = IWAESettings(
    n_points=60, samples_per_k=40, chi2_samples=4000, vae2d=VAE2D_SETTINGS.smoke, ks=(1, 4, 20, 400)
)


@pytest.fixture(scope="module")
def ppca_bounds():
    model = linear_vae(W_FULL, LOG_S_FULL, inflate=1.5)
    x = sample_x(W_FULL, LOG_S_FULL, SMALL.n_points, seed=4)
    return model, x, bounds_for_model(model, x, SMALL, "ppca")


def test_bounds_for_model_against_closed_forms(ppca_bounds):
    model, x, r = ppca_bounds
    log_px = ppca_marginal(W_FULL, B_MEAN, LOG_S_FULL).log_prob(x.double())
    with torch.no_grad():
        mu_z, log_std_z = (t.double() for t in model.encode(x))
    q = MultivariateNormal(mu_z, torch.diag_embed(torch.exp(2 * log_std_z)))
    kl = kl_divergence(q, ppca_posterior(W_FULL, B_MEAN, LOG_S_FULL, x))  # ELBO = log p(x) - KL(q || p(z|x))
    assert r.ks == SMALL.ks and r.repeats == (40, 10, 2, 2)
    assert r.log_px == pytest.approx(log_px.mean().item(), abs=1e-4)
    assert r.elbo == pytest.approx((log_px - kl).mean().item(), abs=1e-4)  # quadrature is exact here
    assert r.elbo_quadrature_error < 1e-4
    assert r.chi2 == pytest.approx(grid_chi_square(model, W_FULL, LOG_S_FULL, x).mean().item(), rel=0.1)
    z = 4.0
    assert abs(r.bound[0] - r.elbo) < z * r.se[0]
    assert r.elbo_gap > 0.05 and r.gap[0] > z * r.se[0]  # a visible gap, so the rest is not vacuous
    assert (r.step_z > -z).all() and (r.gap_z > -z).all()
    assert abs(r.gap_z[-1]) < z
    assert r.abs_error.shape == (4,) and (np.diff(r.abs_error[:3]) < 0).all()


def test_standard_error_matches_the_spread_over_seeds(ppca_bounds):
    model, x, first = ppca_bounds
    settings = replace(SMALL, chi2_samples=1, ks=(1, 4))
    bounds = np.array(
        [bounds_for_model(model, x, replace(settings, seed=s)).bound for s in range(1, 31)]
    )  # (30, 2)
    spread = bounds.std(axis=0, ddof=1)
    np.testing.assert_allclose(spread, first.se[:2], rtol=0.4)  # 30 runs: the sd is known to ~13%


def _mode(gap, se, ks=(1, 10, 100), chi2=0.02, log_px=-4.0):
    gap, se = np.array(gap, float), np.array(se, float)
    return ModeBounds(
        "univariate",
        tuple(ks),
        (2,) * len(ks),
        log_px - gap,
        se,
        np.abs(gap),
        log_px,
        log_px - 0.01,
        1e-5,
        chi2,
    )


def test_mode_bounds_derived_quantities():
    m = _mode(gap=[0.01, 0.001, -0.0001], se=[0.001, 0.0005, 0.0005])
    np.testing.assert_allclose(m.gap, [0.01, 0.001, -0.0001])
    np.testing.assert_allclose(
        m.step_z, [0.009 / math.hypot(0.001, 0.0005), 0.0011 / math.hypot(0.0005, 0.0005)]
    )
    np.testing.assert_allclose(m.predicted_gap, [0.01, 0.001, 0.0001])
    assert m.converged_from(4.0) == 10 and m.converged_from(1.5) == 100 and m.converged_from(0.1) is None
    assert list(m.measurable(4.0)) == [True, False, False]
    assert m.rate_deviation(4.0) == pytest.approx(0.0)
    assert math.isnan(m.rate_deviation(100.0))
    assert m.rise == pytest.approx(0.0101) and m.rise_z == pytest.approx(0.0101 / math.hypot(0.001, 0.0005))
    assert m.elbo_gap == pytest.approx(0.01)


# --------------------------------------------------------------------------- settings, table, plot


def test_settings():
    for profile in ("smoke", "cpu", "gpu"):
        assert SETTINGS.get(profile).ks == KS == (1, 2, 5, 10, 50, 100, 1000, 5000)  # the list
    cpu = SETTINGS.cpu
    assert 200 <= cpu.n_points <= 1000 and cpu.repeats(1) == cpu.samples_per_k and cpu.repeats(5000) == 2
    assert SETTINGS.gpu.n_points == int(0.3 * VAE2D_SETTINGS.gpu.count)  # the whole test set
    for profile in ("smoke", "cpu", "gpu"):  # the 2d chapter's models, with that chapter's settings
        assert SETTINGS.get(profile).vae2d == VAE2D_SETTINGS.get(profile)
    for bad in (dict(ks=(2, 1)), dict(ks=(0, 1)), dict(ks=()), dict(n_points=0), dict(min_repeats=1)):
        with pytest.raises(ValueError):
            replace(SMALL, **{"n_points": 5, "samples_per_k": 5, "chi2_samples": 5, **bad})


def _result(settings=SMALL):
    ks = settings.ks
    uni = _mode(gap=np.linspace(0.01, 0, len(ks)), se=[1e-3] * len(ks), ks=ks)
    multi = replace(uni, mode="multivariate")
    return IWAEResult(settings, uni, multi, RunLog(), 1.0)


def test_table_and_plot_show_both_models():
    r = _result()
    lines = r.bounds_table().to_markdown().splitlines()
    assert len(lines) == 2 + len(SMALL.ks) + 2 and all(line.count("|") == 8 for line in lines)
    assert "univariate: L_K" in lines[0] and "multivariate: L_K" in lines[0]
    assert lines[2].startswith("| K = 1 |") and f"{r.univariate.bound[0]:.5f}" in lines[2]
    fig = plot_bounds(r)
    assert len(fig.axes) == 2 and all(ax.get_xscale() == "log" for ax in fig.axes)
    assert [ax.get_title() for ax in fig.axes] == ["univariate", "multivariate"]
    anim = bounds_animation(r)
    assert anim.n_frames == len(SMALL.ks) and anim.html.count("data:image/png;base64") == len(SMALL.ks)
    assert 'type="range"' in anim.html and "https://" not in anim.html  # a slider, nothing from a CDN


def test_z_threshold_is_bonferroni_over_the_chapters_tests():
    r = _result()
    assert r.n_tests == 2 * (1 + len(SMALL.ks) + len(SMALL.ks) - 1)
    assert r.z_crit == pytest.approx(NormalDist().inv_cdf(1 - SMALL.false_alarm / (2 * r.n_tests)))


# --------------------------------------------------------------------------- the chapter's claims


def check_claims(v: dict, cpu_profile: bool) -> None:
    """The chapter's statements, on the numbers it glues; per-K values recomputed into its summaries."""
    ks, z = KS, v["iw_z_crit"]
    n_tests = 2 * 2 * len(ks)
    assert v["iw_n_tests"] == n_tests and v["iw_k_max"] == ks[-1]
    assert z == pytest.approx(NormalDist().inv_cdf(1 - v["iw_false_alarm"] / (2 * n_tests)))
    for t in ("uni", "multi"):
        p = f"iw_{t}_"
        L = np.array([v[f"{p}l_{k}"] for k in ks])
        gap = np.array([v[f"{p}gap_{k}"] for k in ks])
        se = np.array([v[f"{p}se_{k}"] for k in ks])
        np.testing.assert_allclose(L + gap, v[p + "log_px"], rtol=0, atol=1e-9)
        assert (se > 0).all()
        # L_1 is the ELBO, within z* standard errors plus the quadrature's error
        assert v[p + "l1"] == L[0] and v[p + "l1_se"] == se[0]
        assert v[p + "l1_minus_elbo"] == pytest.approx(L[0] - v[p + "elbo"])
        assert abs(L[0] - v[p + "elbo"]) < z * se[0] + v[p + "quad_err"]
        assert v[p + "elbo_gap"] == pytest.approx(v[p + "log_px"] - v[p + "elbo"])
        # log p(x) >= L_K for every K
        assert v[p + "min_gap_z"] == pytest.approx((gap / se).min()) and (gap / se).min() > -z
        # L_K non-decreasing, and it does rise
        steps = np.diff(L) / np.hypot(se[1:], se[:-1])
        assert v[p + "min_step_z"] == pytest.approx(steps.min()) and steps.min() > -z
        assert v[p + "rise"] == pytest.approx(L[-1] - L[0])
        assert (
            v[p + "rise_z"] == pytest.approx((L[-1] - L[0]) / math.hypot(se[0], se[-1]))
            and v[p + "rise_z"] > z
        )
        # convergence: the last gap, and from which K on the gaps are within noise
        assert v[p + "gap_kmax"] == gap[-1] and v[p + "se_kmax"] == se[-1]
        within = np.abs(gap / se) < z
        k_conv = next((ks[i] for i in range(len(ks)) if within[i:].all()), "none")
        assert v[p + "k_conv"] == k_conv
        # the 1/K rate: where the gap is measurable, against chi^2 / 2K
        measurable = gap / se > z
        ratio = gap * 2 * np.array(ks) / v[p + "chi2"]
        if measurable.any():
            assert v[p + "rate_dev"] == pytest.approx(np.abs(ratio[measurable] - 1).max())
            assert v[p + "rate_kmax"] == np.array(ks)[measurable].max()
        assert v[p + "chi2"] > 0
        if cpu_profile:  # what the text says of the real run
            assert abs(v[p + "abs_err_kmax"]) < 0.005  # the target, point by point
            assert abs(gap[-1]) < 0.005
            assert k_conv != "none" and k_conv <= 100  # "closes within the first hundred samples"
            assert measurable[:2].all() and v[p + "rate_dev"] < 0.35  # "agrees with chi^2 / 2K"
            assert v[p + "elbo_gap"] < 0.01 and v[p + "chi2"] < 0.02  # "hardly vary"


@pytest.fixture(scope="session")
def cpu_result(tmp_path_factory):
    """The chapter's experiment in the cpu profile; its 2d VAEs trained from scratch in a temporary folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DGM_CHECKPOINT_DIR", str(tmp_path_factory.mktemp("iwae_checkpoints")))
        return run(SETTINGS.cpu, device="cpu")


def test_chapter_claims_hold_in_the_cpu_profile(cpu_result):
    assert cpu_result.settings == SETTINGS.cpu
    check_claims(cpu_result.chapter_values(), cpu_profile=True)
    names = [(t.name, t.epochs, t.loaded) for t in cpu_result.log.trainings]
    assert names == [
        ("univariate", VAE2D_SETTINGS.cpu.epochs, False),
        ("multivariate", VAE2D_SETTINGS.cpu.epochs, False),
    ]


@pytest.mark.book
def test_glued_numbers_in_the_built_chapter(built_book):
    assert built_book.returncode == 0, built_book.log[-3000:]
    v = glued_values(built_book.executed / CHAPTER)
    assert v["run_profile"] == "smoke"
    assert (
        v["iw_n_points"] == SETTINGS.smoke.n_points and v["iw_samples_per_k"] == SETTINGS.smoke.samples_per_k
    )
    assert (
        v["iw_chi2_samples"] == SETTINGS.smoke.chi2_samples
        and v["iw_log_px_tol"] == SETTINGS.smoke.log_px_tol
    )
    for mode in ("univariate", "multivariate"):
        assert v[f"run_epochs_{mode}"] == VAE2D_SETTINGS.smoke.epochs
    assert v["iw_estimation_time_s"] >= 0
    check_claims(v, cpu_profile=False)
