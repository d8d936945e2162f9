"""The chapter "Better priors and posteriors": one budget, five ways to train the image VAE, and IWAE.

Settings per execution profile are in :data:`SETTINGS`. :func:`run` loads the CIFAR-10 chapter's
images (with their labels), trains the standard :class:`dgm.vae.ConvVAE` and four variants with the
same data, network and training budget (:data:`METHODS`), and evaluates each: bits per dimension
from the ELBO and from L_K, rate and distortion, active units, the per-dimension KL, the codes of the
test images and samples. It then trains the image VAE on L_K for several K
(:class:`dgm.iwae_gradients.IWAEConvVAE`), with a budget of its own: a step decodes K samples per image.
:meth:`BetterPriorsResult.chapter_values` is every number the chapter states.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from dgm.bits_per_dim import images_per_step, unit_variance_floor
from dgm.checkpoints import Trained
from dgm.collapse import POSTERIOR_DRAWS, kl_per_dimension_to_prior
from dgm.data import load_image_data
from dgm.evaluation import ImageModelReport, evaluate_image_model
from dgm.gaussians import LOG_2PI
from dgm.image_training import ImageBudget, Prepared, fit_image_model, prepare
from dgm.iwae_gradients import IWAEConvVAE
from dgm.profiles import ByProfile, RunLog, rehearsed
from dgm.remedies import METHODS, Remedies, build
from dgm.significance import PairedDifference, against_reference, pairing_gain, with_se, z_threshold
from dgm.tables import Table

#: the table rows' glue names' prefixes (the rows: dgm.remedies.METHODS)
KEYS = {"standard": "std", "KL annealing": "anneal", "free bits": "fb", "VampPrior": "vamp", "IAF": "iaf"}
#: the chance that any of the chapter's paired comparisons (each remedy against the standard VAE,
#: each K against K = 1) calls a difference clear that the test images do not support (Bonferroni)
FALSE_ALARM = 0.05


@dataclass(frozen=True)
class BetterPriorsSettings:
    """What the chapter trains and measures."""

    budget: ImageBudget  # the five methods'
    remedies: Remedies
    eval_k: int  # importance samples of the table's bits per dimension
    eval_n_test: int  # the first test images: every figure of the table is on them
    iwae_budget: ImageBudget  # training with L_K: K decodings per image and step
    iwae_eval_k: int  # the test log-likelihood estimate L_K of the IWAE comparison
    iwae_eval_n_test: int
    iwae_ks: tuple[int, ...] = (1, 5, 50)
    n_samples: int = 36  # samples shown per model
    active_threshold: float = 0.01  # Burda et al.'s criterion for an active unit
    seed: int = 0
    eval_batch_size: int = 500

    def __post_init__(self) -> None:
        if not self.iwae_ks or list(self.iwae_ks) != sorted(set(self.iwae_ks)) or self.iwae_ks[0] != 1:
            raise ValueError(f"iwae_ks must be increasing integers starting at 1, got {self.iwae_ks}")


SETTINGS = ByProfile(
    # Seconds: a few hundred patches, a tiny network; checks that everything runs.
    smoke=BetterPriorsSettings(
        budget=ImageBudget(512, 256, (8, 16, 16, 32), 16, 64, 2, 2e-3),
        remedies=Remedies(0.5, 0.1, 10, 2, 32),  # warmup, free bits, C, IAF steps, hidden
        eval_k=10,
        eval_n_test=64,
        iwae_budget=ImageBudget(128, 64, (8, 16, 16, 32), 16, 64, 1, 2e-3),
        iwae_eval_k=100,
        iwae_eval_n_test=16,
    ),
    # Three minutes on 2 CPU cores: 4000 training images, a small network, 3 epochs for the five
    # methods; for training with L_K (K = 50: 50 decodings per image and step), 768 images, 2 epochs.
    cpu=BetterPriorsSettings(
        budget=ImageBudget(4000, 1000, (8, 16, 32, 64), 32, 64, 3, 2e-3),
        remedies=Remedies(0.5, 0.1, 50, 2, 64),  # warmup, free bits, C, IAF steps, hidden
        eval_k=50,
        eval_n_test=400,
        iwae_budget=ImageBudget(768, 400, (8, 16, 32, 64), 32, 64, 2, 2e-3),
        iwae_eval_k=1000,
        iwae_eval_n_test=32,
    ),
    # The CIFAR-10 chapter's data and network, within its limits (EPOCHS < 16, LR < 1e-3).
    gpu=BetterPriorsSettings(
        budget=ImageBudget(None, None, (32, 64, 128, 256), 256, 128, 10, 5e-4),
        remedies=Remedies(0.3, 0.1, 250, 2, 512),  # warmup, free bits, C, IAF steps, hidden
        eval_k=500,
        eval_n_test=5000,
        eval_batch_size=100,  # and so 1000 decodings per test batch of the K = 50 model
        # batches of 20 as in Burda et al. (2016): K = 50 decodes 1000 codes per step
        iwae_budget=ImageBudget(None, None, (32, 64, 128, 256), 256, 20, 5, 5e-4),
        iwae_eval_k=5000,
        iwae_eval_n_test=2000,
    ),
)


def train_method(prep: Prepared, s: BetterPriorsSettings, method: str, log: RunLog | None = None) -> Trained:
    """Train (or load) the model of ``method`` on ``prep`` with the settings' shared budget."""
    torch.manual_seed(s.seed)
    model, loss_key, extra = build(
        method, tuple(prep.train_x.shape[1:]), s.budget, s.remedies, len(prep.train_x)
    )
    config = {"budget": asdict(s.budget), "method": method, **extra}
    schedule = s.budget.schedule(s.seed, s.eval_batch_size)
    return fit_image_model(prep, f"better_{KEYS[method]}", model, schedule, config, loss_key, log)


def train_iwae(prep: Prepared, s: BetterPriorsSettings, k: int, log: RunLog | None = None) -> Trained:
    """Train (or load) the image VAE on L_k with the settings' IWAE budget."""
    torch.manual_seed(s.seed)
    b = s.iwae_budget
    model = IWAEConvVAE(tuple(prep.train_x.shape[1:]), b.n_latent, 1.0, b.channels, k=k)
    schedule, config = b.schedule(s.seed, s.eval_batch_size), {"budget": asdict(b), "k": k}
    return fit_image_model(prep, f"iwae_conv_k{k}", model, schedule, config, "iwae_loss", log)


@dataclass(frozen=True)
class MethodResult:
    """One row of the table: a trained model and its evaluation on the settings' test images."""

    method: str
    trained: Trained
    report: ImageModelReport  # bounds (L_K: K = settings.eval_k), rate, distortion, latent statistics
    kl_dims: np.ndarray | None  # (d,): KL(q(z_j | x) || p(z_j)); None for the flow (no closed form)
    samples: np.ndarray  # (n, C, H, W) in [0, 1]


def evaluate(method: str, trained: Trained, test_x: torch.Tensor, s: BetterPriorsSettings) -> MethodResult:
    """The row of ``method``: bits per dimension, rate, distortion and the latent space on ``test_x``."""
    model = trained.model.eval()
    # the first test images; in a rehearsal (dgm.profiles), the first few batches of the bound's
    x = test_x[: max(2, rehearsed(s.eval_n_test, per_step=images_per_step(s.eval_k, s.eval_batch_size)))]
    report = evaluate_image_model(model, x, s.eval_k, None, s.active_threshold, s.eval_batch_size, s.seed)
    kl_dims = None if method == "IAF" else kl_per_dimension_to_prior(model, x, seed=s.seed).cpu().numpy()
    torch.manual_seed(s.seed)
    return MethodResult(method, trained, report, kl_dims, model.sample(s.n_samples))


@dataclass(frozen=True)
class IWAEPoint:
    """The image VAE trained on L_K (K = k), evaluated with L_K for K = settings.iwae_eval_k."""

    k: int
    trained: Trained
    report: ImageModelReport


@dataclass(frozen=True)
class BetterPriorsResult:
    """Everything the chapter shows."""

    settings: BetterPriorsSettings
    prep: Prepared  # the five methods' data
    methods: dict[str, MethodResult]  # in the order of METHODS
    iwae_prep: Prepared  # the IWAE comparison's
    iwae: list[IWAEPoint]  # in the order of settings.iwae_ks
    test_labels: np.ndarray  # (n,): the labels of the test images the codes are of
    label_names: tuple[str, ...]
    log: RunLog

    def per_image_bounds(self) -> dict[str, np.ndarray]:
        """Each method's bits per dimension from L_K on each test image: {method: (n,)}."""
        return {m: r.report.bound.per_image for m, r in self.methods.items()}

    def versus_standard(self) -> dict[str, PairedDifference]:
        """Each remedy's bits per dimension from L_K minus the standard VAE's, paired over the test images."""
        return against_reference(self.per_image_bounds(), "standard")

    def versus_k1(self) -> dict[int, PairedDifference]:
        """Each K > 1's bits per dimension from L_K' minus the K = 1 model's, paired over the test images."""
        return against_reference({p.k: p.report.bound.per_image for p in self.iwae}, 1)

    def n_comparisons(self) -> int:
        """The chapter's paired comparisons: each remedy against the standard VAE, each K against K = 1."""
        return len(self.methods) - 1 + len(self.iwae) - 1

    def clear_threshold(self) -> float:
        """|z| beyond which a paired difference is called clear: Bonferroni over all the comparisons."""
        return z_threshold(self.n_comparisons(), FALSE_ALARM)

    def table(self) -> Table:
        """The comparison: bits per dimension from L_K (and the difference from the standard VAE's, with
        its standard error over the test images) and from the ELBO, rate, distortion, active units."""
        k, d = self.settings.eval_k, self.settings.budget.n_latent
        diffs = self.versus_standard()
        rows = {}
        for m, r in self.methods.items():
            e = r.report
            diff = "" if m == "standard" else with_se(diffs[m].mean, diffs[m].se, sign=True)
            rows[m] = (e.bound.total, diff, e.elbo.total, e.rate, e.distortion, f"{e.active} of {d}")
            rows[m] += (str(e.directions),)
        columns = (f"bits/dim (L_{k})", "minus standard", "bits/dim (ELBO)", "rate (nats)")
        return Table((*columns, "distortion (nats)", "active units", "active directions"), rows, digits=3)

    def iwae_table(self) -> Table:
        """Training with L_K: bits per dimension from L_K (the estimate) and the ELBO, gap, active units."""
        k, d = self.settings.iwae_eval_k, self.settings.iwae_budget.n_latent
        diffs = self.versus_k1()
        rows = {}
        for p in self.iwae:
            e, diff = p.report, "" if p.k == 1 else with_se(diffs[p.k].mean, diffs[p.k].se, sign=True)
            rows[f"K = {p.k}"] = (
                e.bound.total,
                diff,
                e.elbo.total,
                e.gap,
                f"{e.active} of {d}",
                str(e.directions),
            )
        columns = (f"bits/dim (L_{k})", "minus K = 1", "bits/dim (ELBO)", "gap (nats)", "active units")
        return Table((*columns, "active directions"), rows, digits=3)

    def chapter_values(self) -> dict[str, float | int | str]:
        """Every number the chapter states, by glue name."""
        s, prep, std = self.settings, self.prep, self.methods["standard"].report
        v: dict[str, float | int | str] = {
            "n_train": len(prep.train_x),
            "n_test": len(prep.test_x),
            "dataset_name": "CIFAR-10" if prep.data.name == "cifar10" else "the stand-in patches",
            "n_latent": s.budget.n_latent,
            "epochs": s.budget.epochs,
            "eval_k": s.eval_k,
            "eval_n": std.n_bound,
            "log_eval_n": math.log(std.n_bound),  # the most information a code can carry about them
            "std_mismatch_min": max(0.0, std.rate - math.log(std.n_bound)),
            "recon_constant": std.n_dims / 2 * LOG_2PI,
            "free_bits": s.remedies.free_bits,
            "n_components": s.remedies.n_components,
            "iaf_steps": s.remedies.iaf_steps,
            "warmup_steps": self.methods["KL annealing"].trained.model.warmup_steps,
            "total_steps": s.budget.epochs * math.ceil(len(prep.train_x) / s.budget.batch_size),
            "fb_max_gap": s.budget.n_latent * s.remedies.free_bits,
            "vamp_pseudo_params": s.remedies.n_components * std.n_dims,
            "floor": unit_variance_floor(),
            "threshold": s.active_threshold,
            "active_draws": POSTERIOR_DRAWS,
            "active_noise": 1 / POSTERIOR_DRAWS,
        }
        for m, r in self.methods.items():
            e, key = r.report, KEYS[m]
            v |= {f"{key}_bpd_k": e.bound.total, f"{key}_bpd": e.elbo.total, f"{key}_rate": e.rate}
            v |= {f"{key}_distortion": e.distortion, f"{key}_explained": e.codes.explained}
            v |= {f"{key}_active": e.active, f"{key}_directions": e.directions}
            if r.kl_dims is not None:
                v[f"{key}_collapsed"] = int((r.kl_dims < s.active_threshold).sum())
        ranked = sorted(self.methods.values(), key=lambda r: r.report.bound.total)
        best, gain = ranked[0].method, std.bound.total - ranked[0].report.bound.total
        most = max(r.report.active for r in ranked)
        diffs, z = self.versus_standard(), self.clear_threshold()
        v["pair_corr_min"], v["pair_sd_ratio"] = pairing_gain(self.per_image_bounds(), "standard")
        for m, d in diffs.items():
            v |= {f"{KEYS[m]}_diff": d.mean, f"{KEYS[m]}_diff_se": d.se}
        v |= {
            "best_method": best,
            "best_model": "the standard VAE's" if best == "standard" else f"the {best} model's",
            "best_gain": gain,
            "best_clause": f"the standard VAE's own, {std.bound.total:.3f}: no method lowered it"
            if best == "standard"
            else f"the {best} model's, {with_se(gain, diffs[best].se)} below the standard VAE's "
            f"{std.bound.total:.3f}",
            "beat_std": ", ".join(r.method for r in ranked if r.report.bound.total < std.bound.total)
            or "none",
            "z_clear": z,
            "n_comparisons": self.n_comparisons(),
            "beat_std_clear": ", ".join(m for m, d in diffs.items() if d.z < -z) or "none",
            "above_std_clear": ", ".join(m for m, d in diffs.items() if d.z > z) or "none",
            "most_active": most,
            "most_active_methods": ", ".join(m for m, r in self.methods.items() if r.report.active == most),
        }
        first = self.iwae[0].report
        v |= {
            "iwae_n_train": len(self.iwae_prep.train_x),
            "iwae_epochs": s.iwae_budget.epochs,
            "iwae_n_latent": s.iwae_budget.n_latent,
            "iwae_eval_k": s.iwae_eval_k,
            "iwae_n": first.n_bound,
            "iwae_au_n": first.n_latent_images,
            "iwae_n_k": len(self.iwae),
        }
        for i, p in enumerate(self.iwae):
            e = p.report
            v |= {f"iwae_k_{i}": p.k, f"iwae_bpd_k_{i}": e.bound.total, f"iwae_bpd_{i}": e.elbo.total}
            v |= {f"iwae_gap_{i}": e.gap, f"iwae_active_{i}": e.active, f"iwae_directions_{i}": e.directions}
        gaps = [p.report.gap for p in self.iwae]
        largest = self.iwae[int(np.argmax(gaps))].k
        trend = (
            "grows with K" if all(a < b for a, b in zip(gaps, gaps[1:])) else f"is largest for K = {largest}"
        )
        v["iwae_gap_trend"] = "falls with K" if all(a > b for a, b in zip(gaps, gaps[1:])) else trend
        top = min(self.iwae, key=lambda p: p.report.bound.total)
        gain, by_k = first.bound.total - top.report.bound.total, self.versus_k1()
        for i, p in enumerate(self.iwae[1:], start=1):
            v |= {f"iwae_diff_{i}": by_k[p.k].mean, f"iwae_diff_se_{i}": by_k[p.k].se}
        clear = [k for k, d in by_k.items() if abs(d.z) > z]
        v |= {
            "iwae_best_k": top.k,
            "iwae_best_gain": gain,
            "iwae_best_clause": "the K = 1 model's: training with a larger K did not lower it"
            if top.k == 1
            else f"the K = {top.k} model's, {with_se(gain, by_k[top.k].se)} bits per dimension below "
            "the K = 1 model's",
            "iwae_clear": ", ".join(f"K = {k}" for k in clear) or "none",
        }
        return {k: (x if isinstance(x, (int, str)) else float(x)) for k, x in v.items()}


def run(
    settings: BetterPriorsSettings, device: torch.device | str | None = None, log: RunLog | None = None
) -> BetterPriorsResult:
    """Load the images, train (or load) every model of the chapter and evaluate them.

    The data are the CIFAR-10 chapter's (:func:`dgm.data.load_image_data`); every training is recorded
    in ``log`` (a new one if None).
    """
    log = RunLog() if log is None else log
    s, b, ib = settings, settings.budget, settings.iwae_budget
    pairs = ((b.n_train, ib.n_train), (b.n_test, ib.n_test))
    n_train, n_test = (None if None in pair else max(pair) for pair in pairs)
    data = load_image_data(n_train=n_train, n_test=n_test)
    prep = prepare(data, b, device)
    methods = {m: evaluate(m, train_method(prep, s, m, log), prep.test_x, s) for m in METHODS}
    iw_prep = prepare(data, ib, device)
    # the bounds on the first test images, the latent statistics on all; a rehearsal cuts both (the
    # bound to one image per step: each takes iwae_eval_k decodings)
    n_bound = max(2, rehearsed(s.iwae_eval_n_test))  # two at least: the comparisons are paired
    x = iw_prep.test_x[: max(2, rehearsed(len(iw_prep.test_x), per_step=s.eval_batch_size))]
    points = []
    for k in s.iwae_ks:
        trained = train_iwae(iw_prep, s, k, log)
        args = (s.iwae_eval_k, n_bound, s.active_threshold, s.eval_batch_size, s.seed)
        points.append(IWAEPoint(k, trained, evaluate_image_model(trained.model, x, *args)))
    n = methods["standard"].report.n_latent_images
    labels = np.zeros(n, np.int64) if prep.data.test_labels is None else prep.data.test_labels[:n]
    names = prep.data.label_names or ("all",)
    return BetterPriorsResult(s, prep, methods, iw_prep, points, labels, names, log)
