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


# --------------------------------------------------------------------------- ConvVAE

import math  # noqa: E402

from dgm.calibration import CalibratedConvVAE  # noqa: E402
from dgm.reconstruction import interpolate, reconstruct  # noqa: E402
from dgm.vae import ConvVAE  # noqa: E402

SMALL = (4, 8, 8, 8)


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 16, 24), (4, 8, 8)])
def test_conv_vae_shapes(shape):
    torch.manual_seed(0)
    model = ConvVAE(shape, n_latent=5, beta=0.5, channels=SMALL)
    x = torch.rand(3, *shape) * 2 - 1
    mu_z, log_std_z, x_recon = model(x)
    assert mu_z.shape == log_std_z.shape == (3, 5) and x_recon.shape == (3, *shape)
    mu_x, log_std_x = model.decode(model.prior(4))
    assert mu_x.shape == log_std_x.shape == (4, *shape) and torch.all(log_std_x == 0)
    mu, log_std = model.encoder(x)  # the homework's attributes
    assert mu.shape == (3, 5) and model.decoder(mu).shape == (3, *shape)
    s = model.sample(7)
    assert isinstance(s, np.ndarray) and s.shape == (7, *shape)
    assert 0 <= s.min() and s.max() <= 1


def test_homework_default_architecture():
    model = ConvVAE((3, 32, 32), 256)
    assert [m.out_channels for m in model.encoder.convs if isinstance(m, torch.nn.Conv2d)] == [
        32,
        64,
        128,
        256,
    ]
    assert model.decoder.base_size == (128, 4, 4)
    assert model.sample(2).shape == (2, 3, 32, 32)


def test_conv_vae_loss_matches_torch_distributions():
    torch.manual_seed(0)
    model = ConvVAE((3, 8, 16), 4, beta=2.5, channels=SMALL)
    x = torch.rand(6, 3, 8, 16) * 2 - 1
    torch.manual_seed(3)
    losses = model.loss(x)
    torch.manual_seed(3)  # the same noise
    mu_z, log_std_z, x_recon = model(x)
    q = Independent(Normal(mu_z, log_std_z.exp()), 1)
    p = Independent(Normal(torch.zeros_like(mu_z), torch.ones_like(mu_z)), 1)
    recon = -Independent(Normal(x_recon, torch.ones_like(x_recon)), 3).log_prob(x).mean()
    torch.testing.assert_close(losses["recon_loss"], recon)
    torch.testing.assert_close(losses["kl_loss"], kl_divergence(q, p).mean())
    torch.testing.assert_close(losses["elbo_loss"], losses["recon_loss"] + 2.5 * losses["kl_loss"])
    # The chapter's derivation: a constant plus half the squared error.
    d = 3 * 8 * 16
    half_sq = 0.5 * ((x - x_recon) ** 2).flatten(1).sum(1).mean()
    torch.testing.assert_close(losses["recon_loss"], d / 2 * math.log(2 * math.pi) + half_sq)


def test_conv_vae_loss_falls_on_small_data():
    torch.manual_seed(0)
    x = (torch.rand(64, 3, 1, 1) * 2 - 1).expand(64, 3, 16, 16).contiguous()  # flat colours
    model = ConvVAE((3, 16, 16), 4, channels=(8, 16, 16, 16))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    with torch.no_grad():
        first = float(model.loss(x)["elbo_loss"])
    for _ in range(100):
        opt.zero_grad()
        model.loss(x)["elbo_loss"].backward()
        opt.step()
    with torch.no_grad():
        last = model.loss(x)
    assert float(last["elbo_loss"]) < first - 25
    assert float(last["kl_loss"]) > 1, "the encoder carries information about the colour"


def test_conv_vae_rejects_bad_input():
    with pytest.raises(ValueError, match="divisible by 8"):
        ConvVAE((3, 20, 32), 8)
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        ConvVAE((32, 32), 8)
    with pytest.raises(ValueError, match="beta"):
        ConvVAE((3, 8, 8), 8, beta=-1)
    model = ConvVAE((3, 16, 16), 4, channels=SMALL)
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        model.loss(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        model.decode(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="empty"):
        model.loss(torch.zeros(0, 3, 16, 16))


def test_calibrated_sigma_maximises_the_elbo():
    torch.manual_seed(0)
    model = CalibratedConvVAE((3, 8, 8), 4, channels=SMALL, momentum=1.0)
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    model.train()
    torch.manual_seed(1)
    recon = float(model.loss(x)["recon_loss"].detach())
    torch.manual_seed(1)
    x_recon = model(x)[2].detach()
    sigma2 = ((x - x_recon) ** 2).mean(dim=(0, 2, 3))  # per channel, computed here independently

    def nll(scale):  # the reconstruction term for std = scale * sqrt(sigma2), via torch.distributions
        std = (scale * sigma2.sqrt()).view(1, 3, 1, 1).expand_as(x)
        return float(-Normal(x_recon, std).log_prob(x).flatten(1).sum(1).mean())

    assert recon == pytest.approx(nll(1.0), rel=1e-5)
    assert nll(1.0) < nll(1.1) and nll(1.0) < nll(0.9)
    # momentum=1: the buffer holds this step's sigma, which decode returns in eval mode.
    torch.testing.assert_close(model.log_std_x.flatten().exp() ** 2, sigma2)
    model.eval()
    assert torch.equal(model.decode(torch.zeros(2, 4))[1][:, :, 0, 0], model.log_std_x.flatten().expand(2, 3))


def test_calibrated_sigma_has_a_floor():
    model = CalibratedConvVAE((1, 8, 8), 2, channels=SMALL, momentum=1.0, bin_width=0.1)
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.zero_()  # the decoder outputs 0 everywhere: a perfect fit of x = 0
    model.train()
    model.loss(torch.zeros(4, 1, 8, 8))
    assert model.log_std_x.exp().item() ** 2 == pytest.approx(0.1**2 / 12)


def test_reconstruct_and_interpolate():
    torch.manual_seed(0)
    model = ConvVAE((3, 8, 8), 4, channels=SMALL).eval()
    x1, x2 = torch.rand(2, 3, 3, 8, 8) * 2 - 1
    r1 = reconstruct(model, x1)
    torch.testing.assert_close(r1, model.decoder(model.encoder(x1)[0]))
    path = interpolate(model, x1, x2, n_steps=10)
    assert path.shape == (3, 10, 3, 8, 8)
    torch.testing.assert_close(path[:, 0], r1)
    torch.testing.assert_close(path[:, -1], reconstruct(model, x2))
    z1, z2 = model.encoder(x1)[0], model.encoder(x2)[0]
    torch.testing.assert_close(path[:, 4], model.decoder(z1 + 4 / 9 * (z2 - z1)))
    with pytest.raises(ValueError, match="n_steps"):
        interpolate(model, x1, x2, n_steps=1)
