"""Time fit_gmm against scikit-learn's GaussianMixture: same data, same start, same iterations.

    python benchmarks/gmm_speed.py [--n-points 100000] [--n-components 5] [--n-iter 50] [--repeats 3]

Both run exactly ``--n-iter`` EM iterations (tol=0) from the same initial parameters on the same
float64 data, for 2 and 10 dimensions. scikit-learn is given the start through ``weights_init``,
``means_init`` and ``precisions_init`` with ``init_params="random_from_data"`` (its cheapest
initialisation, which it runs even when every parameter is given). Reported: the best of
``--repeats`` wall times, their ratio (fit_gmm / sklearn; < 1 means fit_gmm is faster) and the
largest parameter difference, to show both computed the same thing. Target: ratio <= 1.

BLAS runs single-threaded for both by default (``--threads 1``): on a shared machine a
multi-threaded BLAS competing with other jobs makes timings swing by 10x from run to run.
``--threads 0`` keeps the library default.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture
from threadpoolctl import threadpool_limits

from dgm.gmm import GMMParams, fit_gmm, initial_params, sample_gmm


def make_data(n: int, m: int, K: int, seed: int) -> np.ndarray:
    """n points in m dims from a random K-component mixture with well-separated means."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((K, m, m)) / np.sqrt(m)
    truth = GMMParams(
        np.full(K, 1.0 / K), 4 * rng.standard_normal((K, m)), A @ A.transpose(0, 2, 1) + 0.1 * np.eye(m)
    )
    return sample_gmm(truth, n, seed=seed)[0]


def best_time(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n-points", type=int, default=100_000)
    p.add_argument("--n-components", type=int, default=5)
    p.add_argument("--n-iter", type=int, default=50)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="BLAS threads; 0 = library default")
    args = p.parse_args()
    if args.threads > 0:
        threadpool_limits(args.threads)
    K, n_iter = args.n_components, args.n_iter
    print(
        f"{args.n_points} points, {K} components, {n_iter} EM iterations, best of {args.repeats}, "
        f"BLAS threads: {args.threads or 'default'}"
    )
    print(f"{'dims':>4} {'fit_gmm s':>10} {'sklearn s':>10} {'ratio':>6} {'max |param diff|':>17}")
    for m in (2, 10):
        X = make_data(args.n_points, m, K, seed=m)
        init = initial_params(X, K, seed=0)
        t_ours, fit = best_time(lambda: fit_gmm(X, K, n_iter=n_iter, tol=0.0, init=init), args.repeats)

        def sk() -> GaussianMixture:
            gm = GaussianMixture(
                K,
                covariance_type="full",
                tol=0.0,
                reg_covar=1e-6,
                max_iter=n_iter,
                init_params="random_from_data",
                weights_init=init.weights,
                means_init=init.means,
                precisions_init=np.linalg.inv(init.covariances),
                random_state=0,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                return gm.fit(X)

        t_sk, gm = best_time(sk, args.repeats)
        diff = max(
            np.abs(fit.weights - gm.weights_).max(),
            np.abs(fit.means - gm.means_).max(),
            np.abs(fit.covariances - gm.covariances_).max(),
        )
        print(f"{m:>4} {t_ours:>10.3f} {t_sk:>10.3f} {t_ours / t_sk:>6.2f} {diff:>17.2e}")


if __name__ == "__main__":
    main()
