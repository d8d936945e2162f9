"""Monte Carlo estimators of the gradient of an expectation under a diagonal Gaussian q.

The objective is the ELBO ``L(phi) = E_q[f(z)]`` with ``f(z) = log p(x, z) - log q(z | phi)`` and
``q(z | phi) = N(mu, diag(exp(log_std)^2))``, ``phi = (mu, log_std)``. Three estimators of
``grad_phi L`` (Williams 1992; Kingma & Welling 2014; Mohamed et al. 2020):

- the score-function estimator ``mean_s f(z_s) grad log q(z_s)``;
- the same with a leave-one-out baseline ``b_s`` (a control variate) subtracted from ``f(z_s)``;
- the reparameterisation estimator ``mean_s grad_phi f(mu + exp(log_std) * eps_s)``.

Every estimator takes standard normal noise ``eps`` of shape (R, S, D): R independent estimates,
each averaging S samples in D dimensions, and returns ``(grad_mu, grad_log_std)``, each (R, D).
Passing the same ``eps`` to all of them compares them on common random numbers.
:class:`GaussianTarget` is a model whose true gradient is known in closed form, to test them on;
the chapter's variance experiment is :mod:`dgm.experiments.log_derivative_trick`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from dgm.gaussians import get_normal_KL, get_normal_nll

LogJoint = Callable[[torch.Tensor], torch.Tensor]
Grad = tuple[torch.Tensor, torch.Tensor]


def normal_log_prob(z: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(z | mu, diag(exp(log_std)^2)), summed over the last dimension: (..., D) -> (...)."""
    return -get_normal_nll(z, mu, log_std).sum(dim=-1)


def normal_score(z: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> Grad:
    """grad_phi log q(z | phi) for phi = (mu, log_std): (..., D) -> two (..., D).

    ``d/d mu = (z - mu) / sigma^2`` and ``d/d log_std = (z - mu)^2 / sigma^2 - 1``.
    """
    u = (z - mu) * torch.exp(-log_std)  # (..., D): the standardised sample
    return u * torch.exp(-log_std), u**2 - 1


def _check(mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor, min_samples: int = 1) -> None:
    if mu.dim() != 1 or mu.shape != log_std.shape:
        raise ValueError(
            f"mu and log_std must both have shape (D,), got {tuple(mu.shape)} and {tuple(log_std.shape)}"
        )
    if eps.dim() != 3 or eps.shape[-1] != mu.shape[0]:
        raise ValueError(f"eps must have shape (R, S, D) with D = {mu.shape[0]}, got {tuple(eps.shape)}")
    if eps.shape[0] < 1 or eps.shape[1] < min_samples:
        raise ValueError(
            f"need R >= 1 estimates of S >= {min_samples} samples each, got eps of shape {tuple(eps.shape)}"
        )


def _elbo_integrand(
    log_joint: LogJoint, z: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor
) -> torch.Tensor:
    """f(z) = log p(x, z) - log q(z | phi): (R, S, D) -> (R, S)."""
    log_p = log_joint(z)
    if not isinstance(log_p, torch.Tensor) or log_p.shape != z.shape[:-1]:
        got = tuple(log_p.shape) if isinstance(log_p, torch.Tensor) else type(log_p).__name__
        raise ValueError(f"log_joint must map (R, S, D) to (R, S), got {got} for z of shape {tuple(z.shape)}")
    return log_p - normal_log_prob(z, mu, log_std)


def score_function_grad(
    log_joint: LogJoint, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor
) -> Grad:
    """Score-function (REINFORCE) estimate ``mean_s f(z_s) grad log q(z_s)``: eps (R, S, D) -> two (R, D).

    The entropy term's extra ``-E_q[grad log q] = 0`` is left out. ``log_joint`` is only evaluated,
    never differentiated.
    """
    _check(mu, log_std, eps)
    with torch.no_grad():
        z = mu + torch.exp(log_std) * eps  # (R, S, D) samples of q
        f = _elbo_integrand(log_joint, z, mu, log_std)  # (R, S)
        score_mu, score_log_std = normal_score(z, mu, log_std)  # (R, S, D) each
        return (f[..., None] * score_mu).mean(dim=1), (f[..., None] * score_log_std).mean(dim=1)


def score_function_baseline_grad(
    log_joint: LogJoint, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor
) -> Grad:
    """Score function with a leave-one-out baseline: ``mean_s (f(z_s) - b_s) grad log q(z_s)``.

    ``b_s`` is the mean of ``f`` over the other S - 1 samples, independent of ``z_s``, so the
    estimate stays unbiased (Mohamed et al. 2020, sec. 7). eps: (R, S, D) with S >= 2 -> two (R, D).
    """
    _check(mu, log_std, eps, min_samples=2)
    n = eps.shape[1]
    with torch.no_grad():
        z = mu + torch.exp(log_std) * eps  # (R, S, D)
        f = _elbo_integrand(log_joint, z, mu, log_std)  # (R, S)
        baseline = (f.sum(dim=1, keepdim=True) - f) / (n - 1)  # (R, S): leave-one-out means
        centred = (f - baseline)[..., None]  # (R, S, 1)
        score_mu, score_log_std = normal_score(z, mu, log_std)
        return (centred * score_mu).mean(dim=1), (centred * score_log_std).mean(dim=1)


def reparam_grad(log_joint: LogJoint, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor) -> Grad:
    """Reparameterisation estimate ``mean_s grad_phi f(mu + exp(log_std) * eps_s)``:
    eps (R, S, D) -> two (R, D).

    Each of the R estimates gets its own copy of phi, so one backward pass returns all of them.
    """
    _check(mu, log_std, eps)
    n_rep = eps.shape[0]
    with torch.enable_grad():
        mu_r = mu.detach()[None].expand(n_rep, -1).clone().requires_grad_(True)  # (R, D)
        log_std_r = log_std.detach()[None].expand(n_rep, -1).clone().requires_grad_(True)
        z = mu_r[:, None] + torch.exp(log_std_r)[:, None] * eps  # (R, S, D), differentiable in phi
        f = _elbo_integrand(log_joint, z, mu_r[:, None], log_std_r[:, None])  # (R, S)
        grad_mu, grad_log_std = torch.autograd.grad(f.mean(dim=1).sum(), (mu_r, log_std_r))
    return grad_mu, grad_log_std


def gradient_inside_grad(
    log_joint: LogJoint, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor
) -> Grad:
    """The WRONG estimate that moves grad_phi inside the integral: ``mean_s grad_phi f(z_s)``, z_s held fixed.

    With z fixed only ``-log q`` depends on phi, so this is ``-mean_s grad log q(z_s)``: its
    expectation is zero whatever the true gradient. eps: (R, S, D) -> two (R, D).
    """
    _check(mu, log_std, eps)
    with torch.no_grad():
        z = mu + torch.exp(log_std) * eps
        score_mu, score_log_std = normal_score(z, mu, log_std)
        return -score_mu.mean(dim=1), -score_log_std.mean(dim=1)


ESTIMATORS: dict[str, Callable[..., Grad]] = {
    "score function": score_function_grad,
    "score function + baseline": score_function_baseline_grad,
    "reparameterisation": reparam_grad,
}


@dataclass(frozen=True)
class GaussianTarget:
    """A model whose posterior is Gaussian:
    ``log p(x, z) = log p(x) + log N(z | mean, diag(exp(log_std)^2))``.

    Then ``L(phi) = log p(x) - KL(q || posterior)``, so the true gradient is known in closed form.
    """

    log_evidence: float  # log p(x)
    mean: torch.Tensor  # (D,) posterior mean
    log_std: torch.Tensor  # (D,) posterior log standard deviation

    def log_joint(self, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z): (..., D) -> (...)."""
        return self.log_evidence + normal_log_prob(z, self.mean, self.log_std)

    def elbo(self, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
        """L(phi) = log p(x) - KL(N(mu, sigma^2) || N(m, s^2)) in closed form: two (D,) -> ()."""
        return self.log_evidence - get_normal_KL(mu, log_std, self.mean, self.log_std).sum()

    def elbo_grad(self, mu: torch.Tensor, log_std: torch.Tensor) -> Grad:
        """The exact gradient of :meth:`elbo`: ``(m - mu) / s^2`` and ``1 - sigma^2 / s^2``, each (D,)."""
        s2 = torch.exp(2 * self.log_std)
        return (self.mean - mu) / s2, 1 - torch.exp(2 * log_std) / s2


def make_target(dim: int, log_evidence: float, device: torch.device | str = "cpu") -> GaussianTarget:
    """The chapter's target in ``dim`` dimensions: posterior mean and std alternate (1, 0.5), (-0.5, 1.5)."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    even = torch.arange(dim, device=device) % 2 == 0
    mean = torch.where(even, 1.0, -0.5).to(torch.get_default_dtype())
    log_std = torch.log(torch.where(even, 0.5, 1.5)).to(torch.get_default_dtype())
    return GaussianTarget(float(log_evidence), mean, log_std)
