"""The inverse autoregressive flow, against autograd's Jacobian and direct computations."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian
from torch.distributions import Independent, Normal

from dgm.elbo import elbo_terms
from dgm.flows import IAFVAE, MADE
from dgm.iwae import log_importance_weights

SHAPE, D = (3, 8, 8), 4


def _model(n_steps: int = 2, seed: int = 0) -> IAFVAE:
    torch.manual_seed(seed)
    model = IAFVAE(SHAPE, D, channels=(4, 8), n_steps=n_steps, hidden=16).double().eval()
    with torch.no_grad():  # far from the identity, so that the flow does something
        for p in model.flow.parameters():
            p.normal_(0, 0.5)
    return model


def test_made_is_autoregressive():
    torch.manual_seed(0)
    made = MADE(5, 3, 12).double()
    with torch.no_grad():
        for p in made.parameters():
            p.normal_()
    for out in (0, 1):
        seen, seen_h = torch.zeros(5, 5, dtype=torch.float64), torch.zeros(5, 3, dtype=torch.float64)
        for _ in range(20):  # at several points: a ReLU may be off at one
            z, h = torch.randn(5, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
            jac = jacobian(lambda v: made(v, h)[out], z)  # (5, 5): d output_i / d z_j
            assert torch.all(jac.triu() == 0)  # output i sees z_j for j < i only
            seen += jac.abs()
            seen_h += jacobian(lambda c: made(z, c)[out], h).abs()  # (5, 3)
        assert torch.all(seen.tril(-1)[torch.tril_indices(5, 5, -1).unbind()] > 0)  # and every such z_j
        assert torch.all(seen_h > 0)  # every output sees the context
    with pytest.raises(ValueError, match="n_latent >= 2"):
        MADE(1, 3, 4)
    with pytest.raises(ValueError, match="hidden >= n_latent - 1"):
        MADE(6, 3, 4)


@pytest.mark.parametrize("n_steps", [1, 2, 3])
def test_the_density_is_the_change_of_variables_with_autograds_jacobian(n_steps):
    model = _model(n_steps)
    x = torch.rand(1, *SHAPE, dtype=torch.float64) * 2 - 1
    eps = torch.randn(1, D, dtype=torch.float64)
    mu_z, log_std_z = model.encode(x)
    z, log_q = model.sample_posterior(mu_z, log_std_z, eps)
    jac = jacobian(lambda e: model.sample_posterior(mu_z, log_std_z, e[None])[0][0], eps[0])  # dz / d eps
    base = Normal(0.0, 1.0).log_prob(eps).sum()
    expected = base - torch.linalg.slogdet(jac).logabsdet
    torch.testing.assert_close(log_q[0], expected)
    assert not torch.allclose(jac, torch.diag(torch.diagonal(jac)))  # not a diagonal Gaussian


def test_the_elbo_and_the_importance_weights_use_the_flow():
    model = _model()
    x = torch.rand(2, *SHAPE, dtype=torch.float64) * 2 - 1
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        terms = elbo_terms(model, x, generator)
        log_w = log_importance_weights(model, x, 5, chunk_size=2, generator=generator.manual_seed(4))
        generator.manual_seed(3)
        eps = torch.randn((2, D), generator=generator, dtype=torch.float64)
        mu_z, log_std_z = model.encode(x)
        z, log_q = model.sample_posterior(mu_z, log_std_z, eps)
        log_p = Independent(Normal(torch.zeros(D, dtype=torch.float64), 1.0), 1).log_prob(z)
        torch.testing.assert_close(terms.kl, log_q - log_p)
        mu_x, _ = model.decode(z)
        torch.testing.assert_close(terms.recon, -Independent(Normal(mu_x, 1.0), 3).log_prob(x))

        generator.manual_seed(4)
        eps = torch.cat([torch.randn((n, 2, D), generator=generator, dtype=torch.float64) for n in (2, 2, 1)])
        z, log_q = model.sample_posterior(mu_z, log_std_z, eps)  # (5, B, d), (5, B)
        mu_x, _ = model.decode(z.reshape(-1, D))
        log_px_z = Independent(Normal(mu_x.reshape(5, 2, *SHAPE), 1.0), 3).log_prob(x)
        log_p = Independent(Normal(torch.zeros(D, dtype=torch.float64), 1.0), 1).log_prob(z)
        torch.testing.assert_close(log_w, (log_px_z + log_p - log_q).T)
    with pytest.raises(ValueError, match="detach_q"):
        log_importance_weights(model, x, 3, detach_q=True)


def test_the_loss_trains_the_flow():
    model = _model().float().train()
    model.loss(torch.rand(4, *SHAPE) * 2 - 1)["elbo_loss"].backward()
    for name, param in model.flow.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    mu_z, log_std_z, recon = model(torch.rand(2, *SHAPE) * 2 - 1)
    assert mu_z.shape == (2, D) and recon.shape == (2, *SHAPE)
