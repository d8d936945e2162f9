"""The log-derivative chapter's experiment: are the gradient estimators unbiased, and how noisy are they?

With q = N(0, I) against :func:`dgm.estimators.make_target` (a model whose true gradient is known),
:func:`run` makes an unbiasedness table (many estimates at a small D, on common random numbers) and
sweeps the latent dimension D and the number of samples S, measuring each estimator's variance.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from dgm.estimators import ESTIMATORS, GaussianTarget, gradient_inside_grad, make_target
from dgm.profiles import ByProfile, RunLog, default_device
from dgm.significance import z_threshold
from dgm.tables import Table


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
    false_alarm: float = 1e-3  # probability that any of the table's z-tests rejects a true statement
    log_evidence: float = -100.0  # log p(x): an image's log-likelihood is hundreds of nats or more
    seed: int = 0

    def __post_init__(self) -> None:
        sample_counts = (*self.n_samples, self.samples_for_dim_sweep, self.table_samples)
        if not self.dims or not self.n_samples or min(sample_counts) < 2:
            raise ValueError(
                "need non-empty sweeps and S >= 2 everywhere (the baseline leaves one sample out)"
            )
        if (
            min((*self.dims, self.dim_for_sample_sweep, self.table_dim)) < 1
            or min(self.n_repeats, self.table_repeats) < 2
        ):
            raise ValueError("dimensions must be >= 1 and repeat counts >= 2")


SETTINGS: ByProfile[EstimatorSettings] = ByProfile(
    smoke=EstimatorSettings(
        dims=(2, 8, 32),
        n_samples=(2, 8, 32),
        dim_for_sample_sweep=8,
        samples_for_dim_sweep=8,
        n_repeats=300,
        table_repeats=4_000,
    ),
    cpu=EstimatorSettings(
        dims=(2, 4, 10, 20, 50, 100, 200),
        n_samples=(2, 4, 8, 16, 32, 64, 128, 256),
        dim_for_sample_sweep=10,
        samples_for_dim_sweep=16,
        n_repeats=2_000,
    ),
    gpu=EstimatorSettings(
        dims=(2, 4, 10, 20, 50, 100, 200, 500),
        n_samples=(2, 4, 8, 16, 32, 64, 128, 256, 512),
        dim_for_sample_sweep=10,
        samples_for_dim_sweep=16,
        n_repeats=10_000,
        table_repeats=100_000,
    ),
)


@dataclass(frozen=True)
class VarianceResult:
    """What :func:`run` measured.

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
    log: RunLog
    wall_time_s: float  # the experiment's run time

    @property
    def n_tests(self) -> int:
        """z-tests of the table: one per parameter for each of the three unbiased estimators."""
        return len(self.param_names) * len(ESTIMATORS)

    @property
    def z_crit(self) -> float:
        """|z| beyond which one of the table's z-tests rejects with probability <= false_alarm in all."""
        return z_threshold(self.n_tests, self.settings.false_alarm)

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
        """The score-function variance the ELBO's mean alone explains: ``L^2 E[score^2] / S``,
        (len(dims),)."""
        return self.elbo_vs_dim**2 * self.fisher_vs_dim / self.settings.samples_for_dim_sweep

    def slope_vs_samples(self, name: str) -> float:
        """Least-squares slope of log Var against log S (-1 for an average of independent terms)."""
        return float(np.polyfit(np.log(self.settings.n_samples), np.log(self.var_vs_samples[name]), 1)[0])

    def table(self) -> Table:
        """The unbiasedness table: exact gradient, then each estimator's mean ± standard error, and
        max |z|."""
        names = list(self.table_mean)
        rows: dict[str, tuple] = {}
        for j, p in enumerate(self.param_names):
            cells = [f"{self.table_mean[n][j]:.3f} ± {self.table_se[n][j]:.3f}" for n in names]
            rows[f"`{p}`"] = (f"{self.table_exact[j]:.3f}", *cells)
        rows["max \\|z\\|"] = (None, *(f"{self.max_abs_z(n):.1f}" for n in names))
        return Table(("exact", *names), rows)

    def chapter_values(self) -> dict[str, float | int]:
        """Every number the chapter states, by glue name (``ldt_`` + name)."""
        s = self.settings
        sf, base, rep = "score function", "score function + baseline", "reparameterisation"
        v: dict[str, float | int] = {
            "log_evidence": s.log_evidence,
            "table_dim": s.table_dim,
            "table_samples": s.table_samples,
            "table_repeats": s.table_repeats,
            "n_tests": self.n_tests,
            "z_threshold": self.z_crit,
            "min_dim": s.dims[0],
            "max_dim": s.dims[-1],
            "sweep_samples": s.samples_for_dim_sweep,
            "ratio_sf_rep": self.ratio_at_max_dim(sf, rep),
            "ratio_base_rep": self.ratio_at_max_dim(base, rep),
            "ratio_sf_base": self.ratio_at_max_dim(sf, base),
            "growth_sf": self.growth_with_dim(sf),
            "growth_base": self.growth_with_dim(base),
            "growth_rep": self.growth_with_dim(rep),
            "elbo_min_dim": self.elbo_vs_dim[0],
            "elbo_max_dim": self.elbo_vs_dim[-1],
            "b1_change_min_dim": b1_change(self.elbo_vs_dim[0]),
            "b1_change_max_dim": b1_change(self.elbo_vs_dim[-1]),
            "offset_share": self.var_vs_dim[sf][-1] / self.offset_var_vs_dim()[-1],
            "slope_sf": self.slope_vs_samples(sf),
            "slope_base": self.slope_vs_samples(base),
            "slope_rep": self.slope_vs_samples(rep),
            "time_s": self.wall_time_s,
        }
        for key, name in [
            ("sf", sf),
            ("base", base),
            ("rep", rep),
            ("inside", "gradient inside the integral"),
        ]:
            v[f"maxz_{key}"] = self.max_abs_z(name)
            v[f"se_mu1_{key}"] = float(self.table_se[name][0])
        return {f"ldt_{k}": (x if isinstance(x, int) else float(x)) for k, x in v.items()}


def b1_change(elbo: float, b: float = 1.0) -> float:
    """Relative change of the offset term L^2 of the variance when the baseline b replaces 0:
    ((L - b)^2 - L^2) / L^2."""
    if elbo == 0:
        raise ValueError("the relative change is undefined for an ELBO of 0")
    return ((elbo - b) ** 2 - elbo**2) / elbo**2


def _estimates(
    name: str, target: GaussianTarget, mu: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor
) -> torch.Tensor:
    fn = ESTIMATORS[name] if name in ESTIMATORS else gradient_inside_grad
    grad_mu, grad_log_std = fn(target.log_joint, mu, log_std, eps)
    return torch.cat([grad_mu, grad_log_std], dim=1).double()  # (R, 2D)


def run(
    settings: EstimatorSettings, device: torch.device | str | None = None, log: RunLog | None = None
) -> VarianceResult:
    """Unbiasedness table and variance sweeps over D and S, with q = N(0, I) against :func:`make_target`.

    Nothing is trained: ``log`` (kept in the result) stays as it is passed.
    """
    device = torch.device(default_device() if device is None else device)
    start = time.perf_counter()
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
        return {
            name: float(_estimates(name, target, mu, log_std, eps).var(dim=0).mean()) for name in ESTIMATORS
        }

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
        log=RunLog() if log is None else log,
        wall_time_s=time.perf_counter() - start,
    )


def plot_variances(result: VarianceResult):
    """Log-log plots of the variance against D and against S, one line per estimator; returns the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    s = result.settings
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharey=True)
    for name, marker in zip(ESTIMATORS, "osd"):
        axes[0].loglog(s.dims, result.var_vs_dim[name], marker=marker, label=name)
        axes[1].loglog(s.n_samples, result.var_vs_samples[name], marker=marker, label=name)
    axes[0].loglog(
        s.dims, result.offset_var_vs_dim(), "k--", label="$\\mathcal{L}^2\\, E[s^2] / S$ (prediction)"
    )
    axes[0].set(
        xlabel="latent dimension d",
        ylabel="variance per coordinate of phi",
        title=f"S = {s.samples_for_dim_sweep} samples",
    )
    axes[1].set(xlabel="samples S per estimate", title=f"d = {s.dim_for_sample_sweep}")
    for ax, ticks in zip(axes, (s.dims, s.n_samples)):
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xticks(ticks, [str(t) for t in ticks])  # label the swept values, not decades
        ax.xaxis.set_minor_formatter(NullFormatter())
    fig.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=4, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig
