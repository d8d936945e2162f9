from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from dgm.nets import FullyConnectedMLP
from dgm.vae import VAE2d


def test_mlp_shapes_and_layers():
    mlp = FullyConnectedMLP(2, [16, 8], 4)
    assert mlp(torch.randn(5, 2)).shape == (5, 4)
    kinds = [type(m).__name__ for m in mlp.net]
    assert kinds == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert FullyConnectedMLP(3, [], 1)(torch.randn(2, 3)).shape == (2, 1)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        mlp(torch.randn(5, 3))
    with pytest.raises(TypeError):
        FullyConnectedMLP(2, (16,), 4)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        FullyConnectedMLP(2, [0], 4)


def test_vae2d_interface_shapes():
    torch.manual_seed(0)
    model = VAE2d(2, 3, [16, 16], [16])
    x = torch.randn(10, 2)
    mu_z, log_std_z, mu_x, log_std_x = model(x)
    assert mu_z.shape == log_std_z.shape == (10, 3)
    assert mu_x.shape == log_std_x.shape == (10, 2)
    assert model.prior(7).shape == (7, 3)
    s = model.sample(6)
    assert isinstance(s, np.ndarray) and s.shape == (6, 2)
    assert model.sample(6, sample_from_decoder=False).shape == (6, 2)


def test_vae2d_loss_matches_torch_distributions():
    torch.manual_seed(0)
    model = VAE2d(2, 2, [8], [8])
    x = torch.randn(32, 2)
    torch.manual_seed(5)
    losses = model.loss(x)
    # Recompute with the same noise through torch.distributions.
    torch.manual_seed(5)
    mu_z, log_std_z, mu_x, log_std_x = model(x)
    q = Independent(Normal(mu_z, log_std_z.exp()), 1)
    p = Independent(Normal(torch.zeros_like(mu_z), torch.ones_like(mu_z)), 1)
    recon = -Independent(Normal(mu_x, log_std_x.exp()), 1).log_prob(x).mean()
    torch.testing.assert_close(losses["kl_loss"], kl_divergence(q, p).mean())
    torch.testing.assert_close(losses["recon_loss"], recon)
    torch.testing.assert_close(losses["elbo_loss"], losses["recon_loss"] + losses["kl_loss"])


def test_decoder_means_without_noise():
    torch.manual_seed(0)
    model = VAE2d(2, 2, [8], [8])
    torch.manual_seed(1)
    a = model.sample(5, sample_from_decoder=False)
    torch.manual_seed(1)
    z = model.prior(5)
    torch.testing.assert_close(torch.from_numpy(a), model.decode(z)[0].detach())


def test_bad_batches_are_refused():
    model = VAE2d(2, 2, [8], [8])
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        model.loss(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        model.loss(torch.randn(4))
    with pytest.raises(ValueError, match="empty"):
        model.loss(torch.randn(0, 2))
    with pytest.raises(ValueError, match="meta"):
        model.loss(torch.randn(4, 2, device="meta"))
    with pytest.raises(TypeError):
        model.loss(np.zeros((4, 2)))
    with pytest.raises(TypeError):
        VAE2d(2, 2, (8,), [8])  # type: ignore[arg-type]
