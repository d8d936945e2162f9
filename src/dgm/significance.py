"""How far from its expected value a Monte Carlo estimate may land before a test calls it wrong.

The book's chapters check their statements on estimates with z-tests: (estimate - claimed value)
/ standard error. Making many tests at once, each at the level :func:`z_threshold` gives, keeps the
chance that any of them rejects a true statement below ``false_alarm`` (Bonferroni's inequality).
Two models evaluated on the same examples are compared by :func:`paired_difference`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def z_threshold(n_tests: int, false_alarm: float) -> float:
    """|z| above which n_tests two-sided z-tests reject with total probability <= false_alarm (Bonferroni)."""
    if n_tests < 1 or not 0 < false_alarm < 1:
        raise ValueError(f"need n_tests >= 1 and 0 < false_alarm < 1, got {n_tests}, {false_alarm}")
    return NormalDist().inv_cdf(1 - false_alarm / (2 * n_tests))


@dataclass(frozen=True)
class PairedDifference:
    """The mean of a_i - b_i over n paired examples, and its standard error sd(a_i - b_i) / sqrt(n)."""

    mean: float
    se: float
    n: int

    @property
    def z(self) -> float:
        """mean / se: how many standard errors the difference is from zero (inf when se = 0 < |mean|)."""
        if self.se == 0:
            return 0.0 if self.mean == 0 else math.copysign(math.inf, self.mean)
        return self.mean / self.se


def paired_difference(a: np.ndarray, b: np.ndarray) -> PairedDifference:
    """Compare two estimates made on the same n >= 2 examples: a, b (n,) -> the mean of a - b and its SE.

    The standard error is over the examples (and whatever Monte Carlo noise each value has); it does
    not measure what another training seed would change.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two estimates on the same n >= 2 examples, got shapes {a.shape}, {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("the estimates must be finite")
    d = a - b
    return PairedDifference(float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), len(d))


def with_se(value: float, se: float, sign: bool = False) -> str:
    """``value ± se`` to the decimal of the standard error's second significant digit (at least one)."""
    if not se >= 0 or not math.isfinite(se):
        raise ValueError(f"a standard error is finite and >= 0, got {se!r}")
    places = 4 if se == 0 else max(1, 1 - math.floor(math.log10(se)))
    return f"{value:{'+' if sign else ''}.{places}f} ± {se:.{places}f}"


def against_reference(per_example: dict, reference) -> dict:
    """Each estimate minus the reference's, paired over the same examples: {name: (n,)} -> {name:
    :class:`PairedDifference`}, in the given order, the reference left out."""
    ref = per_example[reference]
    return {name: paired_difference(a, ref) for name, a in per_example.items() if name != reference}


def pairing_gain(per_example: dict, reference) -> tuple[float, float]:
    """What pairing buys: the smallest correlation of an estimate with the reference's, and the largest
    standard deviation of a difference from it over the reference's own standard deviation."""
    ref, others = per_example[reference], [a for name, a in per_example.items() if name != reference]
    corr = min(float(np.corrcoef(a, ref)[0, 1]) for a in others)
    return corr, max(float(np.std(a - ref, ddof=1)) for a in others) / float(np.std(ref, ddof=1))
