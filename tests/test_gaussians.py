from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dgm.gaussians import check_broadcast, get_normal_KL, get_normal_nll, sample_normal


def test_homework_values():
    # The homework's own checks (values computed by the course, not by this code).
    assert np.isclose(
        get_normal_KL(torch.tensor(2), torch.tensor(3), torch.tensor(0), torch.tensor(0)).numpy(),
        200.2144,
        rtol=1e-3,
    )
    assert np.isclose(
        get_normal_KL(torch.tensor(2), torch.tensor(3), torch.tensor(4), torch.tensor(5)).numpy(),
        1.50925,
        rtol=1e-3,
    )
    assert np.allclose(
        get_normal_KL(torch.tensor((10, 10)), torch.tensor((2, 4)), torch.tensor((3, 5))).numpy(),
        [49.2990, 1498.479],
        rtol=1e-3,
    )
    assert np.isclose(
        get_normal_nll(torch.tensor(2), torch.tensor(2), torch.tensor(3)).numpy(), 3.9189, rtol=1e-3
    )
    assert np.isclose(
        get_normal_nll(torch.tensor(5), torch.tensor(-3), torch.tensor(6)).numpy(), 6.9191, rtol=1e-3
    )
    assert np.allclose(
        get_normal_nll(torch.tensor((10, 10)), torch.tensor((2, 4)), torch.tensor((3, 5))).numpy(),
        [3.9982, 5.9197],
        rtol=1e-3,
    )


@pytest.mark.parametrize("shape", [(), (7,), (5, 3), (2, 3, 4)])
def test_kl_matches_torch_distributions(shape):
    g = torch.Generator().manual_seed(0)
    m1, s1, m2, s2 = (torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(4))
    ours = get_normal_KL(m1, s1, m2, s2)
    ref = kl_divergence(Normal(m1, s1.exp()), Normal(m2, s2.exp()))
    torch.testing.assert_close(ours, ref)
    std_ref = kl_divergence(Normal(m1, s1.exp()), Normal(torch.zeros_like(m1), torch.ones_like(s1)))
    torch.testing.assert_close(get_normal_KL(m1, s1), std_ref)


@pytest.mark.parametrize("shape", [(), (7,), (5, 3)])
def test_nll_matches_torch_distributions(shape):
    g = torch.Generator().manual_seed(1)
    x, m, s = (torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(3))
    torch.testing.assert_close(get_normal_nll(x, m, s), -Normal(m, s.exp()).log_prob(x))


def test_closed_forms():
    # KL of identical Gaussians is zero; NLL at the mean is log(sigma) + log(2 pi) / 2.
    m, s = torch.tensor([0.3, -2.0]), torch.tensor([0.1, -1.0])
    torch.testing.assert_close(get_normal_KL(m, s, m, s), torch.zeros(2))
    torch.testing.assert_close(get_normal_nll(m, m, s), s + 0.5 * math.log(2 * math.pi))


def test_broadcasting_like_torch_where_meaningful():
    x = torch.randn(4, 3)
    out = get_normal_nll(x, torch.zeros(3), torch.tensor(0.0))
    assert out.shape == (4, 3)
    torch.testing.assert_close(out, -Normal(0.0, 1.0).log_prob(x))


def test_outer_product_broadcast_is_refused():
    with pytest.raises(ValueError, match="larger than every input"):
        get_normal_nll(torch.randn(5), torch.randn(5, 1), torch.zeros(5))
    with pytest.raises(ValueError, match="do not broadcast"):
        get_normal_KL(torch.randn(3), torch.randn(4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        get_normal_KL(np.zeros(3), torch.zeros(3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs two devices")
def test_mismatched_devices_are_refused():
    with pytest.raises(ValueError, match="different devices"):
        get_normal_KL(torch.zeros(3, device="cuda"), torch.tensor(0.0))


def test_check_broadcast_reports_devices_with_meta_tensors():
    # Two distinct devices exist everywhere: cpu and meta.
    with pytest.raises(ValueError, match="different devices"):
        check_broadcast(a=torch.zeros(3), b=torch.zeros(3, device="meta"))


def test_sample_normal_moments_and_gradients():
    torch.manual_seed(0)
    mean = torch.tensor([1.0, -2.0], requires_grad=True)
    log_std = torch.tensor([0.0, math.log(3.0)], requires_grad=True)
    z = sample_normal(mean.expand(200_000, 2), log_std.expand(200_000, 2))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.0, -2.0]), atol=0.03, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([1.0, 3.0]), atol=0.03, rtol=0)
    z.sum().backward()
    assert mean.grad is not None and log_std.grad is not None
    eps = torch.ones(2)
    torch.testing.assert_close(sample_normal(mean, log_std, eps), torch.tensor([2.0, 1.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_small_log_std_gives_finite_values_and_gradients(dtype):
    # The reference: the closed form in Python floats (float64), with d/dlog_std = 1 - z^2 and
    # d/dmean = -(x - mean) / s^2, z = (x - mean) / s.
    import math

    log_std = [-60.0, -200.0, -30.0, 0.0, 2.0]
    mean = [1.0, -3.0, 0.25, 0.5, 2.0]
    x = [1.0, -3.0, 0.25 + 2.0**-20, 0.7, -1.0]
    ls = torch.tensor(log_std, dtype=dtype, requires_grad=True)
    m = torch.tensor(mean, dtype=dtype, requires_grad=True)
    nll = get_normal_nll(torch.tensor(x, dtype=dtype), m, ls)
    nll.sum().backward()
    for i in range(len(x)):
        z = (x[i] - mean[i]) * math.exp(-log_std[i])
        assert math.isclose(
            float(nll.detach()[i]), log_std[i] + 0.5 * math.log(2 * math.pi) + 0.5 * z * z, rel_tol=1e-5
        )
        assert math.isclose(float(ls.grad[i]), 1 - z * z, rel_tol=1e-5, abs_tol=1e-6)
        assert math.isclose(
            float(m.grad[i]), -(x[i] - mean[i]) * math.exp(-2 * log_std[i]), rel_tol=1e-5, abs_tol=1e-6
        )
    # KL between a Gaussian and itself is 0, with zero gradients, however small its standard deviation.
    ls2 = torch.tensor(log_std, dtype=dtype, requires_grad=True)
    m2 = torch.tensor(mean, dtype=dtype, requires_grad=True)
    kl = get_normal_KL(m2, ls2, m2.detach(), ls2.detach())
    kl.sum().backward()
    assert torch.all(kl == 0) and torch.all(ls2.grad == 0) and torch.all(m2.grad == 0)
    # Against the standard normal: log_std = -60 gives 60 + e^-120 / 2 + mean^2 / 2 - 1/2.
    kl = get_normal_KL(torch.tensor([0.5], dtype=dtype), torch.tensor([-60.0], dtype=dtype))
    assert math.isclose(float(kl), 60 + 0.125 - 0.5, rel_tol=1e-6)
