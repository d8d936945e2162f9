"""The gradient estimators against closed forms and torch.distributions."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dgm.estimators import (
    ESTIMATORS,
    GaussianTarget,
    gradient_inside_grad,
    make_target,
    normal_score,
    score_function_baseline_grad,
)
from dgm.significance import z_threshold

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
