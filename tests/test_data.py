from __future__ import annotations

from typing import Tuple

import numpy as np
import pytest

from dgm.data import generate_2d_data


def homework_generate_2d_data(count: int, mode: str = 'univariate') -> Tuple[np.ndarray, np.ndarray]:
    # Verbatim from the homework (shared/seeds/000_*.txt, Task 2): the reference.
    assert mode in ['univariate', 'multivariate']
    np.random.seed(42)
    mean = [[2.0, 3.0]]
    sigma = [[3.0, 1.0]]
    if mode == 'univariate':
        rotate = [
            [1.0, 0.0], 
            [0.0, 1.0]
        ]
    else:
        rotate = [
            [np.sqrt(2) / 2, np.sqrt(2) / 2], 
            [-np.sqrt(2) / 2, np.sqrt(2) / 2]
        ]
    data = mean + (np.random.randn(count, 2) * sigma).dot(rotate)
    data = data.astype('float32')
    split = int(0.7 * count)
    train_data, test_data = data[:split], data[split:]
    return train_data, test_data


@pytest.mark.parametrize("mode", ["univariate", "multivariate"])
@pytest.mark.parametrize("count", [10, 10000, 15000])
def test_same_numbers_as_the_homework(mode, count):
    ours, ref = generate_2d_data(count, mode), homework_generate_2d_data(count, mode)
    for a, b in zip(ours, ref):
        assert a.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_statistics_of_the_two_modes():
    train, _ = generate_2d_data(100_000, "univariate")
    np.testing.assert_allclose(np.cov(train.T), [[9, 0], [0, 1]], atol=0.15)
    train, _ = generate_2d_data(100_000, "multivariate")
    np.testing.assert_allclose(np.cov(train.T), [[5, 4], [4, 5]], atol=0.15)  # R^T diag(9,1) R


def test_bad_arguments():
    with pytest.raises(ValueError, match="univariate, multivariate"):
        generate_2d_data(100, "diagonal")
    with pytest.raises(ValueError, match="count"):
        generate_2d_data(1)


def test_true_distribution_is_what_the_generator_samples():
    from dgm.data import true_2d_distribution

    for mode in ("univariate", "multivariate"):
        mean, cov = true_2d_distribution(mode)
        train, test = generate_2d_data(200_000, mode)
        x = np.concatenate([train, test])
        np.testing.assert_allclose(x.mean(axis=0), mean, atol=0.02)
        np.testing.assert_allclose(np.cov(x.T), cov, atol=0.05)
    np.testing.assert_allclose(true_2d_distribution("multivariate")[1], [[5, 4], [4, 5]], atol=1e-12)
    with pytest.raises(ValueError, match="univariate, multivariate"):
        true_2d_distribution("rotated")
