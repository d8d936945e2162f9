"""dgm.elbo: the ELBO's two terms against torch.distributions, and one sample's path through a model."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dgm.elbo import elbo_terms, negative_elbo_terms
from dgm.vae import ConvVAE, VAE2d


def test_terms_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    x, mu_x, log_std_x = (torch.randn(5, 3, 2, 2, generator=g) for _ in range(3))
    mu_z, log_std_z = torch.randn(5, 4, generator=g), 0.3 * torch.randn(5, 4, generator=g)
    terms = negative_elbo_terms(x, mu_z, log_std_z, mu_x, log_std_x)
    recon = -Normal(mu_x, log_std_x.exp()).log_prob(x).flatten(1).sum(dim=1)
    kl = kl_divergence(Normal(mu_z, log_std_z.exp()), Normal(0.0, 1.0))
    torch.testing.assert_close(terms.recon, recon)
    torch.testing.assert_close(terms.kl_dims, kl)
    torch.testing.assert_close(terms.kl, kl.sum(dim=1))
    losses = terms.losses(beta=0.5)
    torch.testing.assert_close(losses["elbo_loss"], recon.mean() + 0.5 * kl.sum(dim=1).mean())
    assert set(losses) == {"elbo_loss", "recon_loss", "kl_loss"}
    with pytest.raises(ValueError, match=r"\(B, d\)"):
        negative_elbo_terms(x, mu_z[:3], log_std_z[:3], mu_x, log_std_x)


def test_one_reparameterised_sample_reaches_encoder_and_decoder():
    torch.manual_seed(0)
    model = VAE2d(2, 2, [8], [8])
    x = torch.randn(16, 2)
    terms = elbo_terms(model, x)
    terms.losses()["elbo_loss"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.parameters())
    # by hand: encode, z = mu + sigma * eps with the same eps, decode
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    with torch.no_grad():
        ours = elbo_terms(model, x, generator=g1)
        mu_z, log_std_z = model.encode(x)
        z = mu_z + log_std_z.exp() * torch.randn(mu_z.shape, generator=g2)
        mu_x, log_std_x = model.decode(z)
    torch.testing.assert_close(ours.recon, -Normal(mu_x, log_std_x.exp()).log_prob(x).sum(dim=1))
    again = elbo_terms(model, x, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(again.recon, ours.recon)  # the generator fixes the sample


def test_the_decoders_log_std_can_be_replaced_and_models_use_these_terms():
    torch.manual_seed(0)
    model = ConvVAE((3, 8, 8), 3, beta=2.0, channels=(4, 8, 8, 8)).eval()
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    torch.manual_seed(1)
    unit = elbo_terms(model, x)
    torch.manual_seed(1)
    wide = elbo_terms(model, x, decoder_log_std=lambda mu_x: torch.full_like(mu_x, 1.0))
    # the same sample: with unit variance recon = m/2 log 2 pi + sq / 2,
    # with sigma = e (log_std = 1) recon = m (1 + 1/2 log 2 pi) + sq / (2 e^2)
    m = 3 * 8 * 8
    sq = 2 * (unit.recon - m / 2 * math.log(2 * math.pi))
    torch.testing.assert_close(wide.recon, m * (1 + 0.5 * math.log(2 * math.pi)) + sq / (2 * math.e**2))
    assert torch.equal(wide.kl_dims, unit.kl_dims)
    torch.manual_seed(1)
    losses = model.loss(x)
    torch.testing.assert_close(losses["elbo_loss"], unit.recon.mean() + 2.0 * unit.kl.mean())
