"""The sympy checks hold, can fail, and agree with finite differences computed by numpy."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from dgm.matrix_calculus import (
    check_covariance_update,
    check_covariance_update_symbolic,
    check_det_derivative,
    check_inverse_bilinear_derivative,
    check_weights_kkt,
    cofactor_residual,
    generic_matrix,
)


def zero(M: sp.Matrix) -> bool:
    return all(sp.simplify(e) == 0 for e in M)


@pytest.fixture(scope="module", params=[1, 2, 3])
def det_check(request):
    return check_det_derivative(request.param)


@pytest.fixture(scope="module", params=[2, 3])
def bilinear_check(request):
    return check_inverse_bilinear_derivative(request.param)


def test_det_identity_holds(det_check):
    n = det_check.n
    assert det_check.holds and zero(det_check.residual)
    assert det_check.residual.shape == det_check.derivative.shape == (n, n)
    # the derivative sympy computed is not trivially zero: for n > 1 it is the cofactor matrix
    if n > 1:
        assert det_check.derivative[0, 0] == generic_matrix(n)[1:, 1:].det()


def test_det_check_can_fail(det_check):
    A = generic_matrix(det_check.n)
    untransposed = A.det() * A.inv()  # det(A) A^{-1}: wrong for n > 1, right for 1x1
    assert zero((det_check.derivative - untransposed).applyfunc(sp.cancel)) == (det_check.n == 1)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_cofactor_step(n):
    assert zero(cofactor_residual(n))


def test_bilinear_identity_holds(bilinear_check):
    assert bilinear_check.holds and zero(bilinear_check.residual)


def test_bilinear_check_can_fail(bilinear_check):
    wrong = -bilinear_check.closed_form  # sign error
    assert not zero((bilinear_check.derivative - wrong).applyfunc(sp.cancel))


def numeric_gradient(f, A, h=1e-6):
    G = np.zeros_like(A)
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            E = np.zeros_like(A)
            E[i, j] = h
            G[i, j] = (f(A + E) - f(A - E)) / (2 * h)
    return G


@pytest.mark.parametrize("n", [2, 3, 5])
def test_identities_by_finite_differences(n):
    rng = np.random.default_rng(n)
    A = rng.standard_normal((n, n)) + n * np.eye(n)
    x, y = rng.standard_normal(n), rng.standard_normal(n)
    A_inv_T = np.linalg.inv(A).T
    np.testing.assert_allclose(
        numeric_gradient(np.linalg.det, A), np.linalg.det(A) * A_inv_T, rtol=1e-6, atol=1e-8
    )
    np.testing.assert_allclose(
        numeric_gradient(lambda B: x @ np.linalg.solve(B, y), A),
        -A_inv_T @ np.outer(x, y) @ A_inv_T,
        rtol=1e-6,
        atol=1e-8,
    )


@pytest.fixture(scope="module")
def cov_check():
    return check_covariance_update()


def test_covariance_update_is_a_strict_local_maximum(cov_check):
    assert cov_check.is_stationary and cov_check.is_local_max
    assert cov_check.gradient.shape == (5, 1)
    # independent of sympy: the updates are numpy's weighted mean and (biased) weighted covariance
    pts = np.array([[0, 0], [2, 1], [-1, 3], [4, -2], [1, 1]], dtype=float)
    xi = np.array([1 / 2, 3 / 4, 1 / 5, 9 / 10, 1 / 3])
    np.testing.assert_allclose(
        np.array(cov_check.mu_new, dtype=float).ravel(), np.average(pts, axis=0, weights=xi)
    )
    np.testing.assert_allclose(
        np.array(cov_check.sigma_new, dtype=float), np.cov(pts, rowvar=False, aweights=xi, bias=True)
    )


def test_covariance_check_can_fail(cov_check):
    # the unbiased-looking N_k - 1 denominator is not the stationary point
    s11, s12, s22 = cov_check.variables[2:]
    mu = dict(zip(cov_check.variables[:2], cov_check.mu_new))
    Nk = sp.Rational(1, 2) + sp.Rational(3, 4) + sp.Rational(1, 5) + sp.Rational(9, 10) + sp.Rational(1, 3)
    wrong = cov_check.sigma_new * Nk / (Nk - 1)
    at = mu | {s11: wrong[0, 0], s12: wrong[0, 1], s22: wrong[1, 1]}
    grad = [sp.simplify(sp.diff(cov_check.objective, v).subs(at)) for v in (s11, s12, s22)]
    assert any(g != 0 for g in grad)


def test_covariance_update_beats_nearby_points(cov_check):
    f = sp.lambdify(cov_check.variables, cov_check.objective)
    best = np.array(
        [*cov_check.mu_new, cov_check.sigma_new[0, 0], cov_check.sigma_new[0, 1], cov_check.sigma_new[1, 1]],
        dtype=float,
    )
    rng = np.random.default_rng(0)
    for _ in range(200):
        assert f(*(best + 0.05 * rng.standard_normal(5))) < f(*best)


def test_symbolic_covariance_gradient_vanishes():
    g = check_covariance_update_symbolic()
    assert g.shape == (3, 1) and zero(g)


@pytest.mark.parametrize("K", [1, 2, 3, 5])
def test_weights_satisfy_kkt(K):
    kkt = check_weights_kkt(K)
    assert kkt.holds
    Ns = sp.symbols(f"N_1:{K + 1}", positive=True)  # the same symbols: names and assumptions
    assert sp.simplify(kkt.lagrange_multiplier - sum(Ns)) == 0  # lambda = n


def test_weights_beat_every_other_point_of_the_simplex():
    kkt = check_weights_kkt(3)
    Ns = sorted(kkt.weights.free_symbols, key=str)
    values = {N: v for N, v in zip(Ns, (2.0, 5.0, 3.0))}
    best = np.array([float(w.subs(values)) for w in kkt.weights])
    N = np.array([2.0, 5.0, 3.0])
    rng = np.random.default_rng(0)
    for pi in rng.dirichlet(np.ones(3), size=500):
        assert N @ np.log(pi) <= N @ np.log(best)
    np.testing.assert_allclose(best, N / N.sum())


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError):
        generic_matrix(0)
    with pytest.raises(ValueError):
        check_weights_kkt(0)
    with pytest.raises(ValueError, match="as many responsibilities"):
        check_covariance_update([(0, 0), (1, 1), (2, 0)], [1, 1])
