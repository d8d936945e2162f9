"""iwae_bound on a linear-Gaussian VAE, whose log p(x) is known in closed form, and on VAE2d."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from torch.distributions import MultivariateNormal, Normal

from dgm.iwae import iwae_bound, log_importance_weights
from dgm.vae import VAE2d

D, N_LATENT = 5, 2
Z_CRIT = 4.0  # one-sided z-test; a correct implementation fails one with probability ~3e-5


class LinearGaussianVAE(nn.Module):
    """Probabilistic PCA as a VAE: p(z) = N(0, I), p(x | z) = N(W z + b, diag(s^2)), a linear Gaussian q.

    Then p(x) = N(b, W W^T + diag(s^2)) and p(z | x) is Gaussian, both in closed form
    (Tipping & Bishop 1999). ``decode`` records every latent vector it is given.
    """

    def __init__(self, W, b, log_s, enc_A, enc_c, enc_log_std):
        super().__init__()
        for name, t in dict(W=W, b=b, log_s=log_s, enc_A=enc_A, enc_c=enc_c, enc_log_std=enc_log_std).items():
            self.register_buffer(name, t.double())
        self.seen_z: list[torch.Tensor] = []

    def encode(self, x):
        mu_z = x @ self.enc_A.T + self.enc_c
        return mu_z, self.enc_log_std.expand_as(mu_z)

    def decode(self, z):
        self.seen_z.append(z.detach().clone())
        mu_x = z @ self.W.T + self.b
        return mu_x, self.log_s.expand_as(mu_x)

    def log_px(self, x):
        cov = self.W @ self.W.T + torch.diag(torch.exp(2 * self.log_s))
        return MultivariateNormal(self.b, covariance_matrix=cov).log_prob(x)

    def log_weights_reference(self, x, z):
        """log p(x, z) - log q(z | x) by torch.distributions: x (D,), z (N, d) -> (N,)."""
        mu_z, log_std_z = self.encode(x[None])
        log_px_z = Normal(z @ self.W.T + self.b, self.log_s.exp()).log_prob(x).sum(-1)
        log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_qz = Normal(mu_z, log_std_z.exp()).log_prob(z).sum(-1)
        return log_px_z + log_pz - log_qz

    def sample_x(self, n, generator):
        z = torch.randn(n, self.W.shape[1], generator=generator, dtype=torch.float64)
        eps = torch.randn(n, self.W.shape[0], generator=generator, dtype=torch.float64)
        return z @ self.W.T + self.b + eps * self.log_s.exp()


def posterior(W, b, log_s):
    """p(z | x) = N(A x + c, Sigma): returns A, c, Sigma."""
    s_inv = torch.diag(torch.exp(-2 * log_s))
    sigma = torch.linalg.inv(torch.eye(W.shape[1], dtype=W.dtype) + W.T @ s_inv @ W)
    A = sigma @ W.T @ s_inv
    return A, -A @ b, sigma


def exact_posterior_model(seed=0):
    """Orthogonal columns of W and isotropic noise: the posterior is diagonal and q equals it."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(D, N_LATENT, generator=g, dtype=torch.float64))
    W = Q * torch.tensor([2.0, 0.7], dtype=torch.float64)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    log_s = torch.full((D,), math.log(0.5), dtype=torch.float64)
    A, c, sigma = posterior(W, b, log_s)
    assert torch.allclose(sigma, torch.diag(torch.diag(sigma)))
    return LinearGaussianVAE(W, b, log_s, A, c, 0.5 * torch.log(torch.diag(sigma)))


def mean_field_model(seed=0, inflate=1.5):
    """A general W: the posterior has full covariance; q has its mean and a wider isotropic std,
    so that p(x, z) / q(z | x) is bounded (q's covariance dominates the posterior's)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(D, N_LATENT, generator=g, dtype=torch.float64)
    b = torch.randn(D, generator=g, dtype=torch.float64)
    log_s = 0.3 * torch.randn(D, generator=g, dtype=torch.float64) - 0.5
    A, c, sigma = posterior(W, b, log_s)
    std = math.sqrt(inflate * torch.linalg.eigvalsh(sigma).max().item())
    return LinearGaussianVAE(W, b, log_s, A, c, torch.full((N_LATENT,), math.log(std), dtype=torch.float64))


def test_k1_is_the_elbo_on_the_same_samples():
    model = mean_field_model()
    x = model.sample_x(1, torch.Generator().manual_seed(1))
    l1 = iwae_bound(model, x, k=1)
    (z,) = model.seen_z
    torch.testing.assert_close(l1, model.log_weights_reference(x[0], z))


def test_chunked_log_sum_exp_matches_a_direct_computation():
    model = mean_field_model()
    x = model.sample_x(1, torch.Generator().manual_seed(2))
    lk = iwae_bound(model, x, k=10, chunk_size=3)  # chunks of 3, 3, 3, 1
    assert [z.shape[0] for z in model.seen_z] == [3, 3, 3, 1]
    log_w = model.log_weights_reference(x[0], torch.cat(model.seen_z))
    ref = torch.log(torch.exp(log_w).mean())
    torch.testing.assert_close(lk, ref[None])


def test_exact_posterior_gives_log_px_for_every_k():
    # q = p(z | x) makes every weight equal to p(x): L_K = log p(x) exactly, whatever the draw.
    model = exact_posterior_model()
    x = model.sample_x(7, torch.Generator().manual_seed(3))
    for k, chunk in [(1, 256), (7, 3), (5000, 256)]:
        torch.testing.assert_close(iwae_bound(model, x, k, chunk_size=chunk), model.log_px(x))


def test_log_sum_exp_does_not_underflow():
    model = exact_posterior_model()
    x = model.sample_x(3, torch.Generator().manual_seed(4)) + 200.0  # log p(x) ~ -1e5
    lk = iwae_bound(model, x, k=20)
    assert torch.isfinite(lk).all()
    torch.testing.assert_close(lk, model.log_px(x))


def test_decoder_batches_stay_within_the_chunk():
    model = mean_field_model()
    x = model.sample_x(4, torch.Generator().manual_seed(5))
    with torch.no_grad():
        iwae_bound(model, x, k=5000, chunk_size=500)
    assert max(z.shape[0] for z in model.seen_z) == 4 * 500
    assert sum(z.shape[0] for z in model.seen_z) == 4 * 5000


def test_bound_increases_with_k_and_approaches_log_px():
    model = mean_field_model()
    g = torch.Generator().manual_seed(6)
    x = model.sample_x(200, g)
    log_px = model.log_px(x)
    with torch.no_grad():
        bounds = {k: iwae_bound(model, x, k, generator=g) for k in (1, 10, 100, 1000, 5000)}
    ks = list(bounds)
    for k_small, k_big in zip(ks[:-1], ks[1:]):
        diff = bounds[k_big] - bounds[k_small]
        se = diff.std() / math.sqrt(len(diff))
        assert diff.mean() > -Z_CRIT * se, (k_small, k_big, diff.mean(), se)
    diff = bounds[1000] - bounds[1]
    assert diff.mean() > Z_CRIT * diff.std() / math.sqrt(len(diff))  # it really increases
    gap = log_px - bounds[1]
    assert gap.mean() > 0.05  # the ELBO is visibly below log p(x) here: the test is not vacuous
    for k in ks:  # E L_K <= log p(x), within MC error
        gap = log_px - bounds[k]
        assert gap.mean() > -Z_CRIT * gap.std() / math.sqrt(len(gap)), k
    assert (log_px - bounds[5000]).mean().abs() < 0.005


def test_works_with_vae2d_and_l1_is_the_models_elbo():
    torch.manual_seed(0)
    model = VAE2d(2, 2, [16], [16])
    x = torch.randn(500, 2)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        l1 = torch.cat([iwae_bound(model, x, 1, generator=g) for _ in range(10)])
        elbo = torch.stack([-model.loss(x)["elbo_loss"] for _ in range(50)])  # analytic KL, sampled recon
        l5 = iwae_bound(model, x, 5, generator=g)
    assert l5.shape == (500,) and torch.isfinite(l5).all()
    se = math.sqrt(l1.var() / len(l1) + elbo.var() / len(elbo))
    assert abs(l1.mean() - elbo.mean()) < Z_CRIT * se, (l1.mean(), elbo.mean(), se)


class BrokenDecoder(LinearGaussianVAE):
    def decode(self, z):
        mu_x, log_std_x = super().decode(z)
        return mu_x[:, :-1], log_std_x[:, :-1]


def test_bad_input_is_a_clear_error():
    model = mean_field_model()
    x = model.sample_x(3, torch.Generator().manual_seed(8))
    for bad_k in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            iwae_bound(model, x, bad_k)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        iwae_bound(model, x, 5, chunk_size=0)
    with pytest.raises(ValueError, match=r"shape \(B, \.\.\.\)"):
        iwae_bound(model, x[0], 5)
    with pytest.raises(ValueError, match=r"shape \(B, \.\.\.\)"):
        iwae_bound(model, x[:0], 5)
    with pytest.raises(TypeError):
        iwae_bound(model, x.numpy(), 5)
    with pytest.raises(ValueError, match="model.decode must return mu_x of shape"):
        iwae_bound(
            BrokenDecoder(model.W, model.b, model.log_s, model.enc_A, model.enc_c, model.enc_log_std), x, 5
        )
    with pytest.raises(ValueError, match="NaN"):
        iwae_bound(model, x * float("nan"), 5)
    with pytest.raises(ValueError):  # VAE2d refuses inputs of the wrong width
        iwae_bound(VAE2d(2, 2, [4], [4]), torch.randn(3, 5), 5)


def test_log_weights_shape():
    model = mean_field_model()
    x = model.sample_x(3, torch.Generator().manual_seed(9))
    assert log_importance_weights(model, x, 11, chunk_size=4).shape == (3, 11)


def test_detaching_q_keeps_the_weights_and_drops_only_the_direct_path():
    from dgm.iwae import log_importance_weights

    torch.manual_seed(0)
    model = VAE2d(2, 2, [8], [8])
    x = torch.randn(4, 2)
    torch.manual_seed(1)
    full = log_importance_weights(model, x, 3)
    torch.manual_seed(1)
    detached = log_importance_weights(model, x, 3, detach_q=True)
    torch.testing.assert_close(full, detached)  # the same values
    g_full = torch.autograd.grad(full.sum(), list(model.encoder.parameters()))
    g_det = torch.autograd.grad(detached.sum(), list(model.encoder.parameters()))
    assert any(
        not torch.allclose(a, b) for a, b in zip(g_full, g_det)
    )  # the direct path through log q is gone
