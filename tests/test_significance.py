"""dgm.significance: the Bonferroni threshold of the chapters' z-tests, against scipy."""

from __future__ import annotations

import pytest
from scipy.stats import norm

from dgm.significance import z_threshold


def test_z_threshold_matches_scipy():
    for n, alpha in [(1, 0.05), (18, 1e-3), (100, 0.01)]:
        assert z_threshold(n, alpha) == pytest.approx(norm.isf(alpha / (2 * n)), rel=1e-9)
    with pytest.raises(ValueError):
        z_threshold(0, 0.1)
    with pytest.raises(ValueError):
        z_threshold(3, 1.5)
