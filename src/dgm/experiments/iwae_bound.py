"""The IWAE chapter's experiment: L_K against K for the trained 2d VAEs, and their exact log p(x).

For each of the 2d chapter's trained VAEs (:func:`dgm.experiments.vae_2d.train_vae2d`, with the
settings' ``vae2d``) and a set of test points, :func:`run` estimates the test-set average of L_K
for every K of the settings with :func:`dgm.iwae.iwae_bound`, with a Monte Carlo standard error,
and sets it against the exact log p(x) (:func:`dgm.likelihood.exact_log_likelihood`) and the ELBO
without sampling noise (:func:`dgm.quadrature.quadrature_elbo`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from dgm.animation import ScrubbableFigure, scrubbable
from dgm.data import TWO_D_MODES, generate_2d_data
from dgm.experiments.vae_2d import SETTINGS as VAE2D_SETTINGS
from dgm.experiments.vae_2d import VAE2dSettings, train_vae2d
from dgm.iwae import ModeBounds, chi_square, repeated_iwae_bound
from dgm.likelihood import exact_log_likelihood
from dgm.plotting import new_figure, show
from dgm.profiles import ByProfile, RunLog, rehearsed
from dgm.quadrature import quadrature_elbo
from dgm.significance import z_threshold
from dgm.tables import Table
from dgm.training import torch_threads
from dgm.vae import model_device

KS: tuple[int, ...] = (1, 2, 5, 10, 50, 100, 1000, 5000)


@dataclass(frozen=True)
class IWAESettings:
    """Settings of the IWAE experiment: which K, how many test points, how many samples."""

    n_points: int  # the first n_points test points of each data set
    samples_per_k: (
        int  # latent samples per point and K: R_K = max(min_repeats, samples_per_k // K) draws of L_K
    )
    chi2_samples: int  # latent samples per point for the chi-square divergence
    vae2d: VAE2dSettings  # the 2d chapter's models and data, trained (or loaded) with these
    ks: tuple[int, ...] = KS
    min_repeats: int = 2  # at least two draws per point, for a variance
    false_alarm: float = 1e-3  # probability that any of the chapter's z-tests rejects a true statement
    log_px_tol: float = 1e-4  # accuracy of exact_log_likelihood, nats per point
    seed: int = 0
    threads: int | None = 1  # torch CPU threads meanwhile

    def __post_init__(self) -> None:
        if not self.ks or list(self.ks) != sorted(set(self.ks)) or self.ks[0] < 1:
            raise ValueError(f"ks must be increasing integers >= 1, got {self.ks}")
        if min(self.n_points, self.samples_per_k, self.chi2_samples) < 1 or self.min_repeats < 2:
            raise ValueError("n_points, samples_per_k and chi2_samples must be >= 1 and min_repeats >= 2")

    def repeats(self, k: int) -> int:
        """R_K, the number of independent draws of the L_K estimate per point."""
        return max(self.min_repeats, self.samples_per_k // k)


SETTINGS = ByProfile(
    smoke=IWAESettings(n_points=20, samples_per_k=100, chi2_samples=100, vae2d=VAE2D_SETTINGS.smoke),
    cpu=IWAESettings(n_points=300, samples_per_k=4000, chi2_samples=1000, vae2d=VAE2D_SETTINGS.cpu),
    # the whole test set
    gpu=IWAESettings(n_points=3000, samples_per_k=4000, chi2_samples=1000, vae2d=VAE2D_SETTINGS.gpu),
)


def bounds_for_model(
    model: torch.nn.Module,
    x: torch.Tensor,
    settings: IWAESettings,
    mode: str = "",
) -> ModeBounds:
    """L_K for every K of ``settings`` on the points x (N, D), with log p(x), the ELBO and chi^2."""
    device = model_device(model)
    x = x.to(device)
    generator = torch.Generator(device=device).manual_seed(settings.seed)
    with torch.no_grad():
        log_px = exact_log_likelihood(model, x, tol=settings.log_px_tol)  # (N,) float64
        elbo32, elbo16 = (quadrature_elbo(model, x, n_nodes=n).mean().item() for n in (32, 16))
        bound, se, abs_error = [], [], []
        for k in settings.ks:
            r = settings.repeats(k)
            est = repeated_iwae_bound(model, x, k, r, generator)  # (R_K, N)
            bound.append(est.mean().item())
            se.append(math.sqrt(est.var(dim=0).sum().item() / r) / x.shape[0])
            abs_error.append((est.mean(dim=0) - log_px).abs().mean().item())
        chi2 = chi_square(model, x, log_px, settings.chi2_samples, generator).mean().item()
    return ModeBounds(
        mode=mode,
        ks=tuple(settings.ks),
        repeats=tuple(settings.repeats(k) for k in settings.ks),
        bound=np.array(bound),
        se=np.array(se),
        abs_error=np.array(abs_error),
        log_px=log_px.mean().item(),
        elbo=elbo32,
        elbo_quadrature_error=abs(elbo32 - elbo16),
        chi2=chi2,
    )


MODE_TAGS = {"univariate": "uni", "multivariate": "multi"}


@dataclass(frozen=True)
class IWAEResult:
    """Both models' bounds, the z threshold of the chapter's tests and what ran."""

    settings: IWAESettings
    univariate: ModeBounds
    multivariate: ModeBounds
    log: RunLog
    estimation_time_s: float

    @property
    def modes(self) -> tuple[ModeBounds, ModeBounds]:
        return self.univariate, self.multivariate

    @property
    def n_tests(self) -> int:
        """z-tests the chapter makes per model: L_1 = ELBO, L_K <= log p(x) for every K, each
        consecutive step."""
        n_k = len(self.settings.ks)
        return len(self.modes) * (1 + n_k + (n_k - 1))

    @property
    def z_crit(self) -> float:
        """|z| beyond which one of the chapter's z-tests rejects with probability <= false_alarm in all."""
        return z_threshold(self.n_tests, self.settings.false_alarm)

    def chapter_values(self) -> dict[str, float | int | str]:
        """The numbers the chapter states, by glue name (``iw_`` + name); per-K values as
        ``iw_{tag}_gap_{K}``."""
        s, z = self.settings, self.z_crit
        v: dict[str, float | int | str] = {
            "n_points": s.n_points,
            "samples_per_k": s.samples_per_k,
            "min_repeats": s.min_repeats,
            "chi2_samples": s.chi2_samples,
            "k_max": s.ks[-1],
            "n_k": len(s.ks),
            "log_px_tol": s.log_px_tol,
            "false_alarm": s.false_alarm,
            "n_tests": self.n_tests,
            "z_crit": z,
            "estimation_time_s": round(self.estimation_time_s, 1),
        }
        for m in self.modes:
            t = MODE_TAGS[m.mode]
            k_conv, kmax_measurable = m.converged_from(z), [k for k, ok in zip(m.ks, m.measurable(z)) if ok]
            v |= {
                f"{t}_log_px": m.log_px,
                f"{t}_elbo": m.elbo,
                f"{t}_elbo_gap": m.elbo_gap,
                f"{t}_quad_err": m.elbo_quadrature_error,
                f"{t}_l1": m.bound[0],
                f"{t}_l1_se": m.se[0],
                f"{t}_l1_minus_elbo": m.bound[0] - m.elbo,
                f"{t}_min_gap_z": float(m.gap_z.min()),
                f"{t}_min_step_z": float(m.step_z.min()),
                f"{t}_rise": m.rise,
                f"{t}_rise_z": m.rise_z,
                f"{t}_gap_kmax": m.gap[-1],
                f"{t}_se_kmax": m.se[-1],
                f"{t}_abs_err_kmax": m.abs_error[-1],
                f"{t}_k_conv": "none" if k_conv is None else k_conv,
                f"{t}_chi2": m.chi2,
                f"{t}_rate_dev": m.rate_deviation(z),
                f"{t}_rate_kmax": kmax_measurable[-1] if kmax_measurable else "none",
            }
            for i, k in enumerate(m.ks):
                v |= {f"{t}_gap_{k}": m.gap[i], f"{t}_se_{k}": m.se[i], f"{t}_l_{k}": m.bound[i]}
        return {
            f"iw_{name}": (float(x) if isinstance(x, (float, np.floating)) else x) for name, x in v.items()
        }

    def bounds_table(self) -> Table:
        """One row per K: L_K, its standard error and log p(x) - L_K for each model; then the ELBO
        and log p(x)."""
        columns = tuple(c for m in self.modes for c in (f"{m.mode}: L_K", "SE", "log p(x) - L_K"))
        rows: dict[str, tuple] = {}
        for i, k in enumerate(self.settings.ks):
            rows[f"K = {k}"] = tuple(c for m in self.modes for c in (m.bound[i], m.se[i], m.gap[i]))
        rows["ELBO (quadrature)"] = tuple(c for m in self.modes for c in (m.elbo, None, m.elbo_gap))
        rows["log p(x) (exact)"] = tuple(c for m in self.modes for c in (m.log_px, None, "0"))
        return Table(columns, rows, digits=5)


def run(
    settings: IWAESettings, device: torch.device | str | None = None, log: RunLog | None = None
) -> IWAEResult:
    """Load (or train) the 2d chapter's VAEs of ``settings.vae2d`` and estimate their L_K on test points.

    The trainings (usually checkpoints of the 2d chapter's) are recorded in ``log`` (a new one if None).
    """
    log = RunLog() if log is None else log
    results = {}
    elapsed = 0.0
    for mode in TWO_D_MODES:
        trained = train_vae2d(mode, settings.vae2d, device=device)
        log.record(mode, settings.vae2d.epochs, trained.wall_time_s, loaded=trained.loaded)
        n_points = rehearsed(settings.n_points, per_step=settings.vae2d.batch_size)
        x = torch.as_tensor(generate_2d_data(settings.vae2d.count, mode)[1][:n_points])
        start = time.perf_counter()
        with torch_threads(settings.threads if model_device(trained.model).type == "cpu" else None):
            results[mode] = bounds_for_model(trained.model.eval(), x, settings, mode)
        elapsed += time.perf_counter() - start
    return IWAEResult(settings, log=log, estimation_time_s=elapsed, **results)


# --------------------------------------------------------------------------- the figure


def _draw_bounds(axes, result: IWAEResult, upto: int | None = None) -> None:
    """Each model's L_K - log p(x) on its panel, the first ``upto`` values of K only (None: all)."""
    for ax, m in zip(axes, result.modes):
        ks = np.asarray(m.ks, dtype=float)
        n = len(ks) if upto is None else upto
        ax.axhline(0.0, color="k", lw=1, label="exact log p(x)")
        ax.plot(ks, -m.predicted_gap, "--", color="C1", label="$-\\chi^2 / (2K)$")
        ax.errorbar(
            ks[:n], -m.gap[:n], yerr=2 * m.se[:n], fmt="o-", color="C0", capsize=3, ms=4, label="$L_K$ ± 2 SE"
        )
        ax.plot([1], [-m.elbo_gap], "x", color="C3", ms=9, mew=2, label="ELBO (quadrature)")
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in m.ks])
        ax.minorticks_off()
        low = min(float((-m.gap - 2 * m.se).min()), -m.elbo_gap, float(-m.predicted_gap.max()))
        ax.set_ylim(1.1 * low, 0.25 * abs(low))  # the same scale in every frame of the animation
        title = m.mode if upto is None else f"{m.mode}: K = {m.ks[n - 1]}, gap {m.gap[n - 1]:.4f}"
        ax.set(title=title, xlabel="K", ylabel="$L_K$ - log p(x)   [nats per point]")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right")


def plot_bounds(result: IWAEResult) -> Figure:
    """L_K - log p(x) against K (log scale), +- 2 standard errors, with the ELBO and chi^2 / (2K);
    one panel per model."""
    fig, axes = new_figure(1, len(result.modes), figsize=(11, 4.2))
    _draw_bounds(axes[0], result)
    return show(fig)


def bounds_animation(result: IWAEResult) -> ScrubbableFigure:
    """The same figure to scrub through, one more K per frame: watch the gap close."""
    fig, axes = plt.subplots(1, len(result.modes), figsize=(10, 4), dpi=72)

    def frame(t: int) -> list:
        for ax in axes:
            ax.clear()
        _draw_bounds(axes, result, upto=t + 1)
        return []

    return scrubbable(fig, frame, len(result.settings.ks), interval_ms=800)
