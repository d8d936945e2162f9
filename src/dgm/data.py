"""Data sets of the book."""

from __future__ import annotations

import numpy as np

TWO_D_MODES = ("univariate", "multivariate")


def generate_2d_data(count: int, mode: str = "univariate") -> tuple[np.ndarray, np.ndarray]:
    """The homework's 2d Gaussian data: (0.7 count, 2) train and (0.3 count, 2) test, float32.

    ``univariate``: N((2, 3), diag(3^2, 1^2)); ``multivariate``: the same rotated by 45 degrees,
    so that the covariance is not diagonal. Seeded with ``np.random.seed(42)`` as in the
    homework, so the numbers are exactly the homework's (this sets numpy's global seed, too).
    """
    if mode not in TWO_D_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(TWO_D_MODES)}")
    if not isinstance(count, (int, np.integer)) or count < 2:
        raise ValueError(f"count must be an integer >= 2, got {count!r}")
    np.random.seed(42)
    mean = [[2.0, 3.0]]
    sigma = [[3.0, 1.0]]
    if mode == "univariate":
        rotate = [[1.0, 0.0], [0.0, 1.0]]
    else:
        rotate = [[np.sqrt(2) / 2, np.sqrt(2) / 2], [-np.sqrt(2) / 2, np.sqrt(2) / 2]]
    data = mean + (np.random.randn(count, 2) * sigma).dot(rotate)
    data = data.astype("float32")
    split = int(0.7 * count)
    train_data, test_data = data[:split], data[split:]
    return train_data, test_data


def true_2d_distribution(mode: str = "univariate") -> tuple[np.ndarray, np.ndarray]:
    """Mean (2,) and covariance (2, 2) of the distribution :func:`generate_2d_data` samples from.

    Rows are ``x = mean + (eps * sigma) @ R`` with eps ~ N(0, I), so Cov(x) = R^T diag(sigma^2) R:
    diag(9, 1) for ``univariate``, [[5, 4], [4, 5]] for ``multivariate`` (R a 45-degree rotation).
    """
    if mode not in TWO_D_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(TWO_D_MODES)}")
    mean = np.array([2.0, 3.0])
    sigma = np.array([3.0, 1.0])
    a = np.sqrt(2) / 2
    rotate = np.eye(2) if mode == "univariate" else np.array([[a, a], [-a, a]])
    return mean, rotate.T @ np.diag(sigma**2) @ rotate
