"""Learned priors, against torch.distributions and direct computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from dgm.elbo import elbo_terms
from dgm.gaussians import get_normal_KL
from dgm.iwae import log_importance_weights
from dgm.priors import MixturePrior, PriorVAE, VampPrior, mixture_log_prob

SHAPE, D = (3, 8, 8), 3


def _reference_mixture(means, log_stds, logits) -> MixtureSameFamily:
    return MixtureSameFamily(Categorical(logits=logits), Independent(Normal(means, log_stds.exp()), 1))


def _vae(kind: str, n_components: int = 4, seed: int = 0) -> PriorVAE:
    torch.manual_seed(seed)
    model = PriorVAE(SHAPE, D, channels=(4, 8), kind=kind, n_components=n_components).double().eval()
    with torch.no_grad():  # spread the components, so that the mixture is not one Gaussian
        if kind == "mixture":
            model.learned_prior.means.mul_(2)
            model.learned_prior.log_stds.uniform_(-0.7, 0.3)
            model.learned_prior.logits.normal_()
    return model


def test_the_mixture_density_is_torch_distributions():
    torch.manual_seed(0)
    prior = MixturePrior(D, 5).double()
    with torch.no_grad():
        prior.log_stds.normal_(0, 0.5)
        prior.logits.normal_()
    z = 3 * torch.randn(7, 11, D, dtype=torch.float64)
    expected = _reference_mixture(prior.means, prior.log_stds, prior.logits).log_prob(z)
    torch.testing.assert_close(prior.log_prob(z), expected)
    with pytest.raises(ValueError, match="z has 2 dimensions"):
        prior.log_prob(torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"need means and log_stds \(C, d\)"):
        mixture_log_prob(z, prior.means, prior.log_stds[:2], prior.logits)


def test_the_vamp_prior_is_the_average_posterior_at_its_pseudo_inputs():
    model = _vae("vamp", n_components=6)
    prior: VampPrior = model.learned_prior
    z = torch.randn(9, D, dtype=torch.float64)
    means, log_stds = model.encoder(prior.pseudo_inputs)  # q(z | u_c) for each pseudo-input
    direct = torch.stack(
        [Independent(Normal(means[c], log_stds[c].exp()), 1).log_prob(z) for c in range(6)]
    )  # (C, 9)
    expected = torch.logsumexp(direct, dim=0) - math.log(6)
    torch.testing.assert_close(model.log_prior(z), expected)
    with pytest.raises(ValueError, match="needs the encoder"):
        prior.log_prob(z)


@pytest.mark.parametrize("kind", ["mixture", "vamp"])
def test_the_sampled_kl_term_is_unbiased(kind):
    # E[kl_loss] over the encoder's noise against an independent Monte Carlo estimate of
    # KL(q(z | x) || p(z)) with torch.distributions' densities and many more samples
    model = _vae(kind)
    torch.manual_seed(1)
    x = torch.rand(2, *SHAPE, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        mu_z, log_std_z = model.encode(x)
        if kind == "mixture":
            p = _reference_mixture(
                model.learned_prior.means, model.learned_prior.log_stds, model.learned_prior.logits
            )
        else:
            m, s = model.encoder(model.learned_prior.pseudo_inputs)
            p = _reference_mixture(m, s, torch.zeros(len(m), dtype=torch.float64))
        q = Independent(Normal(mu_z, log_std_z.exp()), 1)
        z = q.sample((200_000,))  # (S, B, d)
        kl_ref = (q.log_prob(z) - p.log_prob(z)).mean(dim=0)  # (B,)
        ref_se = (q.log_prob(z) - p.log_prob(z)).std(dim=0) / math.sqrt(len(z))
        draws = torch.stack([elbo_terms(model, x).kl for _ in range(4000)])  # (R, B): the model's own term
    se = (draws.std(dim=0) ** 2 / len(draws) + ref_se**2).sqrt()
    z_scores = (draws.mean(dim=0) - kl_ref) / se
    assert z_scores.abs().max() < 4.5, (draws.mean(dim=0), kl_ref, se)


def test_one_standard_normal_component_gives_the_closed_form_kl_in_expectation():
    model = _vae("mixture", n_components=1)
    with torch.no_grad():
        model.learned_prior.means.zero_()
        model.learned_prior.log_stds.zero_()
    torch.manual_seed(2)
    x = torch.rand(3, *SHAPE, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        closed = get_normal_KL(*model.encode(x)).sum(dim=1)  # the standard VAE's term
        draws = torch.stack([elbo_terms(model, x).kl for _ in range(4000)])
    z_scores = (draws.mean(dim=0) - closed) / (draws.std(dim=0) / math.sqrt(len(draws)))
    assert z_scores.abs().max() < 4.5


@pytest.mark.parametrize("kind", ["mixture", "vamp"])
def test_importance_weights_use_the_learned_prior(kind):
    model = _vae(kind)
    x = torch.rand(2, *SHAPE, dtype=torch.float64) * 2 - 1
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        log_w = log_importance_weights(model, x, 7, chunk_size=3, generator=generator)  # (B, 7)
        mu_z, log_std_z = model.encode(x)
        generator.manual_seed(5)
        eps = torch.cat(
            [torch.randn((n, 2, D), generator=generator, dtype=torch.float64) for n in (3, 3, 1)]
        )  # (7, B, d): the same noise, in the same chunks
        z = mu_z + log_std_z.exp() * eps
        mu_x, _ = model.decode(z.reshape(-1, D))
        log_px_z = Independent(Normal(mu_x.reshape(7, 2, *SHAPE), 1.0), 3).log_prob(x)
        log_q = Independent(Normal(mu_z, log_std_z.exp()), 1).log_prob(z)
        expected = (log_px_z + model.log_prior(z) - log_q).T
    torch.testing.assert_close(log_w, expected)


@pytest.mark.parametrize("kind", ["mixture", "vamp"])
def test_the_loss_trains_the_prior_and_samples_come_from_it(kind):
    model = _vae(kind).float().train()
    x = torch.rand(4, *SHAPE) * 2 - 1
    model.loss(x)["elbo_loss"].backward()
    for name, param in model.learned_prior.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert model.sample(5).shape == (5, *SHAPE)
    # the draws have the mixture's mean and covariance (sum_c pi_c (S_c + m_c m_c^T) - m m^T)
    prior = model.learned_prior
    with torch.no_grad():
        if kind == "mixture":
            means, stds, weights = prior.means, prior.log_stds.exp(), torch.softmax(prior.logits, dim=0)
        else:
            means, log_stds = model.encoder(prior.pseudo_inputs)
            stds, weights = log_stds.exp(), torch.full((len(means),), 1 / len(means))
    mean = (weights[:, None] * means).sum(dim=0)
    second = (
        weights[:, None, None] * (torch.diag_embed(stds**2) + means[:, :, None] * means[:, None, :])
    ).sum(0)
    cov = second - mean[:, None] * mean[None, :]
    torch.manual_seed(3)
    z = model.sample_prior(200_000).double()
    torch.testing.assert_close(z.mean(dim=0), mean.double(), atol=0.03, rtol=0)
    torch.testing.assert_close(torch.cov(z.T), cov.double(), atol=0.05, rtol=0.03)
    torch.manual_seed(4)  # prior(n) stays the N(0, I) noise of the reparameterisation
    eps = model.prior(100_000)
    torch.testing.assert_close(eps.std(dim=0), torch.ones(D), atol=0.02, rtol=0)
    with pytest.raises(ValueError, match="unknown prior 'flow'"):
        PriorVAE(SHAPE, D, kind="flow")


def test_what_needs_the_gaussian_model_refuses_a_learned_prior_clearly():
    from dgm.calibration import calibrate

    model = _vae("vamp").float()
    x = torch.rand(3, *SHAPE) * 2 - 1
    with pytest.raises(ValueError, match="detach_q"):  # DReG would be biased: log p(z) uses the encoder
        log_importance_weights(model, x, 4, detach_q=True)
    with pytest.raises(TypeError, match="learned prior or a flow"):
        calibrate(model, x)
    model.log_prior = lambda z: torch.zeros(*z.shape[:-1], 1)  # a wrong shape: would broadcast silently
    with pytest.raises(ValueError, match="log_prior must return shape"):
        elbo_terms(model, x)
