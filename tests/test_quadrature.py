"""dgm.quadrature: the ELBO without sampling noise, against closed forms and Monte Carlo."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

from dgm.likelihood import (
    exact_log_likelihood,
)
from dgm.quadrature import quadrature_elbo
from dgm.vae import VAE2d

from ppca import CASES, ppca_marginal, ppca_vae


def test_quadrature_elbo_closed_form_for_linear_decoder():
    # With p(x | z) = N(W z + b, D) and q = N(m, diag(v)):
    # E_q log p(x | z) = log N(x | W m + b, D) - 1/2 sum_d (W diag(v) W^T)_dd / D_d   (exact).
    W, log_s = CASES["generic"]
    b = torch.tensor([2.0, 3.0])
    model = ppca_vae(W, b, log_s)
    x = ppca_marginal(W, b, log_s).sample((40,)).float()
    with torch.no_grad():
        m, ls = (t.double() for t in model.encode(x))
    Wd, D = W.double(), torch.exp(2 * log_s.double())
    mean_term = Normal(m @ Wd.T + b.double(), D.sqrt()).log_prob(x.double()).sum(dim=1)
    trace_term = 0.5 * ((Wd**2)[None] * torch.exp(2 * ls)[:, None, :]).sum(dim=2) / D
    kl = kl_divergence(Normal(m, ls.exp()), Normal(0.0, 1.0)).sum(dim=1)
    ref = mean_term - trace_term.sum(dim=1) - kl
    np.testing.assert_allclose(quadrature_elbo(model, x, n_nodes=8).numpy(), ref.numpy(), atol=1e-8)
    ll = exact_log_likelihood(model, x)
    assert (ll >= quadrature_elbo(model, x) - 1e-6).all()  # log p(x) >= ELBO


def test_quadrature_elbo_against_monte_carlo_for_a_relu_decoder():
    torch.manual_seed(4)
    model = VAE2d(2, 2, [16], [32, 32])
    x = torch.randn(5, 2)
    with torch.no_grad():
        mu_z, log_std_z = model.encode(x)
        S = 100_000
        z = mu_z[:, None] + log_std_z.exp()[:, None] * torch.randn(5, S, 2)
        mu_x, log_std_x = model.decode(z.reshape(-1, 2))
        log_px_z = (
            Normal(mu_x, log_std_x.exp()).log_prob(x.repeat_interleave(S, 0)).sum(1).view(5, S).double()
        )
    kl = kl_divergence(Normal(mu_z, log_std_z.exp()), Normal(0.0, 1.0)).sum(dim=1).double()
    mc, se = log_px_z.mean(dim=1) - kl, log_px_z.std(dim=1) / math.sqrt(S)
    ours = quadrature_elbo(model, x, n_nodes=24)
    assert ((ours - mc).abs() < 4 * se + 2e-3).all(), (ours - mc, se)
