"""The EM chapter's experiment: EM on 2d data, checked against scikit-learn, and its figures.

:func:`run` does everything the chapter ``book/theory/em_gmm.md`` reports, with the settings of
the active execution profile (:data:`SETTINGS`); :meth:`EMDemoResult.chapter_values` is every
number its text states, and the tests assert the chapter's claims on them.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Ellipse
from scipy.optimize import linear_sum_assignment

from dgm.animation import ScrubbableFigure, scrubbable
from dgm.gmm import (
    GMMFit,
    GMMParams,
    e_step,
    elbo,
    fit_gmm,
    gmm_log_likelihood,
    initial_params,
    m_step,
    sample_gmm,
)
from dgm.profiles import ByProfile, RunLog
from dgm.variational_em import AmortisedFit, fit_amortised_posterior


@dataclass(frozen=True)
class EMDemoSettings:
    """Sizes of the chapter's experiment."""

    n_points: int  # drawn from TRUE_MIXTURE
    n_iter: int  # most EM iterations
    tol: float  # stop when the average log-likelihood changed by less
    snapshot_iters: tuple[int, ...]  # iterations whose ellipses are drawn (plus the last)
    n_stairs: int  # EM iterations drawn as ELBO coordinate-ascent steps
    amortised_steps: int  # Adam steps of the gradient E-step
    amortised_lr: float
    data_seed: int = 0
    init_seed: int = 0


SETTINGS = ByProfile(
    smoke=EMDemoSettings(500, 300, 1e-8, (0, 2, 6, 20), 4, 1000, 0.05),
    cpu=EMDemoSettings(2000, 500, 1e-8, (0, 2, 6, 20), 4, 3000, 0.05),
    gpu=EMDemoSettings(2000, 500, 1e-8, (0, 2, 6, 20), 4, 3000, 0.05),
)


def _rotated(angle: float, variances: tuple[float, float]) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    R = np.array([[c, -s], [s, c]])
    return R @ np.diag(variances) @ R.T


#: Two elongated clusters and a broad one overlapping both: curved posterior boundaries.
TRUE_MIXTURE = GMMParams(
    weights=[0.4, 0.35, 0.25],
    means=[[-1.5, 0.0], [1.5, 0.5], [0.0, 0.5]],
    covariances=[_rotated(0.6, (1.6, 0.15)), _rotated(-0.6, (1.2, 0.2)), _rotated(0.0, (2.0, 2.0))],
)


def match_components(means_ref: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The permutation p minimising sum_k ||means_ref[k] - means[p[k]]||: (K, m), (K, m) -> (K,)."""
    cost = np.linalg.norm(means_ref[:, None, :] - means[None, :, :], axis=-1)  # (K, K)
    rows, cols = linear_sum_assignment(cost)
    return cols[np.argsort(rows)]


@dataclass(frozen=True)
class SklearnComparison:
    """fit_gmm and sklearn's GaussianMixture from the same start, same number of iterations."""

    n_iter: int
    log_likelihood: float  # fit_gmm's final average log-likelihood
    log_likelihood_diff: float  # |ours - sklearn's score(X)|
    curve_diff: float  # max over iterations of |ours - sklearn's lower_bounds_|
    weights_diff: float  # max abs difference after matching components
    means_diff: float
    covariances_diff: float


def compare_with_sklearn(
    X: np.ndarray, init: GMMParams, n_iter: int, reg_covar: float = 1e-6
) -> SklearnComparison:
    """Run both EMs for exactly n_iter iterations (tol = 0) from init and compare the results."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    ours = fit_gmm(X, init.n_components, n_iter=n_iter, tol=0.0, init=init, reg_covar=reg_covar)
    gm = GaussianMixture(
        init.n_components,
        covariance_type="full",
        tol=0.0,
        reg_covar=reg_covar,
        max_iter=n_iter,
        init_params="random_from_data",
        weights_init=init.weights,
        means_init=init.means,
        precisions_init=np.linalg.inv(init.covariances),
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    p = match_components(ours.means, gm.means_)
    return SklearnComparison(
        n_iter=ours.n_iter,
        log_likelihood=ours.log_likelihood,
        log_likelihood_diff=abs(ours.log_likelihood - gm.score(X)),
        # sklearn's lower_bounds_[t] scores the parameters *before* its (t + 1)-th M-step
        curve_diff=float(np.abs(ours.log_likelihoods[:-1] - np.asarray(gm.lower_bounds_)).max()),
        weights_diff=float(np.abs(ours.weights - gm.weights_[p]).max()),
        means_diff=float(np.abs(ours.means - gm.means_[p]).max()),
        covariances_diff=float(np.abs(ours.covariances - gm.covariances_[p]).max()),
    )


@dataclass(frozen=True)
class EMDemoResult:
    """Everything the chapter shows."""

    settings: EMDemoSettings
    X: np.ndarray  # (n, 2)
    init: GMMParams
    fit: GMMFit
    snapshots: dict[int, GMMParams]  # iteration -> parameters after it
    min_increment: float  # smallest log-likelihood change between EM iterations
    true_log_likelihood: float  # average log-likelihood of TRUE_MIXTURE on X
    stairs: np.ndarray  # (n_stairs, 2): ELBO after each E-step and after the following M-step
    sklearn: SklearnComparison
    amortised: dict[str, AmortisedFit]  # 'linear', 'quadratic'
    log: RunLog

    def chapter_values(self) -> dict[str, float | int | bool]:
        """Every number the chapter's text states, by glue name (``em_`` + name)."""
        s, fit, cmp = self.settings, self.fit, self.sklearn
        v: dict[str, float | int | bool] = {
            "n_points": s.n_points,
            "n_iter": fit.n_iter,
            "tol": s.tol,
            "converged": fit.converged,
            "init_ll": float(fit.log_likelihoods[0]),
            "final_ll": fit.log_likelihood,
            "true_ll": self.true_log_likelihood,
            "min_increment": self.min_increment,
            "stairs_min_rise": float(np.diff(self.stairs.reshape(-1)).min()),
            "n_stairs": s.n_stairs,
            "sk_n_iter": cmp.n_iter,
            "amortised_steps": s.amortised_steps,
            "gap_ratio": self.amortised["linear"].gap / self.amortised["quadratic"].gap,
        }
        for name in ("log_likelihood_diff", "curve_diff", "weights_diff", "means_diff", "covariances_diff"):
            v[f"sk_{name}"] = getattr(cmp, name)
        for kind, amortised in self.amortised.items():
            v[f"gap_{kind}"] = amortised.gap
        return {f"em_{k}": x for k, x in v.items()}


def elbo_stairs(X: np.ndarray, params: GMMParams, n_stairs: int, reg_covar: float = 1e-6) -> np.ndarray:
    """EM as coordinate ascent: ELBO(q_t, theta_t) and ELBO(q_t, theta_{t+1}) per step: -> (n_stairs, 2)."""
    out = np.empty((n_stairs, 2))
    for t in range(n_stairs):
        resp, _ = e_step(X, params)  # q_t = p(z | x, theta_t)
        out[t, 0] = elbo(X, params, resp)
        params = m_step(X, resp, reg_covar)  # theta_{t+1}
        out[t, 1] = elbo(X, params, resp)
    return out


def run(settings: EMDemoSettings, device: None = None, log: RunLog | None = None) -> EMDemoResult:
    """The chapter's experiment; its fits are timed into ``log`` (a new one if None).

    Everything here is numpy on the CPU: ``device`` is accepted for the experiments' common
    signature and must be None or ``"cpu"``.
    """
    if device is not None and str(device) != "cpu":
        raise ValueError(f"the EM experiment runs in numpy on the CPU; got device={device!r}")
    s = settings
    log = RunLog() if log is None else log
    X, _ = sample_gmm(TRUE_MIXTURE, s.n_points, seed=s.data_seed)
    K = TRUE_MIXTURE.n_components
    init = initial_params(X, K, seed=s.init_seed)
    start = time.perf_counter()
    fit = fit_gmm(X, K, n_iter=s.n_iter, tol=s.tol, init=init)
    log.record("em", fit.n_iter, time.perf_counter() - start)
    snapshots = {
        t: fit_gmm(X, K, n_iter=t, tol=0.0, init=init).params for t in s.snapshot_iters if t < fit.n_iter
    }
    snapshots[fit.n_iter] = fit.params
    amortised = {}
    for kind in ("linear", "quadratic"):
        start = time.perf_counter()
        amortised[kind] = fit_amortised_posterior(X, fit.params, kind, s.amortised_steps, s.amortised_lr)
        log.record(f"amortised_{kind}", s.amortised_steps, time.perf_counter() - start)
    return EMDemoResult(
        settings=s,
        X=X,
        init=init,
        fit=fit,
        snapshots=snapshots,
        min_increment=float(np.diff(fit.log_likelihoods).min()),
        true_log_likelihood=gmm_log_likelihood(X, TRUE_MIXTURE),
        stairs=elbo_stairs(X, init, s.n_stairs),
        sklearn=compare_with_sklearn(X, init, fit.n_iter),
        amortised=amortised,
        log=log,
    )


def plot_ellipses(ax: plt.Axes, params: GMMParams, n_std: float = 2.0, **kwargs) -> None:
    """Draw each component's n_std-sigma ellipse and mean (2d only)."""
    for w, mu, cov in zip(params.weights, params.means, params.covariances):
        vals, vecs = np.linalg.eigh(cov)  # ascending
        angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
        width, height = 2 * n_std * np.sqrt(vals[::-1])
        ax.add_patch(Ellipse(mu, width, height, angle=angle, fill=False, lw=1 + 4 * w, **kwargs))
        ax.plot(*mu, "x", ms=7, mew=2, **kwargs)


def plot_em_snapshots(result: EMDemoResult) -> plt.Figure:
    """The data with the fitted ellipses after each snapshot iteration, true ones dashed."""
    its = sorted(result.snapshots)
    fig, axes = plt.subplots(1, len(its), figsize=(3.2 * len(its), 3.4), sharex=True, sharey=True)
    for ax, t in zip(np.atleast_1d(axes), its):
        ax.scatter(*result.X.T, s=3, c="0.6", alpha=0.5)
        plot_ellipses(ax, TRUE_MIXTURE, color="0.3", ls="--")
        plot_ellipses(ax, result.snapshots[t], color="C3")
        ax.set_title(f"after {t} iteration{'s' if t != 1 else ''}")
        ax.set_aspect("equal")
    fig.tight_layout()
    return fig


def plot_log_likelihood(result: EMDemoResult) -> plt.Figure:
    """Left: average log-likelihood per EM iteration. Right: the ELBO staircase of the first steps."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    ll = result.fit.log_likelihoods
    a.plot(np.arange(len(ll)), ll, "C0.-", ms=3, label="EM")
    a.axhline(result.true_log_likelihood, color="0.3", ls="--", label="true parameters")
    a.set_xlabel("EM iteration t")
    a.set_ylabel(r"$\frac{1}{n}\log p(\mathbf{X} \mid \theta_t)$")
    a.legend()
    steps = result.stairs.reshape(-1)  # E, M, E, M, ...
    b.step(np.arange(len(steps)), steps, "C2", where="post")
    b.plot(np.arange(0, len(steps), 2), steps[::2], "o", color="C0", label="after E-step = log-lik")
    b.plot(np.arange(1, len(steps), 2), steps[1::2], "s", color="C1", label="after M-step")
    b.set_xlabel("half-step")
    b.set_ylabel("average ELBO")
    b.legend()
    fig.tight_layout()
    return fig


def plot_amortised(result: EMDemoResult) -> plt.Figure:
    """The gap log p(X) - ELBO (log scale) of the amortised E-step per gradient step, both encoders."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for kind, fit in result.amortised.items():
        ax.semilogy(fit.log_likelihood - fit.elbos, label=f"{kind} encoder (final gap {fit.gap:.2g})")
    ax.set_xlabel(r"gradient step on $\phi$ ($\theta$ fixed)")
    ax.set_ylabel(r"$\frac{1}{n}\log p(\mathbf{X}) - \mathcal{L}$ (nats)")
    ax.legend()
    fig.tight_layout()
    return fig


def em_steps(result: EMDemoResult, max_iter: int | None = None) -> list[GMMParams]:
    """The parameters after 0, 1, ..., T iterations of the chapter's EM run (T = all, or ``max_iter``)."""
    T = result.fit.n_iter if max_iter is None else min(int(max_iter), result.fit.n_iter)
    if T < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    params, out = result.init, [result.init]
    for _ in range(T):
        resp, _ = e_step(result.X, params)
        params = m_step(result.X, resp, result.fit.reg_covar)
        out.append(params)
    return out


def em_animation(result: EMDemoResult, max_iter: int = 20) -> ScrubbableFigure:
    """EM stepped through iteration by iteration, one frame per iteration, to scrub on a static page."""
    steps = em_steps(result, max_iter)
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=72)
    lo, hi = result.X.min(axis=0) - 1, result.X.max(axis=0) + 1

    def frame(t: int):
        ax.clear()
        ax.scatter(*result.X.T, s=3, c="0.6", alpha=0.5)
        plot_ellipses(ax, TRUE_MIXTURE, color="0.3", ls="--")
        plot_ellipses(ax, steps[t], color="C3")
        ax.set(
            xlim=(lo[0], hi[0]),
            ylim=(lo[1], hi[1]),
            aspect="equal",
            title=f"after {t} iteration{'s' * (t != 1)}",
        )
        return []

    return scrubbable(fig, frame, len(steps))
