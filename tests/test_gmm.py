"""fit_gmm and its steps against independent references: scikit-learn, scipy, numpy's weighted cov."""

from __future__ import annotations

import warnings
from dataclasses import FrozenInstanceError

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp, rel_entr
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

from dgm.gmm import (
    GMMParams,
    e_step,
    elbo,
    fit_gmm,
    gmm_log_likelihood,
    gmm_log_prob,
    initial_params,
    m_step,
    sample_gmm,
)


def random_mixture(m: int, K: int, seed: int, spread: float = 3.0) -> GMMParams:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((K, m, m)) / np.sqrt(m)
    w = rng.uniform(0.5, 1.5, K)
    return GMMParams(
        w / w.sum(), spread * rng.standard_normal((K, m)), A @ A.transpose(0, 2, 1) + 0.2 * np.eye(m)
    )


def data(m: int, K: int, n: int, seed: int) -> np.ndarray:
    return sample_gmm(random_mixture(m, K, seed), n, seed=seed + 100)[0]


def sklearn_fit(X, init: GMMParams, n_iter: int, tol: float, reg_covar: float = 1e-6) -> GaussianMixture:
    gm = GaussianMixture(
        init.n_components,
        covariance_type="full",
        max_iter=n_iter,
        tol=tol,
        reg_covar=reg_covar,
        init_params="random_from_data",
        weights_init=init.weights,
        means_init=init.means,
        precisions_init=np.linalg.inv(init.covariances),
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gm.fit(X)


def matching(means_a, means_b):
    cost = np.linalg.norm(means_a[:, None] - means_b[None], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return cols[np.argsort(rows)]


# (dims, components, points): 1 to 10 dims, 1 to 6 components
CASES = [(1, 2, 400), (2, 1, 300), (2, 3, 1500), (3, 4, 2000), (5, 2, 1000), (10, 5, 3000), (4, 6, 2500)]


@pytest.mark.parametrize("m,K,n", CASES)
def test_matches_sklearn_from_the_same_start(m, K, n):
    X = data(m, K, n, seed=m * 10 + K)
    init = initial_params(X, K, seed=1)
    ours = fit_gmm(X, K, n_iter=100, tol=0.0, init=init)
    gm = sklearn_fit(X, init, n_iter=100, tol=0.0)
    assert ours.n_iter == gm.n_iter_ == 100
    assert abs(ours.log_likelihood - gm.score(X)) < 1e-6
    # the whole curve: sklearn's lower_bounds_[t] scores theta_t, before its (t + 1)-th M-step
    np.testing.assert_allclose(ours.log_likelihoods[:-1], gm.lower_bounds_, rtol=0, atol=1e-6)
    p = matching(ours.means, gm.means_)
    np.testing.assert_allclose(ours.weights, gm.weights_[p], rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.means, gm.means_[p], rtol=0, atol=1e-4)
    np.testing.assert_allclose(ours.covariances, gm.covariances_[p], rtol=0, atol=1e-4)


@pytest.mark.parametrize("m,K,n", [(2, 3, 1500), (5, 2, 1000)])
def test_stops_with_sklearn_for_the_same_tol(m, K, n):
    X = data(m, K, n, seed=7)
    init = initial_params(X, K, seed=2)
    ours = fit_gmm(X, K, n_iter=500, tol=1e-5, init=init)
    gm = sklearn_fit(X, init, n_iter=500, tol=1e-5)
    assert ours.converged and gm.converged_
    assert ours.n_iter == gm.n_iter_ < 500
    np.testing.assert_allclose(ours.means, gm.means_, atol=1e-4)


@pytest.mark.parametrize("m,K,n", CASES)
@pytest.mark.parametrize("reg_covar", [0.0, 1e-6])
def test_log_likelihood_never_decreases(m, K, n, reg_covar):
    X = data(m, K, n, seed=m + K)
    fit = fit_gmm(X, K, n_iter=150, tol=0.0, seed=3, reg_covar=reg_covar)
    steps = np.diff(fit.log_likelihoods)
    assert steps.min() >= -1e-12, steps.min()  # rounding only
    assert fit.log_likelihoods[-1] > fit.log_likelihoods[0] or K == 1


def test_log_prob_matches_scipy():
    X = data(3, 4, 200, seed=1)
    params = random_mixture(3, 4, seed=5)
    expected = np.stack(
        [
            np.log(w) + multivariate_normal(mu, cov).logpdf(X)
            for w, mu, cov in zip(params.weights, params.means, params.covariances)
        ],
        axis=1,
    )
    np.testing.assert_allclose(gmm_log_prob(X, params), expected, rtol=1e-10, atol=1e-10)


def test_e_step_is_bayes_and_stable_far_away():
    params = random_mixture(2, 3, seed=2)
    X = np.vstack([data(2, 3, 100, seed=2), [[1e3, -1e3]]])  # the last point underflows every pdf
    joint = np.stack(
        [
            np.log(w) + multivariate_normal(mu, cov).logpdf(X)
            for w, mu, cov in zip(params.weights, params.means, params.covariances)
        ],
        axis=1,
    )
    assert np.all(np.exp(joint[-1]) == 0)  # naive Bayes would divide 0 by 0 here
    resp, ll = e_step(X, params)
    np.testing.assert_allclose(resp, np.exp(joint - logsumexp(joint, axis=1, keepdims=True)), atol=1e-12)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0, atol=1e-12)
    assert np.isclose(ll, logsumexp(joint, axis=1).mean(), rtol=1e-12)
    assert np.isfinite(resp).all()


def test_m_step_matches_weighted_moments():
    X = data(3, 2, 300, seed=3)
    rng = np.random.default_rng(0)
    resp = rng.dirichlet(np.ones(4), size=300)
    new = m_step(X, resp, reg_covar=0.0)
    for k in range(4):
        r = resp[:, k]
        assert np.isclose(new.weights[k], r.mean())
        np.testing.assert_allclose(new.means[k], np.average(X, axis=0, weights=r))
        np.testing.assert_allclose(
            new.covariances[k], np.cov(X, rowvar=False, aweights=r, bias=True), atol=1e-12
        )
    with_reg = m_step(X, resp, reg_covar=0.5)
    np.testing.assert_allclose(
        with_reg.covariances - new.covariances, np.broadcast_to(0.5 * np.eye(3), (4, 3, 3))
    )


def test_elbo_gap_is_the_kl_to_the_posterior():
    X = data(2, 3, 500, seed=4)
    params = random_mixture(2, 3, seed=4)
    post, ll = e_step(X, params)
    assert np.isclose(elbo(X, params, post), ll, rtol=0, atol=1e-12)
    q = np.random.default_rng(1).dirichlet(np.ones(3), size=500)
    kl = rel_entr(q, post).sum(axis=1).mean()
    assert np.isclose(ll - elbo(X, params, q), kl, rtol=1e-9)
    assert elbo(X, params, q) < ll


def test_result_is_frozen_and_read_only():
    fit = fit_gmm(data(2, 2, 100, seed=0), 2, n_iter=3)
    with pytest.raises(FrozenInstanceError):
        fit.n_iter = 5  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        fit.means[0, 0] = 1.0
    assert fit.log_likelihoods.shape == (fit.n_iter + 1,)
    assert fit.log_likelihood == fit.log_likelihoods[-1]


def test_restarting_from_a_fit_continues_it():
    X = data(2, 3, 600, seed=5)
    twenty = fit_gmm(X, 3, n_iter=20, tol=0.0, seed=4)
    ten = fit_gmm(X, 3, n_iter=10, tol=0.0, seed=4)
    again = fit_gmm(X, 3, n_iter=10, tol=0.0, init=ten)
    np.testing.assert_allclose(again.means, twenty.means, atol=1e-12)
    np.testing.assert_allclose(again.log_likelihoods, twenty.log_likelihoods[10:], atol=1e-12)
    as_mapping = fit_gmm(
        X,
        3,
        n_iter=10,
        tol=0.0,
        init={"weights": ten.weights, "means": ten.means, "covariances": ten.covariances},
    )
    np.testing.assert_array_equal(as_mapping.covariances, again.covariances)


def test_log_likelihood_of_a_few_points():
    params = random_mixture(2, 3, seed=1)
    x = np.array([[0.5, -1.0]])  # one point, three components: fine for scoring
    expected = np.log(
        sum(
            w * multivariate_normal(mu, c).pdf(x[0])
            for w, mu, c in zip(params.weights, params.means, params.covariances)
        )
    )
    assert np.isclose(gmm_log_likelihood(x, params), expected)
    with pytest.raises(ValueError, match="3 dims but the mixture has 2"):
        gmm_log_likelihood(np.zeros((4, 3)), params)


def test_zero_iterations_scores_the_start():
    X = data(2, 2, 200, seed=6)
    init = initial_params(X, 2, seed=0)
    fit = fit_gmm(X, 2, n_iter=0, init=init)
    assert fit.n_iter == 0 and fit.log_likelihoods.shape == (1,)
    np.testing.assert_array_equal(fit.means, init.means)
    assert np.isclose(fit.log_likelihood, gmm_log_likelihood(X, init))


def test_default_start_depends_on_seed_only():
    X = data(2, 3, 300, seed=8)
    a, b, c = (initial_params(X, 3, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.means, b.means)
    assert not np.array_equal(a.means, c.means)
    assert {tuple(r) for r in a.means} <= {tuple(r) for r in X}
    np.testing.assert_allclose(a.covariances[0], np.cov(X, rowvar=False, bias=True) + 1e-6 * np.eye(2))


def test_sample_gmm_has_the_right_moments():
    params = random_mixture(2, 3, seed=9)
    X, z = sample_gmm(params, 200_000, seed=0)
    np.testing.assert_allclose(np.bincount(z) / len(z), params.weights, atol=5e-3)
    for k in range(3):
        np.testing.assert_allclose(X[z == k].mean(axis=0), params.means[k], atol=0.03)
        np.testing.assert_allclose(np.cov(X[z == k], rowvar=False), params.covariances[k], atol=0.05)


def test_collapse_needs_reg_covar():
    # three distinct points, each repeated: every component collapses onto one of them
    X = np.repeat(np.array([[0.0, 0.0], [5.0, 1.0], [-3.0, 4.0]]), 10, axis=0)
    init = GMMParams(np.full(3, 1 / 3), X[[0, 10, 20]], np.repeat(np.eye(2)[None], 3, 0))
    with pytest.raises(ValueError, match="collapsed.*reg_covar"):
        fit_gmm(X, 3, n_iter=5, init=init, reg_covar=0.0)
    fit = fit_gmm(X, 3, n_iter=5, init=init, reg_covar=1e-6)
    assert np.isfinite(fit.log_likelihoods).all()
    np.testing.assert_allclose(fit.covariances, np.broadcast_to(1e-6 * np.eye(2), (3, 2, 2)), atol=1e-12)
    # the likelihood is unbounded: the smaller reg_covar, the larger it gets
    assert fit_gmm(X, 3, n_iter=5, init=init, reg_covar=1e-8).log_likelihood > fit.log_likelihood


X_OK = np.arange(20.0).reshape(10, 2) ** 1.5


@pytest.mark.parametrize(
    "X,K,match",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 1.0]]), 2, "NaN or infinite.*row 0"),
        (np.array([[0.0, 1.0], [1.0, 2.0], [np.inf, 1.0]]), 2, "NaN or infinite.*row 2"),
        (np.arange(10.0), 2, r"2d array.*\(10,\)"),
        (np.zeros((4, 2, 2)), 2, r"2d array.*\(4, 2, 2\)"),
        (np.zeros((5, 0)), 2, "no columns"),
        (X_OK[:3], 4, "fewer points than components: 3 points, 4 components"),
        (X_OK, 0, "n_components must be >= 1"),
    ],
)
def test_bad_data_is_rejected(X, K, match):
    with pytest.raises(ValueError, match=match):
        fit_gmm(X, K)


def test_bad_arguments_are_rejected():
    with pytest.raises(TypeError, match="n_components must be an int"):
        fit_gmm(X_OK, 2.0)
    for kwargs, match in [
        ({"n_iter": -1}, "n_iter"),
        ({"tol": -1e-3}, "tol"),
        ({"tol": np.nan}, "tol"),
        ({"reg_covar": -1e-6}, "reg_covar"),
        ({"reg_covar": np.inf}, "reg_covar"),
    ]:
        with pytest.raises(ValueError, match=match):
            fit_gmm(X_OK, 2, **kwargs)


def good_init():
    return {
        "weights": np.array([0.5, 0.5]),
        "means": X_OK[:2],
        "covariances": np.repeat(np.eye(2)[None], 2, 0),
    }


@pytest.mark.parametrize(
    "change,match",
    [
        ({"weights": np.array([0.2, 0.2, 0.6])}, r"weights must have shape \(2,\)"),
        ({"means": np.zeros((2, 3))}, r"means must have shape \(2, 2\)"),
        ({"covariances": np.eye(2)}, r"covariances must have shape \(2, 2, 2\)"),
        ({"weights": np.array([0.7, 0.7])}, "sum to 1"),
        ({"weights": np.array([1.0, 0.0])}, "positive"),
        ({"means": np.array([[0.0, np.nan], [1.0, 1.0]])}, "means contains NaN"),
        (
            {"covariances": np.array([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])},
            "component 1 is not positive definite",
        ),
        ({"covariances": np.array([np.eye(2), [[1.0, 0.5], [0.0, 1.0]]])}, "symmetric"),
        ({"means": None}, "init lacks means"),
    ],
)
def test_bad_init_is_rejected(change, match):
    init = good_init() | change
    with pytest.raises(ValueError, match=match):
        fit_gmm(X_OK, 2, init=init)
    fit_gmm(X_OK, 2, init=good_init(), n_iter=2)  # control: the unchanged init is fine


def test_components_never_start_at_the_same_point():
    from dgm.gmm import fit_gmm, initial_params

    # Two obvious clusters, most points repeated: distinct row indices often name equal values.
    X = np.concatenate([np.zeros((40, 2)), np.full((40, 2), 10.0), [[0.1, 0.0], [10.0, 10.1]]])
    for seed in range(20):
        means = initial_params(X, 2, seed).means
        assert not np.allclose(means[0], means[1]), seed
    fit = fit_gmm(X, 2, seed=0)
    centres = sorted(fit.params.means[:, 0].round())  # sklearn-independent: the two clusters by eye
    assert centres == [0.0, 10.0]
    with pytest.raises(ValueError, match="2 distinct points"):
        initial_params(np.concatenate([np.zeros((5, 2)), np.ones((5, 2))]), 3)
