"""The VAE on 2d Gaussian data (the homework's Task 2): settings, training, evaluation.

Two data sets (:func:`dgm.data.generate_2d_data`): ``univariate`` (diagonal covariance) and
``multivariate`` (the same rotated by 45 degrees). A :class:`dgm.vae.VAE2d` is trained on each,
and on the univariate data once more with free bits (:mod:`dgm.collapse`). Trained models are
kept as checkpoints (:func:`dgm.training.load_or_train`), so that other chapters reuse them:
:func:`trained_vae2d_models` is the entry point for them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.distributions import MultivariateNormal

from dgm.collapse import FreeBitsVAE2d, kl_per_dimension
from dgm.data import TWO_D_MODES, generate_2d_data, true_2d_distribution
from dgm.likelihood import exact_log_likelihood, posterior_kl, quadrature_elbo
from dgm.loaders import TensorLoader
from dgm.plotting import plot_training_curves, visualize_2d_samples
from dgm.profiles import ByProfile, RunLog, current_profile, default_device
from dgm.tables import Table
from dgm.training import Losses, Trained, load_or_train, torch_threads, train_model
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


SETTINGS = ByProfile(
    smoke=VAE2dSettings(count=2000, enc_hidden_sizes=(16, 16), dec_hidden_sizes=(16, 16), batch_size=64,
                        epochs=2, lr=5e-3, decay_epochs=1, free_bits=0.5),
    cpu=VAE2dSettings(count=10000, enc_hidden_sizes=(64, 64), dec_hidden_sizes=(64, 64), batch_size=32,
                      epochs=9, lr=3e-3, decay_epochs=2, free_bits=0.5),
    # The homework's own ranges (COUNT = 10000, EPOCHS < 10, LR < 1e-2) already fit a CPU: the
    # problem is tiny, so the GPU build runs the same settings.
    gpu=VAE2dSettings(count=10000, enc_hidden_sizes=(64, 64), dec_hidden_sizes=(64, 64), batch_size=32,
                      epochs=9, lr=3e-3, decay_epochs=2, free_bits=0.5),
)


def fit(
    model: torch.nn.Module,
    train_data: np.ndarray,
    test_data: np.ndarray,
    batch_size: int,
    epochs: int,
    lr: float,
    decay_epochs: int = 0,
    loss_key: str = "elbo_loss",
    use_tqdm: bool = False,
    seed: int | None = None,
    threads: int | None = 1,
) -> tuple[Losses, Losses]:
    """:func:`train_model` on batches sliced from the data, the last ``decay_epochs`` of ``epochs`` at lr / 10.

    Returns (train_losses, test_losses) as :func:`train_model` does, the two phases concatenated.
    The model stays on its device; ``seed`` fixes the order of the batches; on a CPU, torch uses
    ``threads`` threads meanwhile (:func:`dgm.training.torch_threads`).
    """
    if not 0 <= decay_epochs <= epochs:
        raise ValueError(f"need 0 <= decay_epochs <= epochs, got {decay_epochs} and {epochs}")
    device = model_device(model)
    train_loader = TensorLoader(torch.as_tensor(train_data), batch_size, shuffle=True, seed=seed)
    test_loader = TensorLoader(torch.as_tensor(test_data), max(batch_size, 1000))
    with torch_threads(threads):
        tr, te = train_model(model, train_loader, test_loader, epochs - decay_epochs, lr,
                             use_tqdm=use_tqdm, loss_key=loss_key, device=device)
        if decay_epochs:
            tr2, te2 = train_model(model, train_loader, test_loader, decay_epochs, lr / 10,
                                   use_tqdm=use_tqdm, loss_key=loss_key, device=device)
            tr = {k: tr.get(k, []) + v for k, v in tr2.items()}
            te = {k: te[k] + v[1:] for k, v in te2.items()}  # v[0] repeats the last test value
    return tr, te


def solve_task(
    train_data: np.ndarray,
    test_data: np.ndarray,
    model: VAE2d,
    batch_size: int,
    epochs: int,
    lr: float,
    use_cuda: bool = False,
    use_tqdm: bool = False,
) -> tuple[Losses, Losses]:
    """The homework's ``solve_task``: train, print the final test losses, plot curves and samples.

    Uses its arguments (the homework's version read global settings); returns the losses.
    """
    if use_cuda:
        if not torch.cuda.is_available():
            raise RuntimeError("use_cuda=True but CUDA is not available; pass use_cuda=False")
        model.cuda()
    train_losses, test_losses = fit(model, train_data, test_data, batch_size, epochs, lr, use_tqdm=use_tqdm)
    samples_noise = model.sample(3000, sample_from_decoder=True)
    samples_nonoise = model.sample(3000, sample_from_decoder=False)
    for key, value in test_losses.items():
        print(f"{key}: {value[-1]:.4f}")
    plot_training_curves(train_losses, test_losses)
    visualize_2d_samples(samples_noise, title="Samples with Decoder Noise")
    visualize_2d_samples(samples_nonoise, title="Samples without Decoder Noise")
    return train_losses, test_losses


def get_latent_stats(
    model: VAE2d, test_data: np.ndarray, use_cuda: bool = False, batch_size: int = 3000,
    generator: torch.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Means and stds of q(z | x) on a random batch of ``batch_size`` test points: two (b, n_latent) arrays."""
    device = torch.device("cuda") if use_cuda else model_device(model)
    if model_device(model) != device:
        raise ValueError(f"the model is on {model_device(model)}, not on {device}; move it or set use_cuda")
    data = torch.as_tensor(test_data)
    if data.dim() != 2 or data.shape[0] == 0:
        raise ValueError(f"test_data must be a non-empty (N, D) array, got shape {tuple(data.shape)}")
    idx = torch.randperm(data.shape[0], generator=generator)[:batch_size]
    with torch.no_grad():
        mu_z, log_std_z = model.encode(data[idx].to(device))
    return mu_z.cpu().numpy(), log_std_z.exp().cpu().numpy()


# --------------------------------------------------------------------------- trained models


def train_vae2d(
    mode: str,
    settings: VAE2dSettings,
    free_bits: float = 0.0,
    device: torch.device | str | None = None,
    use_tqdm: bool = False,
) -> Trained:
    """A VAE2d trained on ``mode``'s data with ``settings`` (free bits if ``free_bits`` > 0).

    Loaded from its checkpoint when one exists for these settings and this package source
    (:func:`dgm.training.load_or_train`), trained and saved otherwise.
    """
    train_data, test_data = generate_2d_data(settings.count, mode)
    device = default_device() if device is None else torch.device(device)
    torch.manual_seed(settings.seed)
    enc, dec = list(settings.enc_hidden_sizes), list(settings.dec_hidden_sizes)
    if free_bits > 0:
        model: VAE2d = FreeBitsVAE2d(2, 2, enc, dec, free_bits)
    else:
        model = VAE2d(2, 2, enc, dec)
    model.to(device)
    loss_key = "free_bits_loss" if free_bits > 0 else "elbo_loss"

    def train(m: torch.nn.Module) -> tuple[Losses, Losses]:
        return fit(m, train_data, test_data, settings.batch_size, settings.epochs, settings.lr,
                   settings.decay_epochs, loss_key=loss_key, use_tqdm=use_tqdm, seed=settings.seed,
                   threads=settings.threads)

    name = f"vae2d-{mode}" + ("-free-bits" if free_bits > 0 else "")
    config = {"experiment": "vae2d", "mode": mode, "free_bits": free_bits, **asdict(settings)}
    return load_or_train(name, config, model, train)


def trained_vae2d(
    mode: str, profile: str | None = None, device: torch.device | str | None = None, use_tqdm: bool = False,
) -> Trained:
    """The 2d chapter's trained VAE for data ``mode`` (``"univariate"`` or ``"multivariate"``).

    Settings are ``SETTINGS.get(profile)`` (default: the current profile); the model is trained
    on first use and loaded from its checkpoint afterwards (``Trained.loaded`` says which).
    ``Trained.model`` is a :class:`dgm.vae.VAE2d` in eval mode on ``device`` (default: CUDA if
    present), with ``encode``/``decode`` as :func:`dgm.likelihood.exact_log_likelihood` needs;
    ``Trained.train_losses``/``test_losses`` are its curves. Its data: :func:`vae2d_data`.
    """
    if mode not in TWO_D_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid modes: {', '.join(TWO_D_MODES)}")
    return train_vae2d(mode, SETTINGS.get(profile), device=device, use_tqdm=use_tqdm)


def trained_vae2d_models(
    profile: str | None = None, device: torch.device | str | None = None, use_tqdm: bool = False,
) -> dict[str, Trained]:
    """Both trained VAEs of the 2d chapter, ``{"univariate": Trained, "multivariate": Trained}``.

    See :func:`trained_vae2d`; the test points they are evaluated on: ``vae2d_data(mode, profile)[1]``.
    """
    return {mode: trained_vae2d(mode, profile, device, use_tqdm) for mode in TWO_D_MODES}


def vae2d_data(mode: str, profile: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) float32 arrays of ``mode`` with the profile's ``count``: (0.7 count, 2), (0.3 count, 2)."""
    return generate_2d_data(SETTINGS.get(profile).count, mode)


# --------------------------------------------------------------------------- evaluation


def representative_points(data: np.ndarray, k: int = 4) -> np.ndarray:
    """k points of ``data`` spread along its first principal axis, at quantiles 10% ... 90%: (N, 2) -> (k, 2)."""
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or len(data) < k or k < 1:
        raise ValueError(f"need at least k={k} points of shape (N, D), got {data.shape}")
    centred = data - data.mean(axis=0)
    axis = np.linalg.eigh(np.cov(centred.T))[1][:, -1]
    proj = centred @ axis
    targets = np.quantile(proj, np.linspace(0.1, 0.9, k))
    return data[[int(np.abs(proj - t).argmin()) for t in targets]].astype(np.float32)


@dataclass(frozen=True)
class ModeResult:
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

    @property
    def nll_gap(self) -> float:
        """Exact test NLL of the model minus the true distribution's NLL on the same points."""
        return self.true_log_px - self.log_px

    @property
    def elbo_gap(self) -> float:
        """log p(x) - ELBO, which equals the average KL(q(z | x) || p(z | x))."""
        return self.log_px - self.elbo


def evaluate(mode: str, trained: Trained, settings: VAE2dSettings, n_samples: int = 3000) -> ModeResult:
    """Samples, latent statistics, per-dimension KL, exact log-likelihood, ELBO and posterior KL on the test set."""
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
        mode=mode, trained=trained, test_data=test_data,
        samples_noise=samples_noise, samples_nonoise=samples_nonoise, mu_z=mu_z, std_z=std_z,
        kl_per_dim=kl_dims,
        log_px=float(exact_log_likelihood(model, x).mean()),
        true_log_px=float(true_log_px),
        elbo=float(quadrature_elbo(model, x).mean()),
        posterior_kl=float(posterior_kl(model, x).mean()),
    )


@dataclass(frozen=True)
class VAE2dResult:
    """Everything the 2d chapter shows: the two models, the free-bits remedy and what ran."""

    profile: str
    settings: VAE2dSettings
    univariate: ModeResult
    multivariate: ModeResult
    free_bits: ModeResult  # univariate data, trained with free bits
    log: RunLog

    def _named(self) -> dict[str, ModeResult]:
        return {"univariate": self.univariate, "multivariate": self.multivariate,
                "univariate, free bits": self.free_bits}

    def likelihood_table(self) -> Table:
        """Exact and true test NLL, negative ELBO and the gaps, nats per point, one row per model."""
        columns = ("exact NLL", "true NLL", "negative ELBO", "NLL gap", "log p(x) - ELBO", "KL(q ‖ true posterior)")
        return Table(columns, {name: (-r.log_px, -r.true_log_px, -r.elbo, r.nll_gap, r.elbo_gap, r.posterior_kl)
                               for name, r in self._named().items()})

    def kl_table(self) -> Table:
        """Average KL(q(z_j | x) || N(0, 1)) of each latent dimension, nats, one row per model."""
        return Table(("KL of z_1", "KL of z_2", "KL per point"),
                     {name: (*r.kl_per_dim, r.kl_per_point) for name, r in self._named().items()})


def run_vae2d_experiment(
    profile: str | None = None, device: torch.device | str | None = None, use_tqdm: bool = False,
) -> VAE2dResult:
    """Train (or load) the three models of the 2d chapter for ``profile`` and evaluate them."""
    profile = current_profile() if profile is None else profile
    settings = SETTINGS.get(profile)
    log = RunLog()
    results = {}
    for name, mode, free_bits in [("univariate", "univariate", 0.0), ("multivariate", "multivariate", 0.0),
                                  ("free_bits", "univariate", settings.free_bits)]:
        trained = train_vae2d(mode, settings, free_bits, device=device, use_tqdm=use_tqdm)
        log.record(name, settings.epochs, trained.wall_time_s, loaded=trained.loaded)
        results[name] = evaluate(mode, trained, settings)
    return VAE2dResult(profile, settings, log=log, **results)
