"""The importance-weighted bound L_K of Burda, Grosse & Salakhutdinov (2016).

For a VAE with prior p(z) (N(0, I), or the model's ``log_prior(z)`` when it has one), Gaussian
decoder p(x | z) and encoder q(z | x) (Gaussian, or the model's ``sample_posterior`` when it has one),

    L_K(x) = E_{z_1..z_K ~ q(z | x)} log (1/K) sum_k p(x, z_k) / q(z_k | x),

with L_1 the ELBO and L_K -> log p(x) as K grows. :func:`iwae_bound` estimates it per example
from one draw of K samples; :func:`repeated_iwae_bound` makes independent draws of it, and
:class:`ModeBounds` summarises L_K against K for one model, with the z-tests of the theorems.
They work for any model with the package's VAE interface:

- ``model.encode(x) -> (mu_z, log_std_z)``, each (B, n_latent);
- ``model.decode(z) -> (mu_x, log_std_x)``, ``mu_x`` of shape (N, *x.shape[1:]) for z of shape
  (N, n_latent) and ``log_std_x`` broadcastable to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral

import numpy as np
import torch

from dgm.elbo import log_prior_density, posterior_sample
from dgm.gaussians import get_normal_nll

DEFAULT_CHUNK_SIZE = 256


def positive_integer(name: str, value: object) -> int:
    """``value`` as an int if it is an integer >= 1 (not a bool); else a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def log_importance_weights(
    model: torch.nn.Module,
    x: torch.Tensor,
    k: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    generator: torch.Generator | None = None,
    detach_q: bool = False,
) -> torch.Tensor:
    """log w_k = log p(x, z_k) - log q(z_k | x) for z_k ~ q(z | x): x (B, ...) -> (B, k).

    The decoder sees at most B * chunk_size latent vectors at a time, so memory does not grow
    with k. Gradients flow unless the caller disables them; with ``detach_q`` they reach q's
    parameters only through the samples z_k, not through log q (the doubly reparameterised
    estimator's form, :mod:`dgm.iwae_gradients`).
    """
    k, chunk_size = positive_integer("k", k), positive_integer("chunk_size", chunk_size)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch of shape (B, ...), got {tuple(x.shape)}")
    n_batch, x_shape = x.shape[0], tuple(x.shape[1:])
    mu_z, log_std_z = model.encode(x)
    if mu_z.dim() != 2 or mu_z.shape[0] != n_batch or log_std_z.shape != mu_z.shape:
        raise ValueError(
            f"model.encode must return mu_z, log_std_z of shape (B, n_latent) with B = {n_batch}, "
            f"got {tuple(mu_z.shape)} and {tuple(log_std_z.shape)}"
        )
    n_latent = mu_z.shape[1]
    if detach_q and (hasattr(model, "sample_posterior") or hasattr(model, "log_prior")):
        # DReG's weights w~^2 are right only when nothing but z carries q's parameters into log w:
        # a flow's log q and a VampPrior's log p(z) (its components are the encoder's) do as well
        raise ValueError(
            "detach_q (the doubly reparameterised form) needs a Gaussian q and the N(0, I) prior"
        )
    chunks = []
    for start in range(0, k, chunk_size):
        n = min(chunk_size, k - start)
        eps = torch.randn(
            (n, n_batch, n_latent),
            generator=generator,
            dtype=mu_z.dtype,
            device=generator.device if generator is not None else mu_z.device,
        ).to(mu_z.device)
        z, log_qz = posterior_sample(model, mu_z, log_std_z, eps)  # z_k ~ q(z | x): (n, B, n_latent)
        mu_x, log_std_x = model.decode(z.reshape(n * n_batch, n_latent))
        if tuple(mu_x.shape) != (n * n_batch, *x_shape):
            raise ValueError(
                f"model.decode must return mu_x of shape (N, {', '.join(map(str, x_shape))}) for N = "
                f"{n * n_batch} latent vectors, got {tuple(mu_x.shape)}"
            )
        if log_std_x.dim() == mu_x.dim() and log_std_x.shape[0] == n * n_batch:  # one per latent vector
            log_std_x = log_std_x.reshape(n, n_batch, *log_std_x.shape[1:])
        mu_x = mu_x.reshape(n, n_batch, *x_shape)  # (n, B, ...)
        log_px_z = -get_normal_nll(x[None], mu_x, log_std_x).reshape(n, n_batch, -1).sum(dim=-1)  # (n, B)
        log_pz = log_prior_density(model, z)  # (n, B)
        if log_qz is None:  # q is the encoder's Gaussian
            q_mu, q_log_std = (mu_z.detach(), log_std_z.detach()) if detach_q else (mu_z, log_std_z)
            log_qz = -get_normal_nll(z, q_mu, q_log_std).sum(dim=-1)  # (n, B)
        chunks.append((log_px_z + log_pz - log_qz).T)  # (B, n)
    log_w = torch.cat(chunks, dim=1)  # (B, k)
    if torch.isnan(log_w).any():
        raise ValueError("the log importance weights contain NaN: check the model's outputs for this x")
    return log_w


def iwae_bound(
    model: torch.nn.Module,
    x: torch.Tensor,
    k: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One-draw estimate of L_K per example, ``logsumexp_k log w_k - log K``: x (B, ...) -> (B,).

    Burda et al. (2016), eq. (8); computed with log-sum-exp, so weights of e^-1000 do not underflow.
    """
    log_w = log_importance_weights(model, x, k, chunk_size=chunk_size, generator=generator)
    return torch.logsumexp(log_w, dim=1) - math.log(log_w.shape[1])


def repeated_iwae_bound(
    model: torch.nn.Module,
    x: torch.Tensor,
    k: int,
    repeats: int,
    generator: torch.Generator | None = None,
    max_latent: int = 2**18,
) -> torch.Tensor:
    """``repeats`` independent one-draw estimates of L_K for each example: x (B, D) -> (repeats, B).

    Every estimate is :func:`dgm.iwae.iwae_bound`'s; the examples are repeated and processed in
    groups of at most ``max_latent`` latent vectors per decoder call.
    """
    for name, value in (("k", k), ("repeats", repeats)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if x.dim() != 2:
        raise ValueError(f"x must be a batch of shape (B, D), got {tuple(x.shape)}")
    chunk = min(k, 256)
    rows = max(1, max_latent // chunk)
    xr = x.repeat(repeats, 1)  # (repeats B, D): repeat r holds rows r B ... (r + 1) B - 1
    out = [iwae_bound(model, xb, k, chunk_size=chunk, generator=generator) for xb in xr.split(rows)]
    return torch.cat(out).double().view(repeats, x.shape[0])


def chi_square(
    model: torch.nn.Module,
    x: torch.Tensor,
    log_px: torch.Tensor,
    n_samples: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """chi^2(p(z | x) || q(z | x)) = Var_q[w] / p(x)^2 = E_q[(w / p(x))^2] - 1, by Monte Carlo:
    (B, D) -> (B,).

    ``log_px`` (B,) is the exact log p(x); then w / p(x) = p(z | x) / q(z | x).
    """
    if log_px.shape != x.shape[:1]:
        raise ValueError(f"log_px must have shape (B,) = {tuple(x.shape[:1])}, got {tuple(log_px.shape)}")
    log_w = log_importance_weights(model, x, n_samples, generator=generator).double()  # (B, n_samples)
    log_ratio = log_w - log_px.double()[:, None]
    return torch.exp(torch.logsumexp(2 * log_ratio, dim=1) - math.log(n_samples)) - 1


@dataclass(frozen=True)
class ModeBounds:
    """L_K against K for one trained model, averaged over the test points (nats per point)."""

    mode: str
    ks: tuple[int, ...]
    repeats: tuple[int, ...]  # R_K
    bound: np.ndarray  # (n_K,): average over points and draws of the one-draw estimates of L_K
    se: np.ndarray  # (n_K,): its Monte Carlo standard error
    abs_error: (
        np.ndarray
    )  # (n_K,): average over points of |L_K estimate - log p(x)|, the point's draws averaged
    log_px: float  # exact log p(x)
    elbo: float  # the ELBO by Gauss-Hermite quadrature (32 nodes)
    elbo_quadrature_error: float  # |32-node ELBO - 16-node ELBO|: a bound on the error of the 32-node one
    chi2: float  # chi^2(p(z | x) || q(z | x)), averaged over the points

    @property
    def gap(self) -> np.ndarray:
        """log p(x) - L_K, (n_K,); the theorem says >= 0, non-increasing, -> 0."""
        return self.log_px - self.bound

    @property
    def elbo_gap(self) -> float:
        """log p(x) - ELBO = KL(q(z | x) || p(z | x)) on average."""
        return self.log_px - self.elbo

    @property
    def step_z(self) -> np.ndarray:
        """(L_K' - L_K) / its standard error for consecutive K < K', (n_K - 1,); independent draws."""
        return np.diff(self.bound) / np.sqrt(self.se[1:] ** 2 + self.se[:-1] ** 2)

    @property
    def gap_z(self) -> np.ndarray:
        """(log p(x) - L_K) / standard error, (n_K,)."""
        return self.gap / self.se

    @property
    def predicted_gap(self) -> np.ndarray:
        """chi^2 / (2 K), the second-order approximation of log p(x) - L_K, (n_K,)."""
        return self.chi2 / (2 * np.asarray(self.ks, dtype=float))

    @property
    def rise(self) -> float:
        """L_K at the largest K minus L_1."""
        return float(self.bound[-1] - self.bound[0])

    @property
    def rise_z(self) -> float:
        """The rise over its standard error."""
        return self.rise / math.hypot(self.se[0], self.se[-1])

    def converged_from(self, z_crit: float) -> int | None:
        """The smallest K from which on every gap is within z_crit standard errors of 0
        (None: not even the last)."""
        k = None
        for k_i, z in zip(reversed(self.ks), reversed(self.gap_z)):
            if abs(z) >= z_crit:
                break
            k = k_i
        return k

    def measurable(self, z_crit: float) -> np.ndarray:
        """Which gaps stand more than z_crit standard errors above 0: (n_K,) bool."""
        return self.gap_z > z_crit

    def rate_deviation(self, z_crit: float) -> float:
        """max |gap / (chi^2 / 2K) - 1| over the measurable gaps (NaN if none is)."""
        sel = self.measurable(z_crit)
        return float(np.abs(self.gap[sel] / self.predicted_gap[sel] - 1).max()) if sel.any() else math.nan
