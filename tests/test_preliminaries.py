"""The preliminaries chapter: its Monte Carlo check of the Gaussian KL, on the numbers it glues."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dgm.gaussians import monte_carlo_kl

from bookutils import glued

CHAPTER = "book/theory/preliminaries"


def test_monte_carlo_kl_agrees_with_torch_distributions():
    mean, log_std = torch.tensor([0.3, -2.0, 1.0]), torch.tensor([0.2, -0.7, 0.0])
    mean_2, log_std_2 = torch.tensor([0.0, -1.0, 2.0]), torch.tensor([0.5, 0.0, -0.3])
    exact = float(kl_divergence(Normal(mean, log_std.exp()), Normal(mean_2, log_std_2.exp())).sum())
    estimate, se = monte_carlo_kl(mean, log_std, mean_2, log_std_2, n_samples=200_000, seed=1)
    assert se > 0 and abs(estimate - exact) < 5 * se
    assert monte_carlo_kl(mean, log_std, n_samples=1000, seed=3) == monte_carlo_kl(
        mean, log_std, n_samples=1000, seed=3
    )
    # q = p: every sample's log-ratio is 0.
    assert monte_carlo_kl(mean, log_std, mean, log_std, n_samples=100) == (0.0, 0.0)
    with pytest.raises(ValueError, match="n_samples"):
        monte_carlo_kl(mean, log_std, n_samples=1)
    with pytest.raises(ValueError, match="vectors"):
        monte_carlo_kl(mean[None], log_std[None])


@pytest.mark.book
def test_the_chapters_check_agrees_within_its_standard_errors(built_book):
    assert built_book.returncode == 0, built_book.log[-3000:]
    g = {k: float(v) for k, v in glued(built_book.executed / f"{CHAPTER}.ipynb").items()}
    mean, log_std = torch.tensor([0.5, -1.0, 2.0, 0.0]), torch.tensor([0.0, -0.5, 0.3, -1.0])
    exact = float(kl_divergence(Normal(mean, log_std.exp()), Normal(0.0, 1.0)).sum())
    assert g["prelim_kl_closed"] == pytest.approx(exact, rel=1e-6)
    assert 0 < g["prelim_kl_se"] < 0.05
    assert (
        abs(g["prelim_kl_mc"] - g["prelim_kl_closed"]) < 4 * g["prelim_kl_se"]
    )  # "within a few standard errors"
    assert math.isfinite(g["prelim_kl_mc"])
