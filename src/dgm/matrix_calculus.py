"""Symbolic checks (sympy) of the matrix calculus behind the M-step of EM for Gaussian mixtures.

Each check builds generic symbolic objects, differentiates entry by entry, and returns the
residual ``computed - closed form`` simplified to zero, so that a chapter can show it and a test
can assert it. The identities are those of the Matrix Cookbook (Petersen and Pedersen, 2012),
eqs. (49) and (61): d det(A)/dA = det(A) A^{-T} and d(x^T A^{-1} y)/dA = -A^{-T} x y^T A^{-T}.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class IdentityCheck:
    """A matrix identity checked entry by entry: residual = derivative - closed_form."""

    name: str
    n: int
    derivative: sp.Matrix  # (n, n): d f / d a_ij, by sympy
    closed_form: sp.Matrix  # (n, n): the right-hand side of the identity
    residual: sp.Matrix  # (n, n): simplified difference

    @property
    def holds(self) -> bool:
        return all(sp.simplify(e) == 0 for e in self.residual)


def generic_matrix(n: int, name: str = "a") -> sp.Matrix:
    """An n x n matrix of independent symbols a_ij (1-based): no structure assumed."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return sp.Matrix(n, n, lambda i, j: sp.Symbol(f"{name}_{i + 1}{j + 1}"))


def _entrywise_derivative(f: sp.Expr, A: sp.Matrix) -> sp.Matrix:
    return A.applyfunc(lambda a: sp.diff(f, a))


def _cancel(M: sp.Matrix) -> sp.Matrix:
    return M.applyfunc(sp.cancel)


def _inverse(A: sp.Matrix) -> sp.Matrix:
    """A^{-1} by Gaussian elimination (LU), each entry cancelled to one fraction.

    Independent of the cofactors that the proof of the determinant identity uses.
    """
    return A.inv(method="LU").applyfunc(sp.cancel)


def check_det_derivative(n: int) -> IdentityCheck:
    """d det(A) / dA = det(A) A^{-T} for a generic symbolic n x n A (Cookbook eq. 49)."""
    A = generic_matrix(n)
    det = A.det(method="berkowitz")
    derivative = _entrywise_derivative(det, A)
    closed_form = det * _inverse(A).T
    return IdentityCheck(
        "d det(A)/dA = det(A) A^{-T}", n, derivative, closed_form, _cancel(derivative - closed_form)
    )


def cofactor_residual(n: int) -> sp.Matrix:
    """The proof's first step: d det(A) / d a_ij - C_ij, with C_ij the (i, j) cofactor; (n, n) zeros."""
    A = generic_matrix(n)
    det = A.det(method="berkowitz")
    C = A.cofactor_matrix()
    return _cancel(_entrywise_derivative(det, A) - C)


def check_inverse_bilinear_derivative(n: int) -> IdentityCheck:
    """d (x^T A^{-1} y) / dA = -A^{-T} x y^T A^{-T} for generic A, x, y (Cookbook eq. 61)."""
    A = generic_matrix(n)
    x = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"x_{i + 1}"))
    y = sp.Matrix(n, 1, lambda i, _: sp.Symbol(f"y_{i + 1}"))
    A_inv = _inverse(A)
    f = (x.T * A_inv * y)[0, 0]
    derivative = _entrywise_derivative(f, A)
    closed_form = -A_inv.T * x * y.T * A_inv.T
    return IdentityCheck(
        "d(x^T A^{-1} y)/dA = -A^{-T} x y^T A^{-T}",
        n,
        derivative,
        closed_form,
        _cancel(derivative - closed_form),
    )


@dataclass(frozen=True)
class StationaryPointCheck:
    """The M-step objective of one component at (mu_new, Sigma_new): gradient zero, Hessian < 0."""

    objective: sp.Expr  # Phi_k(mu, Sigma) with the data substituted
    variables: tuple[sp.Symbol, ...]  # mu_1, mu_2, s_11, s_12, s_22
    mu_new: sp.Matrix  # (2, 1)
    sigma_new: sp.Matrix  # (2, 2)
    gradient: sp.Matrix  # (5, 1) at the update: all zero
    hessian: sp.Matrix  # (5, 5) at the update
    leading_minors: tuple[sp.Rational, ...]  # of -hessian: all > 0 means a strict local maximum

    @property
    def is_stationary(self) -> bool:
        return all(g == 0 for g in self.gradient)

    @property
    def is_local_max(self) -> bool:
        return all(d > 0 for d in self.leading_minors)


def check_covariance_update(
    points: list[tuple[int | sp.Rational, int | sp.Rational]] | None = None,
    xi: list[int | sp.Rational] | None = None,
) -> StationaryPointCheck:
    """Exact rational 2d data: the M-step updates make the gradient of Phi_k vanish exactly.

    Phi_k(mu, Sigma) = sum_i xi_i (-1/2 log det Sigma - 1/2 (x_i - mu)^T Sigma^{-1} (x_i - mu)),
    with symmetric Sigma = [[s_11, s_12], [s_12, s_22]] parametrised by its three free entries.
    """
    R = sp.Rational
    points = points or [(0, 0), (2, 1), (-1, 3), (4, -2), (1, 1)]
    xi = xi or [R(1, 2), R(3, 4), R(1, 5), R(9, 10), R(1, 3)]
    if len(points) != len(xi) or len(points) < 3:
        raise ValueError("need as many responsibilities as points, and at least 3 points")
    X = [sp.Matrix([sp.nsimplify(a), sp.nsimplify(b)]) for a, b in points]
    xi = [sp.nsimplify(w) for w in xi]
    m1, m2, s11, s12, s22 = sp.symbols("mu_1 mu_2 s_11 s_12 s_22", real=True)
    mu = sp.Matrix([m1, m2])
    Sigma = sp.Matrix([[s11, s12], [s12, s22]])
    Sigma_inv = Sigma.adjugate() / Sigma.det()
    phi = sum(
        w * (-sp.log(Sigma.det()) / 2 - ((x - mu).T * Sigma_inv * (x - mu))[0, 0] / 2) for w, x in zip(xi, X)
    )
    Nk = sum(xi)
    mu_new = sum((w * x for w, x in zip(xi, X)), sp.zeros(2, 1)) / Nk
    sigma_new = sum(((x - mu_new) * (x - mu_new).T * w for w, x in zip(xi, X)), sp.zeros(2, 2)) / Nk
    variables = (m1, m2, s11, s12, s22)
    at = {m1: mu_new[0], m2: mu_new[1], s11: sigma_new[0, 0], s12: sigma_new[0, 1], s22: sigma_new[1, 1]}
    gradient = sp.Matrix([sp.simplify(sp.diff(phi, v).subs(at)) for v in variables])
    hessian = sp.hessian(phi, variables).subs(at).applyfunc(sp.simplify)
    minors = tuple(sp.simplify((-hessian)[:k, :k].det()) for k in range(1, len(variables) + 1))
    return StationaryPointCheck(phi, variables, mu_new, sigma_new, gradient, hessian, minors)


def check_covariance_update_symbolic() -> sp.Matrix:
    """Generic 2x2 case: grad of -(N/2)(log det Sigma + tr(Sigma^{-1} S)) at Sigma = S; (3, 1) zeros.

    S is a generic symmetric weighted scatter matrix, N > 0 the component's total responsibility;
    the gradient is taken in the three free entries (s_11, s_12, s_22) of a symmetric Sigma.
    """
    N = sp.Symbol("N", positive=True)
    s11, s12, s22, t11, t12, t22 = sp.symbols("s_11 s_12 s_22 t_11 t_12 t_22", real=True)
    Sigma = sp.Matrix([[s11, s12], [s12, s22]])
    S = sp.Matrix([[t11, t12], [t12, t22]])
    phi = -N / 2 * (sp.log(Sigma.det()) + (Sigma.adjugate() / Sigma.det() * S).trace())
    at = {s11: t11, s12: t12, s22: t22}
    return sp.Matrix([sp.simplify(sp.diff(phi, v).subs(at)) for v in (s11, s12, s22)])


@dataclass(frozen=True)
class KKTCheck:
    """KKT conditions of max sum_k N_k log pi_k s.t. sum_k pi_k = 1, pi_k >= 0 at pi_k = N_k / n."""

    weights: sp.Matrix  # (K, 1): the update N_k / sum_j N_j
    lagrange_multiplier: sp.Expr  # lambda = sum_k N_k = n
    stationarity: sp.Matrix  # (K, 1): dL/dpi_k at the update, all zero
    primal_residual: sp.Expr  # sum_k pi_k - 1 = 0
    weights_positive: bool  # pi_k > 0 from N_k > 0: the inequalities are inactive
    complementary_slackness: sp.Matrix  # (K, 1): nu_k pi_k with nu_k = 0
    hessian_diagonal: sp.Matrix  # (K, 1): -N_k / pi_k^2 < 0, so the objective is concave

    @property
    def holds(self) -> bool:
        return (
            all(s == 0 for s in self.stationarity)
            and self.primal_residual == 0
            and self.weights_positive
            and all(c == 0 for c in self.complementary_slackness)
            and all(h.is_negative for h in self.hessian_diagonal)
        )


def check_weights_kkt(n_components: int = 3) -> KKTCheck:
    """The pi update satisfies the KKT conditions, for generic symbolic N_1..N_K > 0."""
    K = n_components
    if K < 1:
        raise ValueError(f"n_components must be >= 1, got {K}")
    Ns = sp.symbols(f"N_1:{K + 1}", positive=True)
    pis = sp.symbols(f"pi_1:{K + 1}", positive=True)
    lam = sp.Symbol("lambda")
    nus = sp.symbols(f"nu_1:{K + 1}", nonnegative=True)
    objective = sum(N * sp.log(p) for N, p in zip(Ns, pis))
    lagrangian = objective - lam * (sum(pis) - 1) + sum(nu * p for nu, p in zip(nus, pis))
    n = sum(Ns)
    at = {p: N / n for p, N in zip(pis, Ns)} | {lam: n} | {nu: 0 for nu in nus}
    weights = sp.Matrix([N / n for N in Ns])
    stationarity = sp.Matrix([sp.simplify(sp.diff(lagrangian, p).subs(at)) for p in pis])
    primal = sp.simplify(sum(weights) - 1)
    slack = sp.Matrix([(nu * p).subs(at) for nu, p in zip(nus, pis)])
    hess = sp.Matrix([sp.simplify(sp.diff(objective, p, 2).subs(at)) for p in pis])
    positive = all(w.is_positive for w in weights)
    return KKTCheck(weights, n, stationarity, primal, positive, slack, hess)
