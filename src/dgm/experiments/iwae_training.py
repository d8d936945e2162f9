"""The chapter on training with the bound: 2d VAEs trained on L_K for several K, and the gradients' noise.

For each data set of the 2d chapter and each K of the settings, :func:`run` trains a VAE2d on the
importance-weighted loss (:func:`dgm.iwae_gradients.iwae_loss`) with the 2d chapter's data,
networks and budget, and evaluates it exactly (log p(x) on the latent grid, the ELBO by
quadrature, the active units). It then measures the signal-to-noise ratio of the encoder's and the
decoder's gradient against K, for the IWAE and the doubly reparameterised (DReG) estimator, on the
K = 1 model of the rotated data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from matplotlib.figure import Figure

from dgm.checkpoints import Trained
from dgm.collapse import active_directions, active_units
from dgm.data import TWO_D_MODES, generate_2d_data, true_2d_distribution
from dgm.experiments.vae_2d import SETTINGS as VAE2D_SETTINGS
from dgm.experiments.vae_2d import LikelihoodGaps, VAE2dSettings, train_2d
from dgm.iwae import positive_integer
from dgm.iwae_gradients import (
    ESTIMATORS,
    GradientSNR,
    gradient_draws,
    iwae_loss,
    mean_difference_z,
    snr,
    varying,
)
from dgm.jupyter import kernel_shell
from dgm.likelihood import exact_log_likelihood
from dgm.plotting import new_figure, show
from dgm.profiles import ByProfile, RunLog, rehearsed
from dgm.quadrature import quadrature_elbo
from dgm.significance import z_threshold
from dgm.tables import Table
from dgm.training import torch_threads
from dgm.vae import VAE2d


class IWAEVAE2d(VAE2d):
    """:class:`VAE2d` trained on the importance-weighted bound with ``k`` samples.

    ``loss(x)["iwae_loss"]`` is the objective; the ELBO's terms are monitored beside it.
    """

    def __init__(
        self, n_in: int, n_latent: int, enc_hidden_sizes: list[int], dec_hidden_sizes: list[int], k: int
    ):
        k = positive_integer("k", k)
        super().__init__(n_in, n_latent, enc_hidden_sizes, dec_hidden_sizes)
        self.k = k

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ELBO's terms (monitored) and ``iwae_loss``, the batch mean of -L_k (trained on)."""
        return {**super().loss(x), "iwae_loss": iwae_loss(self, x, self.k)}


@dataclass(frozen=True)
class IWAETrainingSettings:
    """What the chapter trains and measures."""

    vae2d: VAE2dSettings  # the 2d chapter's data, networks and training budget
    snr_draws: int  # independent gradient estimates per K and estimator
    snr_batch: int  # test points in the batch whose gradient is measured
    ks: tuple[int, ...] = (1, 5, 50)  # trained on L_K with these K
    snr_ks: tuple[int, ...] = (1, 5, 50, 500)
    active_threshold: float = 0.01  # Burda et al.'s criterion for an active unit
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("ks", "snr_ks"):
            ks = getattr(self, name)
            if not ks or list(ks) != sorted(set(ks)) or ks[0] != 1:
                raise ValueError(f"{name} must be increasing integers starting at 1, got {ks}")
        if self.snr_draws < 2 or self.snr_batch < 1:
            raise ValueError("need snr_draws >= 2 and snr_batch >= 1")


SETTINGS = ByProfile(
    smoke=IWAETrainingSettings(
        vae2d=VAE2D_SETTINGS.smoke, snr_draws=20, snr_batch=16, ks=(1, 5), snr_ks=(1, 10)
    ),
    # K up to 200 on a CPU: the draws at K = 500 took three of the chapter's six minutes on 2 cores
    cpu=IWAETrainingSettings(vae2d=VAE2D_SETTINGS.cpu, snr_draws=1000, snr_batch=64, snr_ks=(1, 5, 50, 200)),
    gpu=IWAETrainingSettings(vae2d=VAE2D_SETTINGS.gpu, snr_draws=4000, snr_batch=64),
)


def train_iwae(
    mode: str, k: int, settings: VAE2dSettings, device: torch.device | str | None = None
) -> Trained:
    """A VAE2d trained on ``mode``'s data with L_k and the 2d chapter's ``settings`` (loaded if kept)."""
    enc, dec = list(settings.enc_hidden_sizes), list(settings.dec_hidden_sizes)
    config = {"experiment": "iwae_training", "mode": mode, "k": k, **asdict(settings)}
    return train_2d(
        f"iwae2d-{mode}-k{k}",
        config,
        lambda: IWAEVAE2d(2, 2, enc, dec, k),
        mode,
        settings,
        "iwae_loss",
        device,
        use_tqdm=kernel_shell() is not None,
    )


@dataclass(frozen=True)
class TrainedBound(LikelihoodGaps):
    """One model trained on L_K, evaluated exactly on the test set (nats per point)."""

    mode: str
    k: int
    trained: Trained
    log_px: float  # exact test log p(x)
    true_log_px: float  # of the distribution the data come from
    elbo: float  # by quadrature
    active: int  # active latent units (Burda et al.: per coordinate)
    directions: int  # active directions: eigenvalues of Cov_x(E_q[z | x]) above the threshold
    mean_variance: np.ndarray  # (d,): Cov_x(E_q[z_j | x]), the active-unit statistic


def evaluate(mode: str, k: int, trained: Trained, settings: IWAETrainingSettings) -> TrainedBound:
    """Exact log p(x), the quadrature ELBO and the active units of a model on the whole test set."""
    model = trained.model.eval()
    x = torch.as_tensor(
        generate_2d_data(settings.vae2d.count, mode)[1], device=next(model.parameters()).device
    )
    mean, cov = (torch.as_tensor(a, dtype=torch.float64) for a in true_2d_distribution(mode))
    true = torch.distributions.MultivariateNormal(mean, cov).log_prob(x.double().cpu()).mean()
    active, var = active_units(model, x, settings.active_threshold)
    directions = active_directions(model, x, settings.active_threshold)
    with torch.no_grad():
        log_px, elbo = exact_log_likelihood(model, x).mean(), quadrature_elbo(model, x).mean()
    return TrainedBound(
        mode, k, trained, float(log_px), float(true), float(elbo), active, directions, var.cpu().numpy()
    )


@dataclass(frozen=True)
class IWAETrainingResult:
    """The trained models and the gradients' signal-to-noise ratios."""

    settings: IWAETrainingSettings
    models: dict[tuple[str, int], TrainedBound]  # (mode, K) ->
    snr: dict[tuple[str, int], GradientSNR]  # (estimator, K) ->
    unbiased_z: dict[int, float]  # K -> max over encoder parameters of |DReG mean - IWAE mean| / SE
    n_tests: int  # the z-tests behind unbiased_z: the varying encoder parameters, summed over K
    n_encoder_params: int
    n_encoder_varying: int  # encoder parameters whose gradient varies at all (the others: dead units)
    log: RunLog

    @property
    def z_crit(self) -> float:
        """Bonferroni |z| of the unbiasedness tests (one per parameter and K) at a total level of 1e-3."""
        return z_threshold(self.n_tests, 1e-3)

    def slope(self, estimator: str, part: str) -> float:
        """Least-squares slope of log SNR against log K."""
        ks = self.settings.snr_ks
        values = [getattr(self.snr[estimator, k], part) for k in ks]
        return float(np.polyfit(np.log(ks), np.log(values), 1)[0])

    def models_table(self) -> Table:
        """One row per data set and K: exact test NLL, its gap to the truth, log p(x) - ELBO, active units."""
        columns = ("exact NLL", "NLL gap", "log p(x) - ELBO", "active units", "active directions")
        rows = {
            f"{m.mode}, K = {m.k}": (-m.log_px, m.nll_gap, m.elbo_gap, str(m.active), str(m.directions))
            for m in self.models.values()
        }
        return Table(columns, rows)

    def snr_table(self) -> Table:
        """One row per K: the SNR of each estimator's encoder and decoder gradient."""
        columns = tuple(f"{e.upper()} {part}" for e in ESTIMATORS for part in ("encoder", "decoder"))
        rows = {
            f"K = {k}": tuple(
                getattr(self.snr[e, k], part) for e in ESTIMATORS for part in ("encoder", "decoder")
            )
            for k in self.settings.snr_ks
        }
        return Table(columns, rows, digits=3)

    def chapter_values(self) -> dict[str, float | int | str]:
        """Every number the chapter states, by glue name (``it_`` + name)."""
        s = self.settings
        k1, kmax, smax = s.ks[0], s.ks[-1], s.snr_ks[-1]
        v: dict[str, float | int | str] = {
            "k_max": kmax,
            "n_k": len(s.ks),
            "snr_draws": s.snr_draws,
            "snr_batch": s.snr_batch,
            "snr_k_max": smax,
            "threshold": s.active_threshold,
        }
        for (mode, k), m in self.models.items():
            t = f"{mode[:5]}_k{k}"
            v |= {
                f"{t}_nll": -m.log_px,
                f"{t}_nll_gap": m.nll_gap,
                f"{t}_elbo_gap": m.elbo_gap,
                f"{t}_active": m.active,
                f"{t}_directions": m.directions,
            }
        for mode in TWO_D_MODES:
            first, last = self.models[mode, k1], self.models[mode, kmax]
            t = mode[:5]
            v[f"{t}_nll_change"] = last.log_px - first.log_px  # > 0: the K_max model is better
            v |= {
                f"{t}_kmax_elbo_gap": last.elbo_gap,
                f"{t}_kmax_active": last.active,
                f"{t}_kmax_directions": last.directions,
            }
        v["max_nll_gap"] = max(abs(m.nll_gap) for m in self.models.values())
        for e in ESTIMATORS:
            for k in s.snr_ks:
                v |= {f"snr_{e}_enc_{k}": self.snr[e, k].encoder, f"snr_{e}_dec_{k}": self.snr[e, k].decoder}
            v[f"snr_{e}_enc_ratio"] = self.snr[e, smax].encoder / self.snr[e, 1].encoder
            v[f"snr_{e}_enc_drop"] = self.snr[e, 1].encoder / self.snr[e, smax].encoder
            v[f"snr_{e}_dec_ratio"] = self.snr[e, smax].decoder / self.snr[e, 1].decoder
            v[f"snr_{e}_enc_slope"] = self.slope(e, "encoder")
            v[f"snr_{e}_dec_slope"] = self.slope(e, "decoder")
        v |= {
            "unbiased_max_z": max(self.unbiased_z.values()),
            "z_crit": self.z_crit,
            "n_encoder_params": self.n_encoder_params,
            "n_encoder_varying": self.n_encoder_varying,
        }
        return {f"it_{k}": (x if isinstance(x, (int, str)) else float(x)) for k, x in v.items()}


def run(
    settings: IWAETrainingSettings, device: torch.device | str | None = None, log: RunLog | None = None
) -> IWAETrainingResult:
    """Train (or load) a model per data set and K, evaluate them, and measure the gradients' SNR."""
    log = RunLog() if log is None else log
    models = {}
    for mode in TWO_D_MODES:
        for k in settings.ks:
            trained = train_iwae(mode, k, settings.vae2d, device)
            log.record(f"{mode}_k{k}", settings.vae2d.epochs, trained.wall_time_s, loaded=trained.loaded)
            models[mode, k] = evaluate(mode, k, trained, settings)
    model = models["multivariate", settings.ks[0]].trained.model
    x = torch.as_tensor(
        generate_2d_data(settings.vae2d.count, "multivariate")[1][: settings.snr_batch],
        device=next(model.parameters()).device,
    )
    ratios, unbiased, n_tests = {}, {}, 0
    with torch_threads(settings.vae2d.threads):
        for j, k in enumerate(settings.snr_ks):
            draws = {  # independent noise for every estimator and K
                e: gradient_draws(
                    model, x, k, e, max(2, rehearsed(settings.snr_draws)), settings.seed + 2 * j + i
                )
                for i, e in enumerate(ESTIMATORS)
            }
            for e, (enc, dec) in draws.items():
                ratios[e, k] = GradientSNR(encoder=snr(enc), decoder=snr(dec))
            iwae_enc, dreg_enc = draws["iwae"][0], draws["dreg"][0]
            moving = (iwae_enc.std(dim=0) > 0) | (dreg_enc.std(dim=0) > 0)
            unbiased[k] = float(mean_difference_z(dreg_enc, iwae_enc)[moving].abs().max())
            n_tests += int(moving.sum())
            if j == 0:
                n_varying = varying(iwae_enc)
    n_enc = sum(p.numel() for p in model.encoder.parameters())
    return IWAETrainingResult(settings, models, ratios, unbiased, n_tests, n_enc, n_varying, log)


def plot_snr(result: IWAETrainingResult) -> Figure:
    """SNR of the encoder's and the decoder's gradient against K, one line per estimator, log-log."""
    ks = np.asarray(result.settings.snr_ks, dtype=float)
    fig, axes = new_figure(1, 2, figsize=(10, 4), sharey=True)
    for ax, part in zip(axes[0], ("encoder", "decoder")):
        for e, marker in zip(ESTIMATORS, "os"):
            ax.loglog(ks, [getattr(result.snr[e, int(k)], part) for k in ks], marker=marker, label=e.upper())
        ax.set_xticks(ks, [str(int(k)) for k in ks])
        ax.minorticks_off()
        ax.set(title=f"the {part}'s gradient", xlabel="K", ylabel="signal-to-noise ratio")
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].legend()
    return show(fig)
