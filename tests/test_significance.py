"""dgm.significance: the z-tests' Bonferroni threshold and the paired difference, against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm, sem, ttest_rel

from dgm.significance import paired_difference, with_se, z_threshold


def test_z_threshold_matches_scipy():
    for n, alpha in [(1, 0.05), (18, 1e-3), (100, 0.01)]:
        assert z_threshold(n, alpha) == pytest.approx(norm.isf(alpha / (2 * n)), rel=1e-9)
    with pytest.raises(ValueError):
        z_threshold(0, 0.1)
    with pytest.raises(ValueError):
        z_threshold(3, 1.5)


def test_paired_difference_against_scipys_paired_t_test():
    rng = np.random.default_rng(0)
    b = rng.normal(8.4, 0.3, size=400)
    a = b - 0.01 + rng.normal(0, 0.02, size=400)  # the same examples: a paired comparison
    d = paired_difference(a, b)
    assert d.n == 400 and d.mean == pytest.approx(np.mean(a) - np.mean(b), rel=1e-12)
    assert d.se == pytest.approx(sem(a - b), rel=1e-12)
    assert d.z == pytest.approx(ttest_rel(a, b).statistic, rel=1e-12)
    assert d.z < -4  # the pairing removes the examples' spread (sd 0.3), far larger than 0.01


def test_paired_difference_refuses_what_is_not_a_pairing():
    for a, b in [(np.ones(3), np.ones(4)), (np.ones(1), np.ones(1)), (np.ones((2, 2)), np.ones((2, 2)))]:
        with pytest.raises(ValueError, match="same n >= 2"):
            paired_difference(a, b)
    with pytest.raises(ValueError, match="finite"):
        paired_difference(np.array([1.0, np.nan]), np.ones(2))
    same = paired_difference(np.ones(5), np.ones(5))
    assert same.mean == 0 and same.se == 0 and same.z == 0


def test_a_difference_is_written_to_its_standard_errors_second_digit():
    assert with_se(-0.0057716, 0.0018121, sign=True) == "-0.0058 ± 0.0018"
    assert with_se(0.0057716, 0.0018121) == "0.0058 ± 0.0018"
    assert with_se(2.9e-05, 1.2e-05, sign=True) == "+0.000029 ± 0.000012"
    assert with_se(0.0963, 0.031) == "0.096 ± 0.031"
    assert with_se(12.34, 3.2) == "12.3 ± 3.2" and with_se(1.0, 0.0) == "1.0000 ± 0.0000"
    with pytest.raises(ValueError, match="standard error"):
        with_se(1.0, -0.1)


def test_comparisons_against_a_reference_and_what_pairing_buys():
    from scipy.stats import pearsonr

    from dgm.significance import against_reference, pairing_gain

    rng = np.random.default_rng(1)
    ref = rng.normal(8.4, 0.3, size=200)
    each = {"ref": ref, "near": ref + rng.normal(-0.01, 0.02, 200), "far": rng.normal(8.4, 0.3, 200)}
    diffs = against_reference(each, "ref")
    assert list(diffs) == ["near", "far"]
    assert diffs["near"].z == pytest.approx(ttest_rel(each["near"], ref).statistic, rel=1e-12)
    corr, ratio = pairing_gain(each, "ref")
    assert corr == pytest.approx(pearsonr(each["far"], ref).statistic, rel=1e-12)  # the unpaired one
    assert ratio == pytest.approx(np.std(each["far"] - ref, ddof=1) / np.std(ref, ddof=1), rel=1e-12)
    assert ratio > 1 > np.std(each["near"] - ref, ddof=1) / np.std(ref, ddof=1)
