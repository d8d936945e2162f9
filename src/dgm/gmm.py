"""Gaussian mixture models fitted by EM: the E-step, the M-step, the ELBO and :func:`fit_gmm`.

Shapes: ``n`` points, ``K`` components, ``m`` dimensions. Everything is vectorised over points
and components; the E-step works in log space with the log-sum-exp trick, so that points far
from every component still get finite responsibilities. The updates are those derived in the
chapter ``book/theory/em_gmm.md`` (Bishop, PRML, section 9.2).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# sklearn adds the same to every component's total responsibility, so that an empty component
# gives finite (if meaningless) parameters instead of 0 / 0.
_NK_FLOOR = 10 * np.finfo(np.float64).eps


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64)  # a private copy
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class GMMParams:
    """The parameters of a mixture: weights (K,), means (K, m), covariances (K, m, m)."""

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray

    def __post_init__(self) -> None:
        for name in ("weights", "means", "covariances"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def n_components(self) -> int:
        return self.weights.shape[0]


@dataclass(frozen=True)
class GMMFit:
    """What :func:`fit_gmm` returns.

    ``log_likelihoods[t]`` is the average log-likelihood (1/n) sum_i log p(x_i | theta_t) of the
    parameters after ``t`` EM iterations: ``log_likelihoods[0]`` scores the initial parameters,
    ``log_likelihoods[-1]`` the returned ones, so there are ``n_iter + 1`` entries.
    """

    weights: np.ndarray  # (K,)
    means: np.ndarray  # (K, m)
    covariances: np.ndarray  # (K, m, m)
    log_likelihoods: np.ndarray  # (n_iter + 1,)
    n_iter: int
    converged: bool
    reg_covar: float

    def __post_init__(self) -> None:
        for name in ("weights", "means", "covariances", "log_likelihoods"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    @property
    def params(self) -> GMMParams:
        return GMMParams(self.weights, self.means, self.covariances)

    @property
    def log_likelihood(self) -> float:
        """The average log-likelihood of the returned parameters."""
        return float(self.log_likelihoods[-1])


def _cholesky(covariances: np.ndarray, what: str) -> np.ndarray:
    """Lower Cholesky factors (K, m, m), or a ValueError naming the first bad component."""
    try:
        return np.linalg.cholesky(covariances)
    except np.linalg.LinAlgError:
        for k, c in enumerate(covariances):
            try:
                np.linalg.cholesky(c)
            except np.linalg.LinAlgError:
                lam = np.linalg.eigvalsh((c + c.T) / 2).min()
                raise ValueError(
                    f"{what}: covariance of component {k} is not positive definite "
                    f"(smallest eigenvalue {lam:.3g})"
                ) from None
        raise


def gmm_log_prob(X: np.ndarray, params: GMMParams) -> np.ndarray:
    """log pi_k + log N(x_i | mu_k, Sigma_k) for every point and component: X (n, m) -> (n, K)."""
    n, m = X.shape
    K = params.n_components
    L = _cholesky(params.covariances, "gmm_log_prob")  # Sigma_k = L_k L_k^T
    # P_k = L_k^{-T}, so (x - mu)^T Sigma_k^{-1} (x - mu) = ||(x - mu)^T P_k||^2
    P = np.linalg.inv(L).transpose(0, 2, 1)  # (K, m, m)
    W = P.transpose(1, 0, 2).reshape(m, K * m)  # (m, K*m): [P_1 | ... | P_K]
    shift = np.einsum("km,kmj->kj", params.means, P).reshape(K * m)  # (K*m,)
    Y = (X @ W - shift).reshape(n, K, m)  # (n, K, m): whitened residuals
    maha = np.einsum("nkm,nkm->nk", Y, Y)  # (n, K)
    half_log_det = np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)  # (K,)
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    return log_w - half_log_det - 0.5 * (m * math.log(2 * math.pi) + maha)


def e_step(X: np.ndarray, params: GMMParams) -> tuple[np.ndarray, float]:
    """Responsibilities xi_ik = p(z_i = k | x_i) by Bayes' theorem, (n, K), and the average log-lik.

    Log-sum-exp: log sum_k a_k = a* + log sum_k exp(a_k - a*) with a* = max_k a_k.
    """
    log_joint = gmm_log_prob(X, params)  # (n, K)
    top = log_joint.max(axis=1, keepdims=True)  # (n, 1)
    unnorm = np.exp(log_joint - top)  # (n, K), largest entry of each row is 1
    total = unnorm.sum(axis=1, keepdims=True)  # (n, 1), in [1, K]
    resp = unnorm / total
    log_lik = float(np.mean(top[:, 0] + np.log(total[:, 0])))
    if not math.isfinite(log_lik):
        raise FloatingPointError("the log-likelihood is not finite; check X and the parameters")
    return resp, log_lik


def m_step(X: np.ndarray, resp: np.ndarray, reg_covar: float = 1e-6) -> GMMParams:
    """The M-step: pi_k = N_k / n, mu_k = sum_i xi_ik x_i / N_k, Sigma_k = S_k + reg_covar I.

    S_k = sum_i xi_ik (x_i - mu_k)(x_i - mu_k)^T / N_k with N_k = sum_i xi_ik; X (n, m), resp (n, K).
    """
    n, m = X.shape
    nk = resp.sum(axis=0) + _NK_FLOOR  # (K,)
    means = (resp.T @ X) / nk[:, None]  # (K, m)
    diff = X[None, :, :] - means[:, None, :]  # (K, n, m)
    weighted = diff * resp.T[:, :, None]  # (K, n, m)
    covariances = (weighted.transpose(0, 2, 1) @ diff) / nk[:, None, None]  # (K, m, m)
    covariances += reg_covar * np.eye(m)
    return GMMParams(nk / nk.sum(), means, covariances)


def elbo(X: np.ndarray, params: GMMParams, resp: np.ndarray) -> float:
    """Average ELBO (1/n) sum_i sum_k q_ik (log p(x_i, z_i = k | theta) - log q_ik); resp (n, K).

    Equals the average log-likelihood when q is the exact posterior (the E-step), less otherwise.
    """
    log_joint = gmm_log_prob(X, params)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(resp > 0, resp * (log_joint - np.log(resp)), 0.0)  # 0 log 0 = 0
    return float(terms.sum() / X.shape[0])


def gmm_log_likelihood(X: np.ndarray, params: GMMParams) -> float:
    """Average log-likelihood (1/n) sum_i log sum_k pi_k N(x_i | mu_k, Sigma_k): X (n, m) -> ()."""
    X = _check_X(X)
    if X.shape[1] != params.means.shape[1]:
        raise ValueError(f"X has {X.shape[1]} dims but the mixture has {params.means.shape[1]}")
    return e_step(X, params)[1]


def initial_params(X: np.ndarray, n_components: int, seed: int = 0) -> GMMParams:
    """Default start: K data points with distinct values as means, the data's covariance, equal weights.

    Two components started at the same point get the same responsibilities at every step and stay
    identical: distinct row indices are not enough when the data repeat points, so the means are
    drawn among distinct values (a ValueError if there are fewer than K).
    """
    X = _check_X(X, n_components)
    n, m = X.shape
    rng = np.random.default_rng(seed)
    idx = rng.choice(n, size=n_components, replace=False)
    if len(np.unique(X[idx], axis=0)) < n_components:  # repeated points: draw among distinct values
        distinct = len(np.unique(X, axis=0))
        if distinct < n_components:
            raise ValueError(
                f"X has {distinct} distinct points: {n_components} components cannot start at distinct means"
            )
        seen: set[bytes] = set()
        idx = []
        for i in rng.permutation(n):
            key = X[i].tobytes()
            if key not in seen:
                seen.add(key)
                idx.append(i)
                if len(idx) == n_components:
                    break
    means = X[np.asarray(idx)]
    cov = np.atleast_2d(np.cov(X, rowvar=False, bias=True)) + 1e-6 * np.eye(m)
    return GMMParams(np.full(n_components, 1.0 / n_components), means, np.repeat(cov[None], n_components, 0))


def sample_gmm(params: GMMParams, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n points from the mixture and their components: -> X (n, m), z (n,)."""
    rng = np.random.default_rng(seed)
    z = rng.choice(params.n_components, size=n, p=params.weights)
    L = np.linalg.cholesky(params.covariances)  # (K, m, m)
    eps = rng.standard_normal((n, params.means.shape[1]))  # (n, m)
    X = params.means[z] + np.einsum("nij,nj->ni", L[z], eps)
    return X, z


def _check_X(X: Any, n_components: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2d array of shape (n_points, n_dims), got shape {X.shape}")
    if X.shape[1] == 0:
        raise ValueError("X has no columns (n_dims = 0)")
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"X contains NaN or infinite values in {rows.size} row(s), first at row {rows[0]}")
    if n_components is None:
        return X
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
        raise TypeError(f"n_components must be an int, got {type(n_components).__name__}")
    if n_components < 1:
        raise ValueError(f"n_components must be >= 1, got {n_components}")
    if X.shape[0] < n_components:
        raise ValueError(f"fewer points than components: {X.shape[0]} points, {n_components} components")
    return X


def _check_init(init: Any, n_components: int, m: int) -> GMMParams:
    get = init.get if isinstance(init, Mapping) else lambda k: getattr(init, k, None)
    parts = {k: get(k) for k in ("weights", "means", "covariances")}
    missing = [k for k, v in parts.items() if v is None]
    if missing:
        raise ValueError(f"init lacks {', '.join(missing)}")
    w, mu, cov = (np.asarray(parts[k], dtype=np.float64) for k in parts)
    K = n_components
    for name, a, shape in (("weights", w, (K,)), ("means", mu, (K, m)), ("covariances", cov, (K, m, m))):
        if a.shape != shape:
            raise ValueError(f"init {name} must have shape {shape}, got {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"init {name} contains NaN or infinite values")
    if (w <= 0).any() or abs(w.sum() - 1) > 1e-8:
        raise ValueError(f"init weights must be positive and sum to 1, got {w}")
    asym = np.abs(cov - cov.transpose(0, 2, 1)).max()
    if asym > 1e-10 * max(1.0, np.abs(cov).max()):
        raise ValueError(f"init covariances must be symmetric (largest asymmetry {asym:.3g})")
    _cholesky(cov, "init")
    return GMMParams(w / w.sum(), mu, cov)


def fit_gmm(
    X: np.ndarray,
    n_components: int,
    n_iter: int = 100,
    tol: float = 1e-6,
    init: GMMParams | Mapping[str, Any] | None = None,
    seed: int = 0,
    reg_covar: float = 1e-6,
) -> GMMFit:
    """Fit a full-covariance Gaussian mixture to X (n, m) by EM.

    Runs at most ``n_iter`` EM iterations (E-step, then M-step) and stops early once the average
    log-likelihood changed by less than ``tol`` in one iteration (``tol=0`` runs all of them;
    the rule is scikit-learn's, so the same ``tol`` stops both after the same iteration).
    ``init`` gives the initial weights, means and covariances (a :class:`GMMParams`, a fit, or a
    mapping with those keys); without it, :func:`initial_params` with ``seed`` is used.

    ``reg_covar`` >= 0 is added to the diagonal of every covariance in the M-step. It keeps each
    Sigma_k positive definite (eigenvalues >= reg_covar) when a component collapses onto a few
    points or a subspace, where the likelihood is unbounded; the fit then stays finite. With
    ``reg_covar=0`` such a collapse raises a ValueError instead of producing NaN.
    """
    X = _check_X(X, n_components)
    m = X.shape[1]
    if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
        raise ValueError(f"n_iter must be an int >= 0, got {n_iter!r}")
    if not (tol >= 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be finite and >= 0, got {tol!r}")
    if not (reg_covar >= 0 and math.isfinite(reg_covar)):
        raise ValueError(f"reg_covar must be finite and >= 0, got {reg_covar!r}")
    params = initial_params(X, n_components, seed) if init is None else _check_init(init, n_components, m)

    log_likelihoods: list[float] = []
    converged = False
    done = 0
    for _ in range(n_iter):
        resp, log_lik = e_step(X, params)  # scores the current parameters
        log_likelihoods.append(log_lik)
        try:
            params = m_step(X, resp, reg_covar)
            _cholesky(params.covariances, "M-step")
        except ValueError as err:
            raise ValueError(
                f"{err} after EM iteration {done + 1}: a component collapsed; "
                f"increase reg_covar (now {reg_covar}), use fewer components or rescale X"
            ) from None
        done += 1
        if len(log_likelihoods) > 1 and abs(log_likelihoods[-1] - log_likelihoods[-2]) < tol:
            converged = True
            break
    log_likelihoods.append(e_step(X, params)[1])
    return GMMFit(
        params.weights,
        params.means,
        params.covariances,
        np.asarray(log_likelihoods),
        done,
        converged,
        float(reg_covar),
    )
