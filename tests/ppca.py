"""Probabilistic PCA (Tipping & Bishop 1999) as a VAE2d: a model whose p(x) and p(z | x) are known in
closed form, the independent answer the likelihood, quadrature and IWAE tests compare with."""

from __future__ import annotations

import math

import torch
from torch.distributions import MultivariateNormal

from dgm.vae import VAE2d


def ppca_vae(W: torch.Tensor, b: torch.Tensor, log_s: torch.Tensor, enc_hidden=(8,)) -> VAE2d:
    """A VAE2d whose decoder is linear with constant variance: p(x | z) = N(W z + b, diag(s^2))."""
    torch.manual_seed(0)
    model = VAE2d(2, 2, list(enc_hidden), [])  # no hidden layer: the decoder is one Linear(2, 4)
    lin = model.decoder.net[0]
    with torch.no_grad():
        lin.weight.zero_()
        lin.bias.zero_()
        lin.weight[:2] = W
        lin.bias[:2] = b
        lin.bias[2:] = log_s
    return model


def ppca_marginal(W, b, log_s) -> MultivariateNormal:
    """p(x) = N(b, W W^T + diag(s^2)) (Tipping & Bishop 1999), in float64."""
    W, b, log_s = W.double(), b.double(), log_s.double()
    return MultivariateNormal(b, W @ W.T + torch.diag(torch.exp(2 * log_s)))


def ppca_posterior(W, b, log_s, x) -> MultivariateNormal:
    """p(z | x) = N(M^-1 W^T D^-1 (x - b), M^-1), M = I + W^T D^-1 W, D = diag(s^2)."""
    W, b, d_inv = W.double(), b.double(), torch.exp(-2 * log_s.double())
    M = torch.eye(2, dtype=torch.float64) + W.T @ (d_inv[:, None] * W)
    cov = torch.linalg.inv(M)
    mean = ((x.double() - b) * d_inv) @ W @ cov.T
    return MultivariateNormal(mean, cov)


CASES = {
    "generic": (torch.tensor([[2.0, 0.5], [-1.0, 1.5]]), torch.tensor([0.0, -0.5])),
    # posterior std about 0.07: the default step 0.1 must be refined
    "narrow posterior": (torch.tensor([[2.1, 2.1], [-2.1, 2.1]]), torch.tensor([-1.6, -1.6])),
    "latent ignored": (torch.zeros(2, 2), torch.tensor([1.0, 0.0])),
    "one active dimension": (torch.tensor([[2.0, 0.0], [2.0, 0.0]]), torch.tensor([-0.5, -0.5])),
}


B_MEAN = torch.tensor([2.0, 3.0])


def linear_vae(W: torch.Tensor, log_s: torch.Tensor, inflate: float | None = None):
    """Probabilistic PCA as a VAE2d with a linear encoder: q(z | x) has the posterior's mean and

    - (``inflate`` None) the posterior's own diagonal standard deviations: q = p(z | x) exactly when
      the posterior covariance is diagonal;
    - (``inflate`` c) one isotropic std, sqrt(c * the largest posterior variance), so that
      p(z | x) / q(z | x) is bounded when c > 1.
    """
    model = ppca_vae(W, B_MEAN, log_s, enc_hidden=())
    d_inv = torch.exp(-2 * log_s.double())
    cov = torch.linalg.inv(torch.eye(2, dtype=torch.float64) + W.double().T @ (d_inv[:, None] * W.double()))
    A = cov @ W.double().T * d_inv  # posterior mean = A (x - b)
    if inflate is None:
        log_std = 0.5 * torch.log(torch.diag(cov))
    else:
        log_std = torch.full((2,), 0.5 * math.log(inflate * torch.linalg.eigvalsh(cov).max().item()))
    enc = model.encoder.net[0]
    with torch.no_grad():
        enc.weight.zero_()
        enc.weight[:2] = A.float()
        enc.bias[:2] = (-A @ B_MEAN.double()).float()
        enc.bias[2:] = log_std.float()
    return model.eval()


W_DIAG, LOG_S_DIAG = torch.tensor([[2.0, 0.0], [0.0, 0.7]]), torch.full((2,), math.log(0.5))
