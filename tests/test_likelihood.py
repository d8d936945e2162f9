"""Exact likelihood, posterior and ELBO against closed forms (probabilistic PCA) and scipy quadrature."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate
from torch.distributions import MultivariateNormal, kl_divergence

from dgm.likelihood import (
    exact_log_likelihood,
    latent_grid,
    posterior_kl,
    true_posterior,
)
from dgm.quadrature import quadrature_elbo
from dgm.vae import VAE2d

from ppca import CASES, ppca_marginal, ppca_posterior, ppca_vae


@pytest.mark.parametrize("case", CASES)
def test_log_likelihood_of_probabilistic_pca(case):
    W, log_s = CASES[case]
    b = torch.tensor([2.0, 3.0])
    model = ppca_vae(W, b, log_s)
    p = ppca_marginal(W, b, log_s)
    torch.manual_seed(1)
    x = p.sample((100,)).float()
    x = torch.cat([x, p.mean[None].float() + 4 * p.stddev[None].float()])  # and a 4-sigma outlier
    ours = exact_log_likelihood(model, x)
    assert ours.dtype == torch.float64 and ours.shape == (101,)
    np.testing.assert_allclose(ours.numpy(), p.log_prob(x.double()).numpy(), atol=1e-3, rtol=0)


def test_far_outlier_widens_the_grid():
    # The posterior of this point sits near z = (7, 0): outside the default grid [-6, 6]^2.
    W, log_s, b = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([-1.0, -1.0]), torch.zeros(2)
    model = ppca_vae(W, b, log_s)
    x = torch.tensor([[8.0, 0.0]])
    ours = exact_log_likelihood(model, x)
    torch.testing.assert_close(ours, ppca_marginal(W, b, log_s).log_prob(x.double()), atol=1e-3, rtol=0)


def test_nonlinear_learned_variance_decoder_against_simpson():
    # Reference: Simpson's rule (scipy) on a much finer grid, with the decoder re-implemented in numpy.
    torch.manual_seed(3)
    model = VAE2d(2, 2, [16], [32, 32])  # random ReLU decoder with a learned (z-dependent) variance
    with torch.no_grad():
        model.decoder.net[-1].bias[2:] -= 0.5
    x = torch.tensor([[0.3, -0.2], [1.0, 0.5], [-2.0, 1.5]])
    layers = [
        (m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
        for m in model.decoder.net
        if isinstance(m, torch.nn.Linear)
    ]
    axis = np.linspace(-7, 7, 1401)  # step 0.01
    z = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)

    def decoder(h):
        for i, (w, b) in enumerate(layers):
            h = h @ w.T + b
            h = np.maximum(h, 0) if i < len(layers) - 1 else h
        return h

    out = np.concatenate([decoder(zc) for zc in np.array_split(z, 20)])
    mu, log_std = out[:, :2], out[:, 2:]
    ours = exact_log_likelihood(model, x).numpy()
    for i, xi in enumerate(x.double().numpy()):
        log_f = (-0.5 * ((xi - mu) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(1)
        log_f += -0.5 * (z**2).sum(1) - np.log(2 * np.pi)
        peak = log_f.max()
        f = np.exp(log_f - peak).reshape(axis.size, axis.size)
        ref = np.log(integrate.simpson(integrate.simpson(f, x=axis, axis=1), x=axis)) + peak
        assert abs(ours[i] - ref) < 1e-3, (i, ours[i], ref)


def test_true_posterior_matches_ppca_posterior():
    W, log_s = CASES["generic"]
    b = torch.tensor([2.0, 3.0])
    model = ppca_vae(W, b, log_s)
    x = torch.tensor([[2.0, 3.0], [5.0, 1.0], [-1.0, 4.0]])
    post = true_posterior(model, x, extent=5.0, step=0.05)
    n = post.axis.numel()
    assert post.log_density.shape == (3, n, n)
    z = torch.stack(torch.meshgrid(post.axis, post.axis, indexing="ij"), dim=-1)  # (n, n, 2)
    ref = ppca_posterior(W, b, log_s, x)
    for k in range(3):
        ref_log = MultivariateNormal(ref.mean[k], ref.covariance_matrix[k]).log_prob(z)
        mask = ref_log > -20  # where the density is not negligible
        np.testing.assert_allclose(post.log_density[k][mask].numpy(), ref_log[mask].numpy(), atol=1e-4)
    np.testing.assert_allclose(post.log_density.exp().sum(dim=(1, 2)).numpy() * post.step**2, 1.0, atol=1e-10)


def test_posterior_kl_against_closed_form():
    W, log_s = CASES["generic"]
    b = torch.tensor([2.0, 3.0])
    model = ppca_vae(W, b, log_s)
    x = ppca_marginal(W, b, log_s).sample((50,)).float()
    with torch.no_grad():
        mu_z, log_std_z = model.encode(x)
    q = MultivariateNormal(mu_z.double(), torch.diag_embed(torch.exp(2 * log_std_z.double())))
    ref = kl_divergence(q, ppca_posterior(W, b, log_s, x))
    np.testing.assert_allclose(posterior_kl(model, x).numpy(), ref.numpy(), atol=2e-3)


def test_grid_is_symmetric_and_refinable():
    g = latent_grid(6.0, 0.1)
    assert g.axis.numel() == 121 and g.step == pytest.approx(0.1)
    assert g.axis[0] == -6.0 and g.axis[-1] == 6.0 and g.points.shape == (121 * 121, 2)
    g2 = latent_grid(6.0, g.step / 2)
    torch.testing.assert_close(g2.axis[::2], g.axis)  # every other point of the finer grid
    with pytest.raises(ValueError, match="step"):
        latent_grid(1.0, 2.0)


def test_model_mode_is_restored():
    model = VAE2d(2, 2, [8], [8]).train()
    exact_log_likelihood(model, torch.zeros(2, 2))
    quadrature_elbo(model, torch.zeros(2, 2))
    assert model.training


def test_bad_inputs_are_refused():
    model = VAE2d(2, 2, [8], [8])
    with pytest.raises(ValueError, match="2d latent"):
        exact_log_likelihood(VAE2d(2, 3, [8], [8]), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        exact_log_likelihood(model, torch.zeros(2))
    with pytest.raises(ValueError, match="non-empty"):
        exact_log_likelihood(model, torch.zeros(0, 2))
    with pytest.raises(ValueError, match="NaN"):
        exact_log_likelihood(model, torch.tensor([[float("nan"), 0.0]]))
    with pytest.raises(ValueError, match="dimensions"):
        exact_log_likelihood(model, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="meta"):
        exact_log_likelihood(model, torch.zeros(2, 2, device="meta"))
    with pytest.raises(TypeError):
        exact_log_likelihood(model, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="too many"):
        quadrature_elbo(VAE2d(2, 5, [8], [8]), torch.zeros(2, 2))


def test_unreachable_accuracy_is_an_error_not_a_wrong_answer():
    W, log_s = CASES["narrow posterior"]
    model = ppca_vae(W, torch.zeros(2), log_s)
    with pytest.raises(ValueError, match="did not converge"):
        exact_log_likelihood(model, torch.zeros(3, 2), max_refinements=0)


def test_bad_arguments_and_models_are_clear_errors():
    from dgm.vae import ConvVAE, VAE2d

    model = VAE2d(2, 2, [8], [8])
    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match="max_refinements must be an integer >= 0"):
        exact_log_likelihood(model, x, max_refinements=-1)
    with pytest.raises(ValueError, match="step < extent"):
        exact_log_likelihood(model, x, step=0.0)
    with pytest.raises(TypeError, match="ConvVAE is not a VAE on vectors"):
        exact_log_likelihood(ConvVAE((3, 32, 32), 2, channels=(4, 4, 4, 4)), x)
    # float64 input gives the float32 model's answer, not a raw dtype error.
    assert torch.allclose(exact_log_likelihood(model, x.double()), exact_log_likelihood(model, x))


def test_models_take_float64_and_integer_batches():
    from dgm.vae import ConvVAE, VAE2d

    torch.manual_seed(0)
    model = VAE2d(2, 2, [8], [8])
    x = torch.randn(4, 2)
    assert torch.allclose(model.encode(x.double())[0], model.encode(x)[0])
    assert set(model.loss(x.double())) == {"elbo_loss", "recon_loss", "kl_loss"}
    conv = ConvVAE((3, 32, 32), 2, channels=(4, 4, 4, 4))
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    assert torch.isfinite(conv.loss(images)["elbo_loss"])
