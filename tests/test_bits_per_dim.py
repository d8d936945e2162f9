from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy.stats import norm

from dgm.bits_per_dim import (
    BIN_WIDTH,
    bits_per_dim,
    bits_per_dim_from_nats,
    dequantize,
    unit_variance_floor,
)
from dgm.vae import ConvVAE


class FixedGaussian(nn.Module):
    """p(x) = N(mean, std^2) per pixel whatever z, and q(z | x) = p(z): the ELBO is exactly log p(x)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.mean, self.std = mean, std

    def encode(self, x):
        return torch.zeros(len(x), 2), torch.zeros(len(x), 2)

    def decode(self, z):
        return self.mean.expand(len(z), *self.mean.shape), self.std.log().expand(len(z), *self.std.shape)


def _pixels(n, shape, seed=0):
    k = np.random.default_rng(seed).integers(0, 256, size=(n, *shape))
    return k, torch.tensor(2 * k / 255 - 1, dtype=torch.float32)


def test_uniform_over_256_values_is_eight_bits():
    # A uniform density on [-1 - b/2, 1 + b/2] covers the 256 bins exactly: 8 bits per value.
    d = 3072
    nll = d * math.log(256 * BIN_WIDTH)
    assert bits_per_dim_from_nats(nll, d) == pytest.approx(8.0, abs=1e-12)
    with pytest.raises(ValueError):
        bits_per_dim_from_nats(1.0, 0)


def test_floor_against_scipy():
    exact = -np.log2(norm.cdf(1 / 255) - norm.cdf(-1 / 255))  # the best bin: centred on the mean
    assert unit_variance_floor() == pytest.approx(exact, rel=1e-9)
    assert 8.3 < unit_variance_floor() < 8.33


@pytest.mark.parametrize("std", [1.0, 0.25])
def test_bits_per_dim_against_the_discrete_probability(std):
    shape = (3, 4, 4)
    k, x = _pixels(256, shape)
    mean = torch.linspace(-0.5, 0.5, 48).view(shape)
    model = FixedGaussian(mean, torch.full(shape, std))
    ours = bits_per_dim(model, x, batch_size=100)
    # Independent: the probability each Gaussian gives each 8-bit value's bin, from scipy.
    centre, m = 2 * k / 255 - 1, mean.numpy()
    p = norm.cdf((centre + 1 / 255 - m) / std) - norm.cdf((centre - 1 / 255 - m) / std)
    exact = -np.log2(p).mean()
    # The dequantized bound exceeds this by about bin^2 / (24 std^2) nats (Jensen), far below the
    # Monte Carlo noise of one dequantization per pixel (about 4e-4 bits here).
    assert ours.total == pytest.approx(exact, abs=2e-3)
    # and image by image (one dequantization of 48 values each: about 3e-3 bits of noise per image)
    per_image = -np.log2(p).reshape(len(k), -1).mean(axis=1)
    assert ours.per_image.shape == (256,)
    assert np.abs(ours.per_image - per_image).max() < 0.02
    assert ours.per_image.mean() == pytest.approx(ours.total, rel=1e-6)  # the total sums in float32
    assert ours.kl == pytest.approx(0.0, abs=1e-12)
    assert ours.total == pytest.approx(ours.recon + ours.kl + ours.discretisation)
    assert ours.discretisation == pytest.approx(np.log2(127.5))


def test_unit_variance_vae_cannot_beat_the_floor():
    torch.manual_seed(0)
    model = ConvVAE((3, 8, 8), 4, channels=(4, 8, 8, 8))
    _, x = _pixels(32, (3, 8, 8))
    b = bits_per_dim(model, x)
    assert b.total > unit_variance_floor() and b.kl > 0
    assert model.training, "bits_per_dim restores the model's mode"


def test_dequantize_is_uniform_within_the_bin():
    x = torch.zeros(200_000)
    u = dequantize(x, 0.5, torch.Generator().manual_seed(0))
    assert u.min() >= -0.25 and u.max() <= 0.25
    assert float(u.mean()) == pytest.approx(0.0, abs=3e-3)
    assert float(u.var()) == pytest.approx(0.5**2 / 12, rel=0.02)


def test_bits_per_dim_is_reproducible_whatever_the_global_seed():
    torch.manual_seed(0)
    model = ConvVAE((3, 8, 8), 4, channels=(4, 8, 8, 8))
    _, x = _pixels(16, (3, 8, 8))
    torch.manual_seed(1)
    a = bits_per_dim(model, x, seed=3)
    torch.manual_seed(2)
    assert bits_per_dim(model, x, seed=3) == a
    assert bits_per_dim(model, x, seed=4) != a


def test_the_importance_weighted_figure_is_tighter_and_k1_is_the_elbo():
    from dgm.iwae import iwae_bound

    torch.manual_seed(0)
    model = ConvVAE((3, 8, 8), 4, channels=(4, 8, 8, 8)).eval()
    x = torch.rand(12, 3, 8, 8) * 2 - 1
    elbo = bits_per_dim(model, x)
    assert elbo.k == 1 and elbo.total == pytest.approx(elbo.recon + elbo.kl + elbo.discretisation)
    tight = bits_per_dim(model, x, k=50, batch_size=600)  # one batch of all 12 images (12 x 50 decodes)
    assert tight.k == 50 and tight.recon is None and tight.kl is None
    assert tight.total < elbo.total
    # by hand: the same dequantization noise, then -L_k per image, in bits per dimension
    g = torch.Generator().manual_seed(0)
    xd = dequantize(x, BIN_WIDTH, g)
    with torch.no_grad():
        nats = -iwae_bound(model, xd, 50, chunk_size=50, generator=g).double().mean()
    assert tight.total == pytest.approx(bits_per_dim_from_nats(float(nats), 3 * 8 * 8), rel=1e-6)
    g = torch.Generator().manual_seed(0)
    xd = dequantize(x, BIN_WIDTH, g)
    with torch.no_grad():
        each = -iwae_bound(model, xd, 50, chunk_size=50, generator=g).double()
    by_hand = [bits_per_dim_from_nats(float(v), 3 * 8 * 8) for v in each]
    assert tight.per_image == pytest.approx(by_hand, rel=1e-6)
    with pytest.raises(ValueError, match="k must be"):
        bits_per_dim(model, x, k=0)
