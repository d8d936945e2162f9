"""The VAE on 2d Gaussian data (the homework's Task 2): settings, training, evaluation.

Two data sets (:func:`dgm.data.generate_2d_data`): ``univariate`` (diagonal covariance) and
``multivariate`` (the same rotated by 45 degrees). A :class:`dgm.vae.VAE2d` is trained on each,
and on the univariate data once more with free bits (:mod:`dgm.collapse`). Trained models are
kept as checkpoints (:func:`dgm.checkpoints.load_or_train`), so that other chapters reuse them:
:func:`train_vae2d` is the entry point for them. :func:`run` trains (or loads) and evaluates the
chapter's three models; :meth:`VAE2dResult.chapter_values` is every number the chapter states.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.distributions import MultivariateNormal

from dgm.checkpoints import Trained, load_or_train
from dgm.collapse import FreeBitsVAE2d, diagonal_fit_penalty, get_latent_stats, kl_per_dimension
from dgm.data import TWO_D_MODES, generate_2d_data, true_2d_distribution
from dgm.jupyter import kernel_shell
from dgm.likelihood import exact_log_likelihood, posterior_kl
from dgm.profiles import ByProfile, RunLog, default_device
from dgm.quadrature import quadrature_elbo
from dgm.tables import Table
from dgm.training import Losses, fit
from dgm.vae import VAE2d, model_device


@dataclass(frozen=True)
class VAE2dSettings:
    """Settings of the 2d experiment (the homework asks for epochs < 10 and lr < 1e-2)."""

    count: int  # points generated; 70% train, 30% test
    enc_hidden_sizes: tuple[int, ...]
    dec_hidden_sizes: tuple[int, ...]
    batch_size: int
    epochs: int  # in all, the decay epochs included
    lr: float
    decay_epochs: int  # the last ``decay_epochs`` epochs run at lr / 10
    free_bits: float  # nats per latent dimension, for the remedy
    seed: int = 0
    threads: int | None = 1  # torch CPU threads while training (tiny model: one is fastest)


# The homework's own ranges (COUNT = 10000, EPOCHS < 10, LR < 1e-2) already fit a CPU: the
# problem is tiny, so the cpu and gpu builds run the same settings.
_HOMEWORK = VAE2dSettings(
    count=10000,
    enc_hidden_sizes=(64, 64),
    dec_hidden_sizes=(64, 64),
    batch_size=32,
    epochs=9,
    lr=3e-3,
    decay_epochs=2,
    free_bits=0.5,
)
SETTINGS = ByProfile(
    smoke=VAE2dSettings(
        count=2000,
        enc_hidden_sizes=(16, 16),
        dec_hidden_sizes=(16, 16),
        batch_size=64,
        epochs=2,
        lr=5e-3,
        decay_epochs=1,
        free_bits=0.5,
    ),
    cpu=_HOMEWORK,
    gpu=_HOMEWORK,
)


# --------------------------------------------------------------------------- trained models


def train_vae2d(
    mode: str,
    settings: VAE2dSettings,
    free_bits: float = 0.0,
    device: torch.device | str | None = None,
    use_tqdm: bool = False,
) -> Trained:
    """A VAE2d trained on ``mode``'s data with ``settings`` (free bits if ``free_bits`` > 0).

    ``Trained.model`` is a :class:`dgm.vae.VAE2d` in eval mode on ``device`` (default: CUDA if
    present), with ``encode``/``decode`` as :func:`dgm.likelihood.exact_log_likelihood` needs;
    ``Trained.train_losses``/``test_losses`` are its curves; its data are
    ``generate_2d_data(settings.count, mode)``.

    Loaded from its checkpoint when one exists for these settings and this package source
    (:func:`dgm.checkpoints.load_or_train`), trained and saved otherwise.
    """
    enc, dec = list(settings.enc_hidden_sizes), list(settings.dec_hidden_sizes)

    def make() -> VAE2d:
        return FreeBitsVAE2d(2, 2, enc, dec, free_bits) if free_bits > 0 else VAE2d(2, 2, enc, dec)

    name = f"vae2d-{mode}" + ("-free-bits" if free_bits > 0 else "")
    config = {"experiment": "vae2d", "mode": mode, "free_bits": free_bits, **asdict(settings)}
    loss_key = "free_bits_loss" if free_bits > 0 else "elbo_loss"
    return train_2d(name, config, make, mode, settings, loss_key, device, use_tqdm)


def train_2d(
    name: str,
    config: dict,
    make_model: Callable[[], torch.nn.Module],
    mode: str,
    settings: VAE2dSettings,
    loss_key: str,
    device: torch.device | str | None = None,
    use_tqdm: bool = False,
) -> Trained:
    """``make_model()``, built after seeding, trained on ``mode``'s data with :func:`dgm.training.fit`
    and ``settings`` on ``loss_key``, through :func:`dgm.checkpoints.load_or_train` (name, config)."""
    if mode not in TWO_D_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(TWO_D_MODES)}")
    train_data, test_data = generate_2d_data(settings.count, mode)
    device = default_device() if device is None else torch.device(device)
    torch.manual_seed(settings.seed)
    model = make_model().to(device)

    def train(m: torch.nn.Module) -> tuple[Losses, Losses]:
        return fit(
            m,
            train_data,
            test_data,
            settings.batch_size,
            settings.epochs,
            settings.lr,
            settings.decay_epochs,
            loss_key=loss_key,
            use_tqdm=use_tqdm,
            seed=settings.seed,
            threads=settings.threads,
        )

    return load_or_train(name, config, model, train)


# --------------------------------------------------------------------------- evaluation


def representative_points(data: np.ndarray, k: int = 4) -> np.ndarray:
    """k points of ``data`` spread along its first principal axis, at quantiles 10% ... 90%:
    (N, 2) -> (k, 2)."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or len(data) < k or k < 1:
        raise ValueError(f"need at least k={k} points of shape (N, D), got {data.shape}")
    centred = data - data.mean(axis=0)
    axis = np.linalg.eigh(np.cov(centred.T))[1][:, -1]
    proj = centred @ axis
    targets = np.quantile(proj, np.linspace(0.1, 0.9, k))
    return data[[int(np.abs(proj - t).argmin()) for t in targets]].astype(np.float32)


class LikelihoodGaps:
    """The two gaps of a result with ``log_px`` (exact), ``true_log_px`` and ``elbo`` (nats per point)."""

    log_px: float
    true_log_px: float
    elbo: float

    @property
    def nll_gap(self) -> float:
        """Exact test NLL of the model minus the true distribution's NLL on the same points."""
        return self.true_log_px - self.log_px

    @property
    def elbo_gap(self) -> float:
        """log p(x) - ELBO, which equals the average KL(q(z | x) || p(z | x))."""
        return self.log_px - self.elbo


@dataclass(frozen=True)
class ModeResult(LikelihoodGaps):
    """One trained model and what the chapter reports about it (averages over the test points)."""

    mode: str
    trained: Trained
    test_data: np.ndarray  # (N, 2)
    samples_noise: np.ndarray  # (3000, 2): x ~ p(x | z), z ~ p(z)
    samples_nonoise: np.ndarray  # (3000, 2): decoder means mu_x(z), z ~ p(z)
    mu_z: np.ndarray  # (3000, 2): means of q(z | x) on test points (get_latent_stats)
    std_z: np.ndarray  # (3000, 2): their standard deviations
    kl_per_dim: np.ndarray  # (2,): KL(q(z_j | x) || N(0, 1)), averaged over the test set
    log_px: float  # exact log p(x) under the model
    true_log_px: float  # log density of the distribution the data were drawn from
    elbo: float  # ELBO by quadrature (no sampling noise)
    posterior_kl: float  # KL(q(z | x) || p(z | x)) on the latent grid

    @property
    def kl_per_point(self) -> float:
        """KL(q(z | x) || p(z)) summed over latent dimensions, averaged over test points."""
        return float(self.kl_per_dim.sum())


def evaluate(mode: str, trained: Trained, settings: VAE2dSettings, n_samples: int = 3000) -> ModeResult:
    """Samples, latent statistics, per-dimension KL, exact log-likelihood, ELBO and posterior KL on
    the test set."""
    _, test_data = generate_2d_data(settings.count, mode)
    model = trained.model.eval()
    device = model_device(model)
    x = torch.as_tensor(test_data, device=device)
    torch.manual_seed(settings.seed)
    samples_noise = model.sample(n_samples, sample_from_decoder=True)
    samples_nonoise = model.sample(n_samples, sample_from_decoder=False)
    mu_z, std_z = get_latent_stats(model, test_data, generator=torch.Generator().manual_seed(settings.seed))
    with torch.no_grad():
        kl_dims = kl_per_dimension(*model.encode(x)).cpu().numpy()
    mean, cov = (torch.as_tensor(a, dtype=torch.float64) for a in true_2d_distribution(mode))
    true_log_px = MultivariateNormal(mean, cov).log_prob(x.double().cpu()).mean()
    return ModeResult(
        mode=mode,
        trained=trained,
        test_data=test_data,
        samples_noise=samples_noise,
        samples_nonoise=samples_nonoise,
        mu_z=mu_z,
        std_z=std_z,
        kl_per_dim=kl_dims,
        log_px=float(exact_log_likelihood(model, x).mean()),
        true_log_px=float(true_log_px),
        elbo=float(quadrature_elbo(model, x).mean()),
        posterior_kl=float(posterior_kl(model, x).mean()),
    )


@dataclass(frozen=True)
class VAE2dResult:
    """Everything the 2d chapter shows: the two models, the free-bits remedy and what ran."""

    settings: VAE2dSettings
    univariate: ModeResult
    multivariate: ModeResult
    free_bits: ModeResult  # univariate data, trained with free bits
    log: RunLog

    def _named(self) -> dict[str, ModeResult]:
        return {
            "univariate": self.univariate,
            "multivariate": self.multivariate,
            "univariate, free bits": self.free_bits,
        }

    def likelihood_table(self) -> Table:
        """Exact and true test NLL, negative ELBO and the gaps, nats per point, one row per model."""
        columns = (
            "exact NLL",
            "true NLL",
            "negative ELBO",
            "NLL gap",
            "log p(x) - ELBO",
            "KL(q ‖ true posterior)",
        )
        return Table(
            columns,
            {
                name: (-r.log_px, -r.true_log_px, -r.elbo, r.nll_gap, r.elbo_gap, r.posterior_kl)
                for name, r in self._named().items()
            },
        )

    def latent_table(self) -> Table:
        """The encoder's statistics on the test batch: mean and spread of mu_z_j and of std_z_j, per model."""
        rows = {}
        for name, r in self._named().items():
            for j in range(r.mu_z.shape[1]):
                mu, std = r.mu_z[:, j], r.std_z[:, j]
                rows[f"{name}: z_{j + 1}"] = (mu.mean(), mu.std(), std.mean(), std.std())
        return Table(("mean of μ_z", "sd of μ_z", "mean of σ_z", "sd of σ_z"), rows, digits=3)

    def kl_table(self) -> Table:
        """Average KL(q(z_j | x) || N(0, 1)) of each latent dimension, nats, one row per model."""
        return Table(
            ("KL of z_1", "KL of z_2", "KL per point"),
            {name: (*r.kl_per_dim, r.kl_per_point) for name, r in self._named().items()},
        )

    def chapter_values(self) -> dict[str, float | int]:
        """Every number the chapter states, by glue name."""
        s, uni = self.settings, self.univariate
        v: dict[str, float | int] = {
            "count": s.count,
            "epochs": s.epochs,
            "decay_epochs": s.decay_epochs,
            "lr": s.lr,
            "batch_size": s.batch_size,
            "free_bits": s.free_bits,
            # the collapsed encoder: its means near 0 and its standard deviations near 1 ...
            "uni_mu_abs": float(np.abs(uni.mu_z).mean(axis=0).max()),
            "uni_std_dev": float(np.abs(uni.std_z.mean(axis=0) - 1).max()),
            # ... and its decoder means, which hardly move: their spread against the data's
            "uni_nonoise_ratio": float((uni.samples_nonoise.std(axis=0) / uni.test_data.std(axis=0)).max()),
            "diag_penalty": diagonal_fit_penalty(true_2d_distribution("multivariate")[1]),
        }
        for tag, r in (
            ("univariate", uni),
            ("multivariate", self.multivariate),
            ("free_bits", self.free_bits),
        ):
            v[f"kl_per_point_{tag}"] = r.kl_per_point
        for tag, r in (("uni", uni), ("multi", self.multivariate), ("fb", self.free_bits)):
            v |= {
                f"{tag}_nll_gap": r.nll_gap,
                f"{tag}_elbo_gap": r.elbo_gap,
                f"{tag}_posterior_kl": r.posterior_kl,
                f"{tag}_exact_nll": -r.log_px,
                f"{tag}_true_nll": -r.true_log_px,
                f"{tag}_neg_elbo": -r.elbo,
            }
        return {k: (x if isinstance(x, int) else float(x)) for k, x in v.items()}


def run(
    settings: VAE2dSettings, device: torch.device | str | None = None, log: RunLog | None = None
) -> VAE2dResult:
    """Train (or load) the three models of the 2d chapter with ``settings`` and evaluate them.

    Each training is recorded in ``log`` (a new one if None); in a notebook, progress bars show.
    """
    log = RunLog() if log is None else log
    results = {}
    for name, mode, free_bits in [
        ("univariate", "univariate", 0.0),
        ("multivariate", "multivariate", 0.0),
        ("free_bits", "univariate", settings.free_bits),
    ]:
        trained = train_vae2d(mode, settings, free_bits, device=device, use_tqdm=kernel_shell() is not None)
        log.record(name, settings.epochs, trained.wall_time_s, loaded=trained.loaded)
        results[name] = evaluate(mode, trained, settings)
    return VAE2dResult(settings, log=log, **results)
