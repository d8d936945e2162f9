"""The CIFAR-10 chapter's experiment: a ConvVAE, a beta sweep and a calibrated decoder.

Settings per execution profile are in :data:`SETTINGS`. :func:`run` loads the images
(:func:`dgm.data.load_image_data`), trains the main model, the beta sweep and the calibrated
decoder, and evaluates them; :meth:`CifarResult.chapter_values` is every number the chapter states.
Each training goes through :func:`dgm.image_training.fit_image_model`, keyed on the settings, the
data's fingerprint and the model source, so an unchanged rebuild reuses the weights.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from dgm.bits_per_dim import BitsPerDim, bits_per_dim, images_per_step, unit_variance_floor
from dgm.calibration import CalibratedConvVAE, calibrate
from dgm.checkpoints import Trained
from dgm.data import load_image_data
from dgm.gaussians import LOG_2PI
from dgm.image_training import ImageBudget, Prepared, fit_image_model, prepare
from dgm.profiles import ByProfile, RunLog, rehearsed
from dgm.reconstruction import ReconstructionError, reconstruction_error
from dgm.significance import PairedDifference, paired_difference
from dgm.tables import Table
from dgm.vae import ConvVAE


@dataclass(frozen=True)
class CifarVAESettings(ImageBudget):
    """What the chapter trains: the budget every model shares (``n_train``/``n_test`` = None means the
    whole split), the betas, and what only evaluates."""

    beta: float  # the main model's beta
    betas: tuple[float, ...]  # the sweep (includes ``beta``)
    seed: int = 0
    eval_batch_size: int = 500
    n_samples: int = 36  # samples shown per beta of the sweep
    calibration_images: int = 2000  # training images the post-hoc sigma is fitted on
    bpd_k: int = 100  # importance samples of the tighter bits-per-dimension bound

    #: what only evaluates the models: not part of a checkpoint's key
    EVALUATION = ("eval_batch_size", "n_samples", "calibration_images", "bpd_k")

    def training_config(self) -> dict:
        """The settings that decide a trained model, for checkpoint keys."""
        return {k: v for k, v in asdict(self).items() if k not in self.EVALUATION}


SETTINGS = ByProfile(
    # Seconds: a few hundred patches, a tiny network; checks that everything runs.
    smoke=CifarVAESettings(
        n_train=512,
        n_test=256,
        channels=(8, 16, 16, 32),
        n_latent=16,
        batch_size=64,
        epochs=2,
        lr=2e-3,
        beta=1.0,
        betas=(0.2, 1.0, 5.0),
        bpd_k=10,
    ),
    # Minutes on 2 CPU cores: 12k training images, half-width network, 4 epochs per model
    # (48k images per training, four trainings).
    cpu=CifarVAESettings(
        n_train=12_000,
        n_test=2_000,
        channels=(16, 32, 64, 128),
        n_latent=256,
        batch_size=64,
        epochs=4,
        lr=9e-4,
        beta=1.0,
        betas=(0.2, 1.0, 5.0),
    ),
    # The homework: full data, its suggested architecture, EPOCHS < 16, LR < 1e-3,
    # 128 < N_LATENS < 1024, 0.1 < BETA < 10.
    gpu=CifarVAESettings(
        n_train=None,
        n_test=None,
        channels=(32, 64, 128, 256),
        n_latent=256,
        batch_size=128,
        epochs=15,
        lr=5e-4,
        beta=1.0,
        betas=(0.2, 1.0, 5.0),
        bpd_k=1000,
    ),
)


def train_conv_vae(
    prep: Prepared,
    settings: CifarVAESettings,
    beta: float,
    calibrated: bool = False,
    log: RunLog | None = None,
    use_tqdm: bool | None = None,
) -> Trained:
    """Train (or load) a :class:`ConvVAE`, or a :class:`CalibratedConvVAE`, with ``beta`` on ``prep``.

    ``use_tqdm`` (default: in a notebook) shows a progress bar; the training is recorded in ``log``.
    """
    cls = CalibratedConvVAE if calibrated else ConvVAE
    name = f"{'calibrated' if calibrated else 'conv'}_vae_beta{beta:g}"
    torch.manual_seed(settings.seed)
    model = cls(tuple(prep.train_x.shape[1:]), settings.n_latent, beta, settings.channels)
    schedule = settings.schedule(settings.seed, settings.eval_batch_size)
    config = {"settings": settings.training_config(), "beta": beta}
    return fit_image_model(prep, name, model, schedule, config, log=log, use_tqdm=use_tqdm)


@dataclass(frozen=True)
class SweepPoint:
    """One beta of the sweep: test rate and distortion (nats per image) after training, and samples."""

    beta: float
    rate: float  # KL(q(z | x) || p(z)), test average
    distortion: float  # -log p(x | z), test average
    samples: np.ndarray  # (n, C, H, W) in [0, 1]


def beta_sweep(
    prep: Prepared,
    settings: CifarVAESettings,
    log: RunLog | None = None,
    trained: dict[float, Trained] | None = None,
) -> list[SweepPoint]:
    """Train one ConvVAE per beta of the settings (reusing ``trained`` ones); rate and distortion of each."""
    trained = dict(trained or {})
    points = []
    for beta in sorted(settings.betas):
        if beta not in trained:
            trained[beta] = train_conv_vae(prep, settings, beta, log=log)
        t = trained[beta]
        torch.manual_seed(settings.seed)
        points.append(
            SweepPoint(
                beta,
                t.test_losses["kl_loss"][-1],
                t.test_losses["recon_loss"][-1],
                t.model.sample(settings.n_samples),
            )
        )
    return points


def sweep_table(points: list[SweepPoint]) -> Table:
    """The beta sweep as a table: one row per beta, its test rate and distortion in nats per image."""
    if not points:
        raise ValueError("the sweep has no points")
    return Table(
        ("rate (nats)", "distortion (nats)"),
        {f"β = {p.beta:g}": (p.rate, p.distortion) for p in points},
        digits=1,
    )


# --------------------------------------------------------------------------- the chapter's run


@dataclass(frozen=True)
class CifarResult:
    """Everything the chapter shows: the data, the three kinds of model, and their evaluations."""

    settings: CifarVAESettings
    prep: Prepared
    main: Trained  # the ConvVAE with the settings' beta
    sweep: list[SweepPoint]  # one per beta, sorted
    reconstruction: ReconstructionError  # of the main model
    calibrated: Trained  # the CalibratedConvVAE, trained with the settings' beta
    bpd_unit: BitsPerDim  # the main model
    bpd_unit_k: BitsPerDim  # the main model, from the importance-weighted bound with settings.bpd_k samples
    bpd_posthoc: BitsPerDim  # the main model with sigma fitted after training
    bpd_calibrated: BitsPerDim
    log: RunLog

    @property
    def model(self) -> ConvVAE:
        """The main model."""
        return self.main.model

    def iw_gain(self) -> PairedDifference:
        """The ELBO's bits per dimension minus L_K's, paired over the test images both bounded."""
        elbo, iw = self.bpd_unit.per_image, self.bpd_unit_k.per_image
        return paired_difference(elbo[: len(iw)], iw)

    def chapter_values(self) -> dict[str, float | int | str]:
        """Every number the chapter states, by glue name."""
        s, prep, main = self.settings, self.prep, self.main
        n_dims = int(np.prod(prep.train_x.shape[1:]))
        constant = n_dims / 2 * LOG_2PI  # of the unit-variance Gaussian's negative log-density
        test = {key: values[-1] for key, values in main.test_losses.items()}
        sigma = self.calibrated.model.log_std_x.exp().flatten().tolist()
        floor = unit_variance_floor()
        v: dict[str, float | int | str] = {
            "n_train": len(prep.train_x),
            "n_test": len(prep.test_x),
            "dataset_name": "CIFAR-10" if prep.data.name == "cifar10" else "the stand-in patches",
            "n_dims": n_dims,
            "recon_constant": constant,
            "main_beta": s.beta,
            "main_epochs": s.epochs,
            "main_elbo_start": main.test_losses["elbo_loss"][0],
            "main_elbo": test["elbo_loss"],
            "main_recon": test["recon_loss"],
            "main_kl": test["kl_loss"],
            "main_half_sq": test["recon_loss"] - constant,
            "mse_recon": self.reconstruction.reconstruction,
            "mse_mean": self.reconstruction.mean_image,
            "mse_other": self.reconstruction.other_image,
            "sweep_n": len(self.sweep),
            "floor": floor,
            "bpd_unit": self.bpd_unit.total,
            "bpd_unit_recon": self.bpd_unit.recon,
            "bpd_unit_kl": self.bpd_unit.kl,
            "bpd_k": s.bpd_k,
            "bpd_unit_iw": self.bpd_unit_k.total,
            "bpd_iw_gain": self.bpd_unit.total - self.bpd_unit_k.total,
            "bpd_iw_gain_se_nats": self.iw_gain().se * n_dims * math.log(2),
            # the same in nats per image: a lower bound on the ELBO's gap to log p(x)
            "bpd_iw_gain_nats": (self.bpd_unit.total - self.bpd_unit_k.total) * n_dims * math.log(2),
            "bpd_offset": self.bpd_unit.discretisation,
            "bpd_posthoc": self.bpd_posthoc.total,
            "bpd_cal": self.bpd_calibrated.total,
            "bpd_cal_kl": self.bpd_calibrated.kl,
            "bpd_gain": self.bpd_unit.total - self.bpd_calibrated.total,
            "cal_vs_floor": "below" if self.bpd_calibrated.total < floor else "still above",
            "sigma2_min": min(sigma) ** 2,
            "sigma2_max": max(sigma) ** 2,
            "cal_kl": self.calibrated.test_losses["kl_loss"][-1],
        }
        for i, point in enumerate(self.sweep):
            v |= {
                f"sweep_beta_{i}": point.beta,
                f"sweep_rate_{i}": point.rate,
                f"sweep_distortion_{i}": point.distortion,
            }
        for name, sig in zip("rgb", sigma):
            v |= {f"sigma_{name}": sig, f"sigma_{name}_levels": sig * 255 / 2}  # in 8-bit levels
        return {k: (x if isinstance(x, (int, str)) else float(x)) for k, x in v.items()}


def run(
    settings: CifarVAESettings, device: torch.device | str | None = None, log: RunLog | None = None
) -> CifarResult:
    """Load the settings' images, train (or load) every model of the chapter and evaluate them.

    The data are CIFAR-10 or the labelled stand-in (:func:`dgm.data.load_image_data`: ``$DGM_DATASET``
    and the profile decide); every training is recorded in ``log`` (a new one if None).
    """
    log = RunLog() if log is None else log
    prep = prepare(load_image_data(n_train=settings.n_train, n_test=settings.n_test), settings, device)
    main = train_conv_vae(prep, settings, settings.beta, log=log)
    sweep = beta_sweep(prep, settings, log, trained={settings.beta: main})
    # every test image; in a rehearsal (dgm.profiles) the first few batches
    test_x = prep.test_x[: rehearsed(len(prep.test_x), per_step=settings.eval_batch_size)]
    bpd_unit = bits_per_dim(main.model, test_x, batch_size=settings.eval_batch_size)
    rows = images_per_step(settings.bpd_k, settings.eval_batch_size)
    iw_x = test_x[: max(2, rehearsed(len(test_x), per_step=rows))]  # k times the work of an image; 2 to pair
    bpd_unit_k = bits_per_dim(main.model, iw_x, k=settings.bpd_k, batch_size=settings.eval_batch_size)
    posthoc = calibrate(main.model, prep.train_x[: settings.calibration_images])
    calibrated = train_conv_vae(prep, settings, settings.beta, calibrated=True, log=log)
    return CifarResult(
        settings=settings,
        prep=prep,
        main=main,
        sweep=sweep,
        reconstruction=reconstruction_error(main.model, test_x, prep.train_x),
        calibrated=calibrated,
        bpd_unit=bpd_unit,
        bpd_unit_k=bpd_unit_k,
        bpd_posthoc=bits_per_dim(posthoc, test_x, batch_size=settings.eval_batch_size),
        bpd_calibrated=bits_per_dim(calibrated.model, test_x, batch_size=settings.eval_batch_size),
        log=log,
    )
