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
:func:`run_variance_experiment` is the experiment of the chapter on the log-derivative trick.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch

from dgm.gaussians import get_normal_nll
from dgm.profiles import ByProfile, default_device

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
        raise ValueError(f"mu and log_std must both have shape (D,), got {tuple(mu.shape)} and {tuple(log_std.shape)}")
    if eps.dim() != 3 or eps.shape[-1] != mu.shape[0]:
        raise ValueError(f"eps must have shape (R, S, D) with D = {mu.shape[0]}, got {tuple(eps.shape)}")
    if eps.shape[0] < 1 or eps.shape[1] < min_samples:
        raise ValueError(f"need R >= 1 estimates of S >= {min_samples} samples each, got eps of shape {tuple(eps.shape)}")


def _elbo_integrand(log_joint: LogJoint, z: torch.Tensor, mu: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """f(z) = log p(x, z) - log q(z | phi): (R, S, D) -> (R, S)."""
    log_p = log_joint(z)
    if not isinstance(log_p, torch.Tensor) or log_p.shape != z.shape[:-1]:
        got = tuple(log_p.shape) if isinstance(log_p, torch.Tensor) else type(log_p).__name__
        raise ValueError(f"log_joint must map (R, S, D) to (R, S), got {got} for z of shape {tuple(z.shape)}")
    return log_p - normal_log_prob(z, mu, log_std)


def score_function_grad(log_joint: LogJoint, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor) -> Grad:
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
    """Reparameterisation estimate ``mean_s grad_phi f(mu + exp(log_std) * eps_s)``: eps (R, S, D) -> two (R, D).

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


def gradient_inside_grad(log_joint: LogJoint, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor) -> Grad:
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
    """A model whose posterior is Gaussian: ``log p(x, z) = log p(x) + log N(z | mean, diag(exp(log_std)^2))``.

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
        s2 = torch.exp(2 * self.log_std)
        kl = self.log_std - log_std + (torch.exp(2 * log_std) + (mu - self.mean) ** 2) / (2 * s2) - 0.5
        return self.log_evidence - kl.sum()

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


@dataclass(frozen=True)
class EstimatorSettings:
    """Sizes of the variance experiment: dimensions and sample counts swept, estimates per point."""

    dims: tuple[int, ...]  # D swept with S = samples_for_dim_sweep
    n_samples: tuple[int, ...]  # S swept with D = dim_for_sample_sweep
    dim_for_sample_sweep: int
    samples_for_dim_sweep: int
    n_repeats: int  # R: independent estimates per point
    table_dim: int = 2  # the unbiasedness table: D, S and R
    table_samples: int = 8
    table_repeats: int = 20_000
    log_evidence: float = -100.0  # log p(x): an image's log-likelihood is hundreds of nats or more
    seed: int = 0

    def __post_init__(self) -> None:
        sample_counts = (*self.n_samples, self.samples_for_dim_sweep, self.table_samples)
        if not self.dims or not self.n_samples or min(sample_counts) < 2:
            raise ValueError("need non-empty sweeps and S >= 2 everywhere (the baseline leaves one sample out)")
        if min((*self.dims, self.dim_for_sample_sweep, self.table_dim)) < 1 or min(self.n_repeats, self.table_repeats) < 2:
            raise ValueError("dimensions must be >= 1 and repeat counts >= 2")


ESTIMATOR_SETTINGS: ByProfile[EstimatorSettings] = ByProfile(
    smoke=EstimatorSettings(dims=(2, 8, 32), n_samples=(2, 8, 32), dim_for_sample_sweep=8,
                            samples_for_dim_sweep=8, n_repeats=300, table_repeats=4_000),
    cpu=EstimatorSettings(dims=(2, 4, 10, 20, 50, 100, 200), n_samples=(2, 4, 8, 16, 32, 64, 128, 256),
                          dim_for_sample_sweep=10, samples_for_dim_sweep=16, n_repeats=2_000),
    gpu=EstimatorSettings(dims=(2, 4, 10, 20, 50, 100, 200, 500), n_samples=(2, 4, 8, 16, 32, 64, 128, 256, 512),
                          dim_for_sample_sweep=10, samples_for_dim_sweep=16, n_repeats=10_000, table_repeats=100_000),
)


@dataclass(frozen=True)
class VarianceResult:
    """What :func:`run_variance_experiment` measured.

    ``table_*`` are over the 2 * table_dim parameters ``(mu_1.., log_std_1..)``; ``var_vs_*`` hold,
    per estimator, the variance of one S-sample estimate averaged over the 2D coordinates of phi.
    """

    settings: EstimatorSettings
    param_names: tuple[str, ...]
    table_exact: np.ndarray  # (2 table_dim,)
    table_mean: dict[str, np.ndarray]  # estimator -> (2 table_dim,) mean of R estimates
    table_se: dict[str, np.ndarray]  # estimator -> (2 table_dim,) standard error of that mean
    var_vs_dim: dict[str, np.ndarray]  # estimator -> (len(dims),)
    var_vs_samples: dict[str, np.ndarray]  # estimator -> (len(n_samples),)
    elbo_vs_dim: np.ndarray  # (len(dims),) the exact ELBO at each D
    fisher_vs_dim: np.ndarray  # (len(dims),) E_q[score_j^2] averaged over the 2D coordinates j

    def max_abs_z(self, name: str) -> float:
        """max over parameters of |mean - exact| / standard error."""
        return float(np.max(np.abs(self.table_mean[name] - self.table_exact) / self.table_se[name]))

    def ratio_at_max_dim(self, num: str, den: str) -> float:
        """Var(num) / Var(den) at the largest dimension."""
        return float(self.var_vs_dim[num][-1] / self.var_vs_dim[den][-1])

    def growth_with_dim(self, name: str) -> float:
        """Var at the largest dimension / Var at the smallest."""
        return float(self.var_vs_dim[name][-1] / self.var_vs_dim[name][0])

    def offset_var_vs_dim(self) -> np.ndarray:
        """The score-function variance the ELBO's mean alone explains: ``L^2 E[score^2] / S``, (len(dims),)."""
        return self.elbo_vs_dim**2 * self.fisher_vs_dim / self.settings.samples_for_dim_sweep

    def slope_vs_samples(self, name: str) -> float:
        """Least-squares slope of log Var against log S (-1 for an average of independent terms)."""
        return float(np.polyfit(np.log(self.settings.n_samples), np.log(self.var_vs_samples[name]), 1)[0])


def b1_change(elbo: float, b: float = 1.0) -> float:
    """Relative change of the offset term L^2 of the variance when the baseline b replaces 0: ((L - b)^2 - L^2) / L^2."""
    if elbo == 0:
        raise ValueError("the relative change is undefined for an ELBO of 0")
    return ((elbo - b) ** 2 - elbo**2) / elbo**2


def z_threshold(n_tests: int, false_alarm: float) -> float:
    """|z| above which n_tests two-sided z-tests reject with total probability <= false_alarm (Bonferroni)."""
    if n_tests < 1 or not 0 < false_alarm < 1:
        raise ValueError(f"need n_tests >= 1 and 0 < false_alarm < 1, got {n_tests}, {false_alarm}")
    return NormalDist().inv_cdf(1 - false_alarm / (2 * n_tests))


def _estimates(name: str, target: GaussianTarget, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    fn = ESTIMATORS[name] if name in ESTIMATORS else gradient_inside_grad
    grad_mu, grad_log_std = fn(target.log_joint, mu, log_std, eps)
    return torch.cat([grad_mu, grad_log_std], dim=1).double()  # (R, 2D)


def run_variance_experiment(settings: EstimatorSettings, device: torch.device | str | None = None) -> VarianceResult:
    """Unbiasedness table and variance sweeps over D and S, with q = N(0, I) against :func:`make_target`."""
    device = torch.device(default_device() if device is None else device)
    gen = torch.Generator(device=device).manual_seed(settings.seed)

    def setup(dim: int) -> tuple[GaussianTarget, torch.Tensor, torch.Tensor]:
        zeros = torch.zeros(dim, device=device)
        return make_target(dim, settings.log_evidence, device), zeros, zeros.clone()

    def noise(n_rep: int, n_samples: int, dim: int) -> torch.Tensor:
        return torch.randn(n_rep, n_samples, dim, generator=gen, device=device)

    # Unbiasedness: many estimates at a small D, common random numbers for all estimators.
    d = settings.table_dim
    target, mu, log_std = setup(d)
    eps = noise(settings.table_repeats, settings.table_samples, d)
    exact = torch.cat(target.elbo_grad(mu, log_std)).double().cpu().numpy()
    means, ses = {}, {}
    for name in [*ESTIMATORS, "gradient inside the integral"]:
        g = _estimates(name, target, mu, log_std, eps)
        means[name] = g.mean(dim=0).cpu().numpy()
        ses[name] = (g.std(dim=0) / math.sqrt(g.shape[0])).cpu().numpy()
    names = tuple([f"mu_{i + 1}" for i in range(d)] + [f"log_std_{i + 1}" for i in range(d)])

    def mean_var(dim: int, n_samples: int) -> dict[str, float]:
        target, mu, log_std = setup(dim)
        eps = noise(settings.n_repeats, n_samples, dim)
        return {name: float(_estimates(name, target, mu, log_std, eps).var(dim=0).mean()) for name in ESTIMATORS}

    by_dim = [mean_var(dim, settings.samples_for_dim_sweep) for dim in settings.dims]
    elbos, fishers = [], []
    for dim in settings.dims:
        target, mu, log_std = setup(dim)
        elbos.append(float(target.elbo(mu, log_std)))
        # E[score^2]: 1 / sigma^2 for a coordinate of mu, 2 for one of log_std
        fishers.append(float(torch.cat([torch.exp(-2 * log_std), torch.full_like(log_std, 2.0)]).mean()))
    by_samples = [mean_var(settings.dim_for_sample_sweep, s) for s in settings.n_samples]
    return VarianceResult(
        settings=settings,
        param_names=names,
        table_exact=exact,
        table_mean=means,
        table_se=ses,
        var_vs_dim={n: np.array([row[n] for row in by_dim]) for n in ESTIMATORS},
        var_vs_samples={n: np.array([row[n] for row in by_samples]) for n in ESTIMATORS},
        elbo_vs_dim=np.array(elbos),
        fisher_vs_dim=np.array(fishers),
    )


def table_markdown(result: VarianceResult) -> str:
    """The unbiasedness table as Markdown: exact gradient, then each estimator's mean +- standard error."""
    names = list(result.table_mean)
    rows = ["| parameter | exact | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for j, p in enumerate(result.param_names):
        cells = [f"{result.table_mean[n][j]:.3f} ± {result.table_se[n][j]:.3f}" for n in names]
        rows.append(f"| `{p}` | {result.table_exact[j]:.3f} | " + " | ".join(cells) + " |")
    rows.append("| max \\|z\\| | | " + " | ".join(f"{result.max_abs_z(n):.1f}" for n in names) + " |")
    return "\n".join(rows)


def plot_variances(result: VarianceResult):
    """Log-log plots of the variance against D and against S, one line per estimator; returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    s = result.settings
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    for name, marker in zip(ESTIMATORS, "osd"):
        axes[0].loglog(s.dims, result.var_vs_dim[name], marker=marker, label=name)
        axes[1].loglog(s.n_samples, result.var_vs_samples[name], marker=marker, label=name)
    axes[0].loglog(s.dims, result.offset_var_vs_dim(), "k--", label="$\\mathcal{L}^2\\, E[s^2] / S$ (prediction)")
    axes[0].set(xlabel="latent dimension d", ylabel="variance per coordinate of phi",
                title=f"S = {s.samples_for_dim_sweep} samples")
    axes[1].set(xlabel="samples S per estimate", title=f"d = {s.dim_for_sample_sweep}")
    for ax, ticks in zip(axes, (s.dims, s.n_samples)):
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xticks(ticks, [str(t) for t in ticks])  # label the swept values, not decades
        ax.xaxis.set_minor_formatter(NullFormatter())
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
