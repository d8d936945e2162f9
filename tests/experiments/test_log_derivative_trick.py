"""The log-derivative chapter's experiment: the claims its text makes, on its numbers and in the
built book."""

from __future__ import annotations

import pytest

from dgm.estimators import ESTIMATORS
from dgm.experiments.log_derivative_trick import SETTINGS, EstimatorSettings, b1_change, plot_variances, run
from dgm.significance import z_threshold

from bookutils import ROOT, glued


def check_claims(v: dict[str, float]) -> None:
    """The chapter's claims, on the numbers it glues (or the same numbers computed here)."""
    assert (
        v["maxz_sf"] < v["z_threshold"]
        and v["maxz_base"] < v["z_threshold"]
        and v["maxz_rep"] < v["z_threshold"]
    )
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
    return run(SETTINGS.get("smoke"), "cpu")


def independent_numbers(r) -> dict[str, float]:
    """The chapter's numbers computed here from the result's arrays, to check ``chapter_values`` against."""
    sf, base, rep, inside = (*ESTIMATORS, "gradient inside the integral")
    return {
        "z_threshold": z_threshold(len(r.param_names) * len(ESTIMATORS), 1e-3),
        "maxz_sf": r.max_abs_z(sf),
        "maxz_base": r.max_abs_z(base),
        "maxz_rep": r.max_abs_z(rep),
        "maxz_inside": r.max_abs_z(inside),
        "se_mu1_sf": r.table_se[sf][0],
        "se_mu1_base": r.table_se[base][0],
        "se_mu1_rep": r.table_se[rep][0],
        "ratio_sf_rep": r.ratio_at_max_dim(sf, rep),
        "ratio_base_rep": r.ratio_at_max_dim(base, rep),
        "ratio_sf_base": r.ratio_at_max_dim(sf, base),
        "growth_sf": r.growth_with_dim(sf),
        "growth_base": r.growth_with_dim(base),
        "growth_rep": r.growth_with_dim(rep),
        "offset_share": r.var_vs_dim[sf][-1] / r.offset_var_vs_dim()[-1],
        "elbo_min_dim": r.elbo_vs_dim[0],
        "elbo_max_dim": r.elbo_vs_dim[-1],
        "b1_change_min_dim": b1_change(r.elbo_vs_dim[0]),
        "b1_change_max_dim": b1_change(r.elbo_vs_dim[-1]),
        "slope_sf": r.slope_vs_samples(sf),
        "slope_base": r.slope_vs_samples(base),
        "slope_rep": r.slope_vs_samples(rep),
    }


def chapter_numbers(r) -> dict[str, float]:
    """What the chapter glues, without the ``ldt_`` prefix."""
    return {k.removeprefix("ldt_"): v for k, v in r.chapter_values().items()}


def test_chapter_values_are_the_results_numbers(smoke_result):
    values = chapter_numbers(smoke_result)
    for key, expected in independent_numbers(smoke_result).items():
        assert values[key] == pytest.approx(float(expected), rel=1e-12), key
    s = smoke_result.settings
    assert values["n_tests"] == 2 * s.table_dim * len(ESTIMATORS) and values["time_s"] > 0
    assert (values["min_dim"], values["max_dim"], values["table_repeats"]) == (
        s.dims[0],
        s.dims[-1],
        s.table_repeats,
    )


def test_chapter_claims_hold_in_the_smoke_profile(smoke_result):
    check_claims(chapter_numbers(smoke_result))


def test_chapter_claims_hold_in_the_cpu_profile():
    # What a reader of the cpu build sees (the gpu profile sweeps further with more repeats).
    check_claims(chapter_numbers(run(SETTINGS.get("cpu"), "cpu")))


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
    assert v["log_evidence"] == SETTINGS.smoke.log_evidence
    assert v["max_dim"] == SETTINGS.smoke.dims[-1]
    assert (ROOT / "book" / "theory" / "log_derivative_trick.md").is_file()


def test_table_and_plot_show_every_estimator(smoke_result):
    import matplotlib

    matplotlib.use("Agg")
    r = smoke_result
    table = r.table().to_markdown().splitlines()
    assert len(table) == 2 + len(r.param_names) + 1  # header, rule, one row per parameter, max |z|
    assert all(name in table[0] for name in r.table_mean)
    fig = plot_variances(r)
    left, right = fig.axes
    assert len(left.get_lines()) == len(ESTIMATORS) + 1 and len(right.get_lines()) == len(ESTIMATORS)
    assert left.get_xscale() == left.get_yscale() == "log"


def test_settings_refuse_sweeps_without_a_leave_one_out_sample():
    with pytest.raises(ValueError, match="S >= 2"):
        EstimatorSettings(
            dims=(2,), n_samples=(1, 2), dim_for_sample_sweep=2, samples_for_dim_sweep=4, n_repeats=10
        )
