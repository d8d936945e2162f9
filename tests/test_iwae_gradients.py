"""dgm.iwae_gradients: the IWAE loss against closed forms (probabilistic PCA), the DReG estimator against
the IWAE gradient it replaces, and the signal-to-noise and active-unit statistics."""

from __future__ import annotations

import math
import os

import pytest
import torch

from dgm.collapse import active_units
from dgm.iwae_gradients import gradient_draws, iwae_loss, mean_difference_z, snr, surrogates
from dgm.quadrature import quadrature_elbo
from dgm.significance import z_threshold
from dgm.vae import VAE2d

from ppca import B_MEAN, LOG_S_DIAG, W_DIAG, linear_vae, ppca_marginal


def _points(n=6):
    """n points of the model's own marginal p(x) (call after seeding torch)."""
    return ppca_marginal(W_DIAG, B_MEAN, LOG_S_DIAG).sample((n,)).float()


def test_with_the_exact_posterior_the_loss_is_minus_log_px_for_every_k():
    # diagonal W: the posterior is diagonal, and the linear encoder equals it; every weight is p(x)
    model = linear_vae(W_DIAG, LOG_S_DIAG)
    torch.manual_seed(0)
    x = _points()
    exact = -ppca_marginal(W_DIAG, B_MEAN, LOG_S_DIAG).log_prob(x.double()).mean()
    for k in (1, 3, 50):
        assert float(iwae_loss(model, x, k).detach()) == pytest.approx(float(exact), abs=1e-4)


def test_the_loss_approaches_minus_log_px_from_above_as_k_grows():
    model = linear_vae(W_DIAG, LOG_S_DIAG, inflate=3.0)  # a poorer q: the bound is loose at k = 1
    torch.manual_seed(0)
    x = _points()
    exact = float(-ppca_marginal(W_DIAG, B_MEAN, LOG_S_DIAG).log_prob(x.double()).mean())
    torch.manual_seed(1)
    with torch.no_grad():
        losses = {k: sum(float(iwae_loss(model, x, k)) for _ in range(20)) / 20 for k in (1, 10, 1000)}
    assert losses[1] > losses[10] > losses[1000] > exact - 1e-3
    assert losses[1000] - exact < 0.05 * (losses[1] - exact)
    # k = 1 estimates the negative ELBO: the average over many draws is the exact one
    torch.manual_seed(2)
    with torch.no_grad():
        many = torch.stack([iwae_loss(model, x, 1) for _ in range(2000)]).double()
    closed = -float(quadrature_elbo(model, x).mean())  # the ELBO without sampling noise
    assert abs(float(many.mean()) - closed) < 4 * float(many.std()) / math.sqrt(len(many))


def test_the_decoder_gradient_matches_the_closed_form_log_likelihood_in_expectation():
    # q = p(z | x): the mean of the IWAE gradient for the decoder is grad log p(x) (Fisher's identity)
    model = linear_vae(W_DIAG, LOG_S_DIAG)
    torch.manual_seed(0)
    x = _points(4)
    decoder = model.decoder.net[0]
    W, b, log_s = decoder.weight[:2].detach(), decoder.bias[:2].detach(), decoder.bias[2:].detach()
    params = [t.clone().double().requires_grad_() for t in (W, b, log_s)]
    log_px = ppca_marginal(*params).log_prob(x.double()).mean()
    exact = torch.autograd.grad(log_px, params)
    _, dec = gradient_draws(model, x, 5, "iwae", n_draws=400, seed=3)
    # the decoder's parameters: Linear(2, 4) weight (4, 2) then bias (4,); rows 0-1 give mu_x, 2-3 log_std_x
    mean, se = dec.mean(dim=0), dec.std(dim=0) / math.sqrt(len(dec))
    weight_mean, bias_mean = mean[:8].view(4, 2), mean[8:]
    weight_se, bias_se = se[:8].view(4, 2), se[8:]
    z_crit = z_threshold(2 * 2 + 2 + 2, 1e-3)
    for got, err, want in [
        (weight_mean[:2], weight_se[:2], exact[0]),
        (bias_mean[:2], bias_se[:2], exact[1]),
        (bias_mean[2:], bias_se[2:], exact[2]),
    ]:
        assert ((got - want).abs() < z_crit * err + 1e-6).all(), (got, want)


def test_dreg_has_the_iwae_gradients_expectation_and_a_higher_encoder_snr():
    torch.manual_seed(0)
    model = VAE2d(2, 2, [8], [8])
    x = torch.randn(8, 2) * torch.tensor([3.0, 1.0]) + torch.tensor([2.0, 3.0])
    iwae_enc, iwae_dec = gradient_draws(model, x, 10, "iwae", n_draws=600, seed=1)
    dreg_enc, dreg_dec = gradient_draws(model, x, 10, "dreg", n_draws=600, seed=2)
    n = iwae_enc.shape[1] + iwae_dec.shape[1]
    z = torch.cat([mean_difference_z(dreg_enc, iwae_enc), mean_difference_z(dreg_dec, iwae_dec)])
    assert z.abs().max() < z_threshold(n, 1e-3)
    assert snr(dreg_enc) > snr(iwae_enc)
    with pytest.raises(ValueError, match="unknown estimator"):
        surrogates(model, x, 5, "reinforce")


def test_gradient_draws_are_reproducible_and_leave_the_global_stream_alone():
    torch.manual_seed(0)
    model = VAE2d(2, 2, [4], [4])
    x = torch.randn(3, 2)
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    a = gradient_draws(model, x, 3, "dreg", n_draws=4, seed=5)
    after = torch.rand(1)
    b = gradient_draws(model, x, 3, "dreg", n_draws=4, seed=5)
    assert torch.equal(before, after) and all(torch.equal(u, v) for u, v in zip(a, b))
    with pytest.raises(ValueError, match="two draws"):
        gradient_draws(model, x, 3, n_draws=1)


def test_snr_and_active_units_against_constructed_cases():
    g = torch.Generator().manual_seed(0)
    draws = torch.stack(
        [
            2.0 + 0.5 * torch.randn(20_000, generator=g),
            -1.0 + 4.0 * torch.randn(20_000, generator=g),
            torch.zeros(20_000),
        ],
        dim=1,
    ).double()  # the constant column is left out
    # root mean square of the two columns' ratios, 2 / 0.5 = 4 and 1 / 4; the constant column left out
    assert snr(draws) == pytest.approx(((16 + 1 / 16) / 2) ** 0.5, rel=0.02)
    noise = torch.randn(2000, 2000, generator=g).double()  # no signal: the plain ratio would be 0.018
    assert snr(noise) < 0.01
    with pytest.raises(ValueError, match="varies"):
        snr(torch.zeros(5, 3))

    class Encoder(torch.nn.Module):  # mu_z = (x_1, 0.05 x_2, 0): variances 1, 0.0025 and 0 under N(0, I)
        def encode(self, x):
            mu = torch.stack([x[:, 0], 0.05 * x[:, 1], torch.zeros_like(x[:, 0])], dim=1)
            return mu, torch.zeros_like(mu)

    x = torch.randn(5000, 2, generator=g)
    count, var = active_units(Encoder(), x)
    assert count == 1 and var[0] == pytest.approx(1.0, rel=0.05) and var[2] == 0
    assert active_units(Encoder(), x, threshold=0.001)[0] == 2


def _resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads Linux's /proc")
def test_many_draws_do_not_grow_the_process():
    # Without release_freed_memory, glibc's heap grew by about 2 MB per draw here (840 MB for 400):
    # the gpu profile's 4000 draws per K and estimator took the process to 22 GB.
    from dgm.training import release_freed_memory

    torch.manual_seed(0)
    model = VAE2d(2, 2, [64, 64], [64, 64])
    x = torch.randn(64, 2)
    gradient_draws(model, x, 500, "iwae", 20)  # warm up the allocator
    release_freed_memory()
    before = _resident_mib()
    gradient_draws(model, x, 500, "iwae", 400)
    assert _resident_mib() - before < 150
