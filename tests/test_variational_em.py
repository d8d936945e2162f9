"""The amortised E-step: its gradient against torch autograd, and the claims about its families."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dgm.gmm import GMMParams, e_step, elbo, gmm_log_prob, sample_gmm
from dgm.variational_em import amortised_elbo, fit_amortised_posterior, posterior_features

PARAMS = GMMParams(
    [0.5, 0.3, 0.2],
    [[-1.5, 0.0], [1.5, 0.5], [0.0, 0.5]],
    [[[1.0, 0.6], [0.6, 0.8]], [[0.9, -0.4], [-0.4, 0.5]], [[2.0, 0.0], [0.0, 2.0]]],
)
X = sample_gmm(PARAMS, 800, seed=0)[0]


def test_features():
    assert posterior_features(X, "linear").shape == (800, 3)
    H = posterior_features(X, "quadratic")
    assert H.shape == (800, 6)
    np.testing.assert_allclose(H[:, 3:], np.stack([X[:, 0] ** 2, X[:, 0] * X[:, 1], X[:, 1] ** 2], 1))
    with pytest.raises(ValueError, match="linear"):
        posterior_features(X, "cubic")


def test_elbo_and_gradient_match_autograd():
    H = posterior_features(X, "quadratic")
    phi = np.random.default_rng(0).standard_normal((6, 3)) * 0.1
    log_joint = gmm_log_prob(X, PARAMS)
    value, grad = amortised_elbo(H, phi, log_joint)
    phi_t = torch.tensor(phi, requires_grad=True)
    log_q = torch.log_softmax(torch.tensor(H) @ phi_t, dim=1)
    L = (log_q.exp() * (torch.tensor(log_joint) - log_q)).sum(1).mean()
    L.backward()
    assert np.isclose(value, L.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, phi_t.grad.numpy(), rtol=1e-9, atol=1e-12)
    # and the ELBO is the one of dgm.gmm for the same q
    assert np.isclose(value, elbo(X, PARAMS, log_q.exp().detach().numpy()), rtol=1e-12)


def test_quadratic_family_contains_the_posterior_linear_does_not():
    # exact posterior logits (up to a per-point shift) by least squares on the features
    post, ll = e_step(X, PARAMS)
    logits = np.log(post)
    logits -= logits[:, :1]  # remove the per-point normaliser: log-odds against component 0
    for kind, fits in (("quadratic", True), ("linear", False)):
        H = posterior_features(X, kind)
        phi, *_ = np.linalg.lstsq(H, logits, rcond=None)
        q = np.exp(H @ phi - np.log(np.exp(H @ phi).sum(1, keepdims=True)))
        gap = ll - elbo(X, PARAMS, q)
        assert (gap < 1e-9) == fits, (kind, gap)


def test_gradient_e_step_stays_below_the_log_likelihood():
    lin = fit_amortised_posterior(X, PARAMS, "linear", steps=600, lr=0.05)
    quad = fit_amortised_posterior(X, PARAMS, "quadratic", steps=600, lr=0.05)
    assert np.isclose(lin.log_likelihood, e_step(X, PARAMS)[1])
    for fit in (lin, quad):
        assert (fit.elbos <= fit.log_likelihood + 1e-12).all()
        assert fit.elbos[-1] > fit.elbos[0] + 0.1  # it learned something from the uniform start
    assert quad.gap < lin.gap
