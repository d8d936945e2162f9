from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dgm.collapse import (
    FreeBitsVAE2d,
    active_directions,
    active_units,
    free_bits_kl,
    get_latent_stats,
    kl_per_dimension,
    kl_per_dimension_to_prior,
    posterior_mean_covariance,
    posterior_means,
)
from dgm.data import generate_2d_data
from dgm.vae import VAE2d


def test_kl_per_dimension_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, log_std = torch.randn(50, 3, generator=g), torch.randn(50, 3, generator=g) * 0.5
    ref = kl_divergence(Normal(mu, log_std.exp()), Normal(0.0, 1.0)).mean(dim=0)
    torch.testing.assert_close(kl_per_dimension(mu, log_std), ref)
    assert kl_per_dimension(torch.zeros(4, 2), torch.zeros(4, 2)).abs().max() == 0  # q = prior


def test_free_bits_clamps_each_dimension_from_below():
    kl = torch.tensor([0.1, 2.0, 0.5])
    assert free_bits_kl(kl, 0.5).item() == pytest.approx(0.5 + 2.0 + 0.5)  # by hand
    assert free_bits_kl(kl, 0.0).item() == pytest.approx(2.6)
    with pytest.raises(ValueError, match=">= 0"):
        free_bits_kl(kl, -1.0)
    with pytest.raises(ValueError, match=r"\(d,\)"):
        free_bits_kl(kl[None], 0.5)
    with pytest.raises(ValueError, match=r"\(B, d\)"):
        kl_per_dimension(torch.zeros(3, 2), torch.zeros(3))


def _losses(model, x, seed=7):
    torch.manual_seed(seed)  # the same reparameterisation noise for every call
    return model.loss(x)


def test_free_bits_loss_is_the_elbo_when_lambda_is_zero():
    torch.manual_seed(0)
    model = FreeBitsVAE2d(2, 2, [8], [8], free_bits=0.0)
    out = _losses(model, torch.randn(16, 2))
    torch.testing.assert_close(out["free_bits_loss"], out["elbo_loss"])
    torch.testing.assert_close(out["elbo_loss"], out["recon_loss"] + out["kl_loss"])


def test_below_the_budget_the_kl_term_has_no_gradient():
    torch.manual_seed(0)
    model = FreeBitsVAE2d(2, 2, [8], [8], free_bits=100.0)  # every dimension far below the budget
    x = torch.randn(16, 2)
    grads = []
    for key in ("free_bits_loss", "recon_loss"):
        model.zero_grad()
        _losses(model, x)[key].backward()
        grads.append([p.grad.clone() for p in model.encoder.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match=">= 0"):
        FreeBitsVAE2d(2, 2, [8], [8], free_bits=-0.1)


def test_diagonal_fit_penalty_against_a_fitted_diagonal_gaussian():
    from torch.distributions import MultivariateNormal

    from dgm.collapse import diagonal_fit_penalty

    cov = torch.tensor([[5.0, 4.0], [4.0, 5.0]], dtype=torch.float64)
    assert diagonal_fit_penalty(cov) == pytest.approx(0.5 * torch.log(torch.tensor(25.0 / 9.0)).item())
    # Independent check: sample, fit the best diagonal Gaussian, compare average log-likelihoods.
    p = MultivariateNormal(torch.zeros(2, dtype=torch.float64), cov)
    x = p.sample(torch.Size([400_000]))
    diag = MultivariateNormal(x.mean(0), torch.diag(x.var(0)))
    assert (p.log_prob(x) - diag.log_prob(x)).mean().item() == pytest.approx(
        diagonal_fit_penalty(cov), abs=0.01
    )
    assert diagonal_fit_penalty(torch.diag(torch.tensor([9.0, 1.0]))) == 0.0
    with pytest.raises(ValueError, match="positive definite"):
        diagonal_fit_penalty([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="square"):
        diagonal_fit_penalty([1.0, 2.0])


def test_get_latent_stats_are_the_encoder_outputs():
    _, test = generate_2d_data(2000, "univariate")
    torch.manual_seed(0)
    model = VAE2d(2, 2, [8], [8])
    mu_z, std_z = get_latent_stats(model, test, batch_size=100, generator=torch.Generator().manual_seed(0))
    assert mu_z.shape == std_z.shape == (100, 2) and (std_z > 0).all()
    idx = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:100]
    with torch.no_grad():
        ref_mu, ref_log_std = model.encode(torch.as_tensor(test)[idx])
    np.testing.assert_allclose(mu_z, ref_mu.numpy())
    np.testing.assert_allclose(std_z, ref_log_std.exp().numpy(), rtol=1e-6)
    assert get_latent_stats(model, test)[0].shape == (600, 2)  # batch larger than the set: all of it
    with pytest.raises(ValueError, match="non-empty"):
        get_latent_stats(model, test[:0])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            get_latent_stats(model, test, use_cuda=True)


def test_the_free_bits_objective_is_a_lower_bound_on_the_elbo():
    # the chapter's exercise: sum_j max(kappa, KL_j) >= sum_j KL_j, equal when every KL_j >= kappa
    torch.manual_seed(0)
    x = torch.randn(64, 2) * torch.tensor([3.0, 1.0])
    for kappa in (0.0, 0.1, 5.0):
        model = FreeBitsVAE2d(2, 2, [8], [8], free_bits=kappa)
        torch.manual_seed(1)
        losses = model.loss(x)
        assert losses["free_bits_loss"] >= losses["elbo_loss"] - 1e-6
        kl_dims = losses["kl_loss"]  # the sum over dimensions of the batch's average KL
        if kappa == 0.0:
            torch.testing.assert_close(losses["free_bits_loss"], losses["elbo_loss"])
        if kappa == 5.0:  # every dimension below the budget: the KL part is the constant 2 kappa
            assert kl_dims < 2 * kappa
            torch.testing.assert_close(losses["free_bits_loss"], losses["recon_loss"] + 2 * kappa)


def _images(n=6, seed=0):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_free_bits_on_images_floors_each_dimensions_average_kl():
    from dgm.collapse import FreeBitsConvVAE

    torch.manual_seed(0)
    model = FreeBitsConvVAE((3, 8, 8), 5, channels=(4, 8), free_bits=0.3)
    x = _images()
    torch.manual_seed(1)
    out = model.loss(x)
    torch.manual_seed(1)  # the same noise, by hand: recon + sum_j max(0.3, mean_x KL_j)
    mu_z, log_std_z = model.encode(x)
    q = Normal(mu_z, log_std_z.exp())
    kl_j = kl_divergence(q, Normal(0.0, 1.0)).mean(dim=0)
    expected = out["recon_loss"] + torch.clamp(kl_j, min=0.3).sum()
    torch.testing.assert_close(out["free_bits_loss"], expected)
    torch.testing.assert_close(out["kl_loss"], kl_j.sum())
    with pytest.raises(ValueError, match="free_bits"):
        FreeBitsConvVAE((3, 8, 8), 5, free_bits=-1)


def test_annealing_raises_the_kl_weight_linearly_over_training_steps_only():
    from dgm.collapse import AnnealedConvVAE
    from dgm.training import train_model

    torch.manual_seed(0)
    model = AnnealedConvVAE((3, 8, 8), 4, beta=2.0, channels=(4, 8), warmup_steps=4)
    x = _images(8)
    batches = [x[:4], x[4:]]
    out = model.loss(x)  # training mode: step 1 counted, beta_0 = 0
    torch.testing.assert_close(out["annealed_loss"], out["recon_loss"])
    torch.testing.assert_close(out["elbo_loss"], out["recon_loss"] + 2.0 * out["kl_loss"])
    assert int(model.steps_done) == 1 and model.current_beta() == 0.5
    train, test = train_model(model, batches, batches, epochs=2, lr=1e-3, loss_key="annealed_loss")
    assert int(model.steps_done) == 5  # 4 training steps; the 3 evaluations did not count
    assert model.current_beta() == 2.0  # capped at beta
    betas = [(a - r) / k for a, r, k in zip(train["annealed_loss"], train["recon_loss"], train["kl_loss"])]
    assert np.allclose(betas, [0.5, 1.0, 1.5, 2.0], atol=1e-4)
    state = model.state_dict()
    assert int(state["steps_done"]) == 5  # saved with the weights
    with pytest.raises(ValueError, match="warmup_steps"):
        AnnealedConvVAE((3, 8, 8), 4, warmup_steps=0)


# --------------------------------------------------------------------------- any model's latent use


class _Encoded(torch.nn.Module):
    """A model whose 'images' are indices: encode(x) returns the stored (mu, log_std) of rows x."""

    def __init__(self, mu, log_std, mixture=None, flow=None):
        super().__init__()
        self.mu, self.log_std, self.mixture, self.flow = mu, log_std, mixture, flow
        if mixture is not None:
            self.prior_mixture = lambda: self.mixture
            self.log_prior = lambda z: z.sum(dim=-1) * 0  # present, as on a PriorVAE; not used here
        if flow is not None:
            self.sample_posterior = flow

    def encode(self, x):
        idx = x[:, 0].long()
        return self.mu[idx], self.log_std[idx]


def _indices(n):
    return torch.arange(n, dtype=torch.float32)[:, None].expand(n, 2)


def test_kl_to_the_prior_marginal_against_quadrature():
    from scipy.integrate import quad
    from scipy.stats import norm

    g = torch.Generator().manual_seed(0)
    mu, log_std = torch.randn(6, 2, generator=g), 0.3 * torch.randn(6, 2, generator=g) - 0.5
    means, log_stds = torch.randn(3, 2, generator=g) * 2, 0.2 * torch.randn(3, 2, generator=g)
    weights = torch.tensor([0.5, 0.3, 0.2])
    model = _Encoded(mu, log_std, (means, log_stds, weights.log()))
    x = _indices(6)
    expected = np.zeros(2)
    w, ms, ss = weights.numpy(), means.numpy(), log_stds.exp().numpy()
    for j in range(2):
        for i in range(6):
            m, s = float(mu[i, j]), float(log_std[i, j].exp())

            def f(z, m=m, s=s, j=j):
                log_p = np.log(np.sum(w * norm.pdf(z, ms[:, j], ss[:, j])))
                return norm.pdf(z, m, s) * (norm.logpdf(z, m, s) - log_p)

            expected[j] += quad(f, m - 12 * s, m + 12 * s, limit=200)[0] / 6
    got = kl_per_dimension_to_prior(model, x, n_samples=20_000, batch_size=4)
    np.testing.assert_allclose(got.numpy(), expected, rtol=0.03, atol=0.01)
    # with the standard prior: the closed form of torch.distributions, batch by batch
    plain = _Encoded(mu, log_std)
    ref = kl_divergence(Normal(mu, log_std.exp()), Normal(0.0, 1.0)).mean(dim=0).double()
    torch.testing.assert_close(kl_per_dimension_to_prior(plain, x, batch_size=4), ref)


def test_kl_to_the_prior_marginal_refuses_what_it_cannot_compute():
    mu = torch.zeros(3, 2)
    flow = _Encoded(mu, mu, flow=lambda m, s, eps: (m + eps, eps.sum(-1)))
    with pytest.raises(ValueError, match="flow's posterior marginals"):
        kl_per_dimension_to_prior(flow, _indices(3))
    unknown = _Encoded(mu, mu)
    unknown.log_prior = lambda z: z.sum(dim=-1)
    with pytest.raises(ValueError, match="prior_mixture"):
        kl_per_dimension_to_prior(unknown, _indices(3))


def test_a_flows_posterior_mean_variance_has_its_sampling_noise_removed():
    # q(z | x): z = m_x + eps + (eps^2 - 1) / 2, of mean m_x and variance 1 + 1/2 in each dimension,
    # with Cov_x(m_x) = diag(1, 0.05, 0) by construction; 8 draws per x.
    g = torch.Generator().manual_seed(1)
    n = 4000
    m = torch.randn(n, 3, generator=g) * torch.tensor([1.0, 0.05**0.5, 0.0])
    model = _Encoded(m, torch.zeros(n, 3), flow=lambda mu, s, eps: (mu + eps + (eps**2 - 1) / 2, eps.sum(-1)))
    x = _indices(n)
    cov = posterior_mean_covariance(model, x, n_samples=8, batch_size=1000)
    exact = torch.cov(m.double().T)
    torch.testing.assert_close(
        cov, exact, atol=0.02, rtol=0
    )  # without the correction: + 1.5 / 8 on the diagonal
    means, error = posterior_means(model, x, n_samples=8, batch_size=1000)
    torch.testing.assert_close(
        torch.diagonal(error), torch.full((3,), 1.5 / 8, dtype=torch.float64), atol=0.01, rtol=0
    )
    count, var = active_units(model, x, n_samples=8)
    assert count == 2 and var[2].abs() < 0.01
    assert active_directions(model, x, n_samples=8) == 2
    gaussian = _Encoded(m, torch.zeros(n, 3))  # no flow: the encoder's mean, exact
    assert torch.equal(posterior_means(gaussian, x)[0], m.double())
    assert active_units(gaussian, x)[0] == 2
    with pytest.raises(ValueError, match="n_samples >= 2"):
        posterior_means(model, x, n_samples=1)
    with pytest.raises(ValueError, match="at least two"):
        posterior_mean_covariance(model, x[:1])
