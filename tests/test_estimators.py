"""The gradient estimators against closed forms and torch.distributions, and the chapter's claims."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import norm
from torch.distributions import Normal, kl_divergence

from bookutils import ROOT, glued
from dgm.estimators import (
    ESTIMATOR_SETTINGS,
    ESTIMATORS,
    EstimatorSettings,
    b1_change,
    GaussianTarget,
    gradient_inside_grad,
    make_target,
    normal_score,
    plot_variances,
    run_variance_experiment,
    score_function_baseline_grad,
    table_markdown,
    z_threshold,
)

# The unbiasedness tests make 3 estimators x 2D = 18 two-sided z-tests; with the Bonferroni
# threshold below a correct implementation fails any of them with probability <= 1e-3.
D = 3
FALSE_ALARM = 1e-3
THRESHOLD = z_threshold(len(ESTIMATORS) * 2 * D, FALSE_ALARM)


def random_problem(seed: int = 0) -> tuple[GaussianTarget, torch.Tensor, torch.Tensor]:
    """A target and a q away from it, both with random (seeded) means and scales."""
    g = torch.Generator().manual_seed(seed)
    target = GaussianTarget(-20.0, torch.randn(D, generator=g), 0.3 * torch.randn(D, generator=g))
    return target, 0.5 * torch.randn(D, generator=g), 0.3 * torch.randn(D, generator=g)


def reference_elbo(target: GaussianTarget, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log p(x) - KL(q || posterior) by torch.distributions."""
    q = Normal(mu, log_std.exp())
    post = Normal(target.mean, target.log_std.exp())
    return target.log_evidence - kl_divergence(q, post).sum()


def test_score_matches_autograd_of_torch_log_prob():
    target, mu, log_std = random_problem(1)
    z = torch.randn(5, D)
    mu_, log_std_ = mu.clone().requires_grad_(), log_std.clone().requires_grad_()
    for i in range(5):
        lp = Normal(mu_, log_std_.exp()).log_prob(z[i]).sum()
        g_mu, g_ls = torch.autograd.grad(lp, (mu_, log_std_))
        s_mu, s_ls = normal_score(z[i], mu, log_std)
        torch.testing.assert_close(s_mu, g_mu)
        torch.testing.assert_close(s_ls, g_ls)


def test_closed_form_elbo_and_gradient_match_torch_distributions():
    target, mu, log_std = random_problem(2)
    torch.testing.assert_close(target.elbo(mu, log_std), reference_elbo(target, mu, log_std))
    mu_, log_std_ = mu.clone().requires_grad_(), log_std.clone().requires_grad_()
    g_mu, g_ls = torch.autograd.grad(reference_elbo(target, mu_, log_std_), (mu_, log_std_))
    e_mu, e_ls = target.elbo_grad(mu, log_std)
    torch.testing.assert_close(e_mu, g_mu)
    torch.testing.assert_close(e_ls, g_ls)
    # and the log joint is log p(x) + the posterior's log density
    z = torch.randn(4, D)
    ref = target.log_evidence + Normal(target.mean, target.log_std.exp()).log_prob(z).sum(-1)
    torch.testing.assert_close(target.log_joint(z), ref)


def z_scores(fn, seed: int = 3, n_rep: int = 40_000, n_samples: int = 8):
    target, mu, log_std = random_problem(0)
    eps = torch.randn(n_rep, n_samples, D, generator=torch.Generator().manual_seed(seed))
    g = torch.cat(fn(target.log_joint, mu, log_std, eps), dim=1).double()  # (R, 2D)
    exact = torch.cat(target.elbo_grad(mu, log_std)).double()
    se = g.std(dim=0) / n_rep**0.5
    return (g.mean(dim=0) - exact) / se, se


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_estimator_mean_matches_closed_form_gradient(name):
    z, se = z_scores(ESTIMATORS[name])
    assert z.abs().max() < THRESHOLD, (name, z)
    # The test has power: a bias above THRESHOLD * 0.1 ~ 0.4 (gradients here are of order 1) in any
    # coordinate is detected with probability >= 1/2.
    assert se.max() < 0.1, (name, se)


def test_the_same_test_rejects_the_gradient_moved_inside_the_integral():
    z, _ = z_scores(gradient_inside_grad)
    assert z.abs().max() > 10 * THRESHOLD


def test_z_threshold_matches_scipy():
    for n, alpha in [(1, 0.05), (18, 1e-3), (100, 0.01)]:
        assert z_threshold(n, alpha) == pytest.approx(norm.isf(alpha / (2 * n)), rel=1e-9)
    with pytest.raises(ValueError):
        z_threshold(0, 0.1)
    with pytest.raises(ValueError):
        z_threshold(3, 1.5)


def test_bad_input_is_a_clear_error():
    target, mu, log_std = random_problem(0)
    with pytest.raises(ValueError, match=r"\(R, S, D\)"):
        ESTIMATORS["reparameterisation"](target.log_joint, mu, log_std, torch.randn(10, D))
    with pytest.raises(ValueError, match="D = 3"):
        ESTIMATORS["score function"](target.log_joint, mu, log_std, torch.randn(2, 4, D + 1))
    with pytest.raises(ValueError, match="shape \\(D,\\)"):
        ESTIMATORS["score function"](target.log_joint, mu, log_std[:2], torch.randn(2, 4, D))
    with pytest.raises(ValueError, match="S >= 2"):
        score_function_baseline_grad(target.log_joint, mu, log_std, torch.randn(2, 1, D))
    with pytest.raises(ValueError, match="log_joint must map"):
        ESTIMATORS["score function"](lambda z: z.sum(), mu, log_std, torch.randn(2, 4, D))
    with pytest.raises(ValueError):
        make_target(0, -1.0)
    with pytest.raises(ValueError, match="S >= 2"):
        EstimatorSettings(dims=(2,), n_samples=(1, 2), dim_for_sample_sweep=2, samples_for_dim_sweep=4, n_repeats=10)


def check_claims(v: dict[str, float]) -> None:
    """The chapter's claims, on the numbers it glues (or the same numbers computed here)."""
    assert v["maxz_sf"] < v["z_threshold"] and v["maxz_base"] < v["z_threshold"] and v["maxz_rep"] < v["z_threshold"]
    assert v["maxz_inside"] > 10 * v["z_threshold"]  # "zero for every parameter, many se away"
    assert v["se_mu1_sf"] > v["se_mu1_base"] > v["se_mu1_rep"]
    assert v["ratio_sf_rep"] > 1000 and v["ratio_base_rep"] > 10 and v["ratio_sf_base"] > 10
    assert 0.8 < v["growth_rep"] < 1.25  # "does not depend on the dimension"
    assert v["growth_sf"] > 1.5 and v["growth_base"] > 3  # both grow with D
    assert 0.9 < v["offset_share"] < 1.3  # the ELBO alone explains the SF variance
    for k in ("slope_sf", "slope_base", "slope_rep"):
        assert -1.3 < v[k] < -0.8, k  # "all fall like 1/S"
    assert v["slope_base"] < min(v["slope_sf"], v["slope_rep"])  # "a little steeper"
    # The exercise on the entropy term: b = 1 changes L^2 by (1 - 2L) / L^2, about 2 / |L|, "small".
    for d in ("min_dim", "max_dim"):
        elbo, change = v[f"elbo_{d}"], v[f"b1_change_{d}"]
        assert elbo < -10 and change == pytest.approx((1 - 2 * elbo) / elbo**2, rel=1e-9)
        assert change == pytest.approx(2 / abs(elbo), rel=0.05) and 0 < change < 0.05


@pytest.fixture(scope="module")
def smoke_result():
    return run_variance_experiment(ESTIMATOR_SETTINGS.get("smoke"), "cpu")


def chapter_numbers(r) -> dict[str, float]:
    sf, base, rep, inside = (*ESTIMATORS, "gradient inside the integral")
    return {
        "z_threshold": z_threshold(len(r.param_names) * len(ESTIMATORS), 1e-3),
        "maxz_sf": r.max_abs_z(sf), "maxz_base": r.max_abs_z(base), "maxz_rep": r.max_abs_z(rep),
        "maxz_inside": r.max_abs_z(inside),
        "se_mu1_sf": r.table_se[sf][0], "se_mu1_base": r.table_se[base][0], "se_mu1_rep": r.table_se[rep][0],
        "ratio_sf_rep": r.ratio_at_max_dim(sf, rep), "ratio_base_rep": r.ratio_at_max_dim(base, rep),
        "ratio_sf_base": r.ratio_at_max_dim(sf, base),
        "growth_sf": r.growth_with_dim(sf), "growth_base": r.growth_with_dim(base), "growth_rep": r.growth_with_dim(rep),
        "offset_share": r.var_vs_dim[sf][-1] / r.offset_var_vs_dim()[-1],
        "elbo_min_dim": r.elbo_vs_dim[0], "elbo_max_dim": r.elbo_vs_dim[-1],
        "b1_change_min_dim": b1_change(r.elbo_vs_dim[0]), "b1_change_max_dim": b1_change(r.elbo_vs_dim[-1]),
        "slope_sf": r.slope_vs_samples(sf), "slope_base": r.slope_vs_samples(base), "slope_rep": r.slope_vs_samples(rep),
    }


def test_chapter_claims_hold_in_the_smoke_profile(smoke_result):
    check_claims(chapter_numbers(smoke_result))


def test_chapter_claims_hold_in_the_cpu_profile():
    # What a reader of the cpu build sees (the gpu profile sweeps further with more repeats).
    check_claims(chapter_numbers(run_variance_experiment(ESTIMATOR_SETTINGS.get("cpu"), "cpu")))


def test_variance_ordering_at_every_point(smoke_result):
    r = smoke_result
    sf, base, rep = ESTIMATORS
    for table in (r.var_vs_dim, r.var_vs_samples):
        assert (table[sf] > table[base]).all() and (table[base] > table[rep]).all()


@pytest.mark.book
def test_glued_numbers_in_the_built_chapter(built_book):
    assert built_book.returncode == 0, built_book.log[-3000:]
    values = glued(built_book.executed / "book" / "theory" / "log_derivative_trick.ipynb")
    v = {k.removeprefix("ldt_"): float(x) for k, x in values.items()}
    check_claims(v)
    assert v["log_evidence"] == ESTIMATOR_SETTINGS.smoke.log_evidence
    assert v["max_dim"] == ESTIMATOR_SETTINGS.smoke.dims[-1]
    assert (ROOT / "book" / "theory" / "log_derivative_trick.md").is_file()


def test_table_and_plot_show_every_estimator(smoke_result):
    import matplotlib

    matplotlib.use("Agg")
    r = smoke_result
    table = table_markdown(r).splitlines()
    assert len(table) == 2 + len(r.param_names) + 1  # header, rule, one row per parameter, max |z|
    assert all(name in table[0] for name in r.table_mean)
    fig = plot_variances(r)
    left, right = fig.axes
    assert len(left.get_lines()) == len(ESTIMATORS) + 1 and len(right.get_lines()) == len(ESTIMATORS)
    assert left.get_xscale() == left.get_yscale() == "log"
