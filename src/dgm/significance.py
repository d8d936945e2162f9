"""How far from its expected value a Monte Carlo estimate may land before a test calls it wrong.

The book's chapters check their statements on estimates with z-tests: (estimate - claimed value)
/ standard error. Making many tests at once, each at the level :func:`z_threshold` gives, keeps the
chance that any of them rejects a true statement below ``false_alarm`` (Bonferroni's inequality).
"""

from __future__ import annotations

from statistics import NormalDist


def z_threshold(n_tests: int, false_alarm: float) -> float:
    """|z| above which n_tests two-sided z-tests reject with total probability <= false_alarm (Bonferroni)."""
    if n_tests < 1 or not 0 < false_alarm < 1:
        raise ValueError(f"need n_tests >= 1 and 0 < false_alarm < 1, got {n_tests}, {false_alarm}")
    return NormalDist().inv_cdf(1 - false_alarm / (2 * n_tests))
