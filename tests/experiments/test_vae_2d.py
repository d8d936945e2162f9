"""The 2d experiment: homework helpers, trained-model reuse, and the chapter's claims on the cpu profile."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dgm.data import generate_2d_data
from dgm.experiments.vae_2d import SETTINGS, run, train_vae2d
from dgm.likelihood import exact_log_likelihood
from dgm.vae import VAE2d


@pytest.fixture(scope="session")
def cpu_experiment(tmp_path_factory):
    """The chapter's experiment with the cpu profile's settings, trained once per session from scratch."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DGM_CHECKPOINT_DIR", str(tmp_path_factory.mktemp("checkpoints")))
        return run(SETTINGS.cpu, device="cpu")


# --------------------------------------------------------------------------- homework settings


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_settings_respect_the_homework_ranges(profile):
    s = SETTINGS.get(profile)
    assert s.count == 10000 and s.epochs < 10 and s.lr < 1e-2 and s.decay_epochs < s.epochs


# --------------------------------------------------------------------------- the chapter's claims


def test_diagonal_case_collapses(cpu_experiment):
    r = cpu_experiment.univariate
    assert r.kl_per_point < 0.05
    assert np.abs(r.mu_z).mean(axis=0).max() < 0.1  # encoder means near 0 ...
    assert np.abs(r.std_z.mean(axis=0) - 1).max() < 0.05  # ... and stds near 1: q(z | x) = p(z)
    assert (r.kl_per_dim < 0.05).all()  # no active latent dimension
    # Decoder means barely move with z: "samples without decoder noise" huddle at the data mean.
    assert (r.samples_nonoise.std(axis=0) < 0.2 * r.test_data.std(axis=0)).all()


def test_rotated_case_uses_one_latent_dimension(cpu_experiment):
    r = cpu_experiment.multivariate
    assert r.kl_per_point > 0.75  # well above 0.5 nats
    assert sorted(r.kl_per_dim.round(2) > 0.5) == [False, True]  # one active, one collapsed dimension
    assert r.kl_per_dim.min() < 0.05
    # Decoder means spread along the main axis (1, 1) of the data, not across it.
    cov = np.cov(r.samples_nonoise.T)
    evals, evecs = np.linalg.eigh(cov)
    assert evals[1] > 4 and evals[0] < 0.05 * evals[1]
    assert abs(abs(evecs[:, 1] @ np.array([1, 1]) / np.sqrt(2)) - 1) < 0.02


@pytest.mark.parametrize("name", ["univariate", "multivariate", "free_bits"])
def test_exact_likelihood_matches_the_true_distribution(cpu_experiment, name):
    r = getattr(cpu_experiment, name)
    assert abs(r.nll_gap) < 0.01, r.nll_gap  # exact test NLL within 0.01 nats of the true data NLL
    assert r.elbo_gap > 0  # log p(x) >= ELBO
    # log p(x) - ELBO is the average KL(q(z|x) || p(z|x)): two independent quadratures agree
    assert abs(r.elbo_gap - r.posterior_kl) < 3e-4


def test_free_bits_makes_the_latent_active_without_losing_likelihood(cpu_experiment):
    fb, collapsed = cpu_experiment.free_bits, cpu_experiment.univariate
    lam = cpu_experiment.settings.free_bits
    assert (fb.kl_per_dim > 0.9 * lam).all()
    assert np.abs(fb.mu_z).mean(axis=0).min() > 0.3  # encoder means now depend on x
    assert fb.samples_nonoise.std(axis=0)[0] > 1.0  # decoder means spread along x_1
    assert abs(fb.log_px - collapsed.log_px) < 0.01


def test_run_card_records_every_training(cpu_experiment):
    names = [t.name for t in cpu_experiment.log.trainings]
    assert names == ["univariate", "multivariate", "free_bits"]
    assert all(t.epochs == SETTINGS.cpu.epochs and t.wall_time_s > 0 for t in cpu_experiment.log.trainings)


# --------------------------------------------------------------------------- library pieces


def _smoke_data(mode="univariate"):
    return generate_2d_data(SETTINGS.smoke.count, mode)


def test_trained_models_are_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_CHECKPOINT_DIR", str(tmp_path))
    settings = SETTINGS.smoke
    first = {mode: train_vae2d(mode, settings, device="cpu") for mode in ("univariate", "multivariate")}
    assert not any(t.loaded for t in first.values())
    second = {mode: train_vae2d(mode, settings, device="cpu") for mode in ("univariate", "multivariate")}
    assert all(t.loaded for t in second.values())
    _, test = _smoke_data("multivariate")
    x = torch.as_tensor(test[:50])
    a = exact_log_likelihood(first["multivariate"].model, x)
    b = exact_log_likelihood(second["multivariate"].model, x)
    torch.testing.assert_close(a, b)
    assert second["multivariate"].test_losses == first["multivariate"].test_losses
    single = train_vae2d("univariate", settings, device="cpu")
    assert single.loaded and isinstance(single.model, VAE2d)
    assert not train_vae2d("univariate", settings, free_bits=0.5, device="cpu").loaded  # another model
    with pytest.raises(ValueError, match="univariate, multivariate"):
        train_vae2d("diagonal", settings)


def test_kl_per_point_is_the_closed_form(cpu_experiment):
    r = cpu_experiment.multivariate
    x = torch.as_tensor(r.test_data)
    with torch.no_grad():
        mu_z, log_std_z = r.trained.model.encode(x)
    ref = kl_divergence(Normal(mu_z, log_std_z.exp()), Normal(0.0, 1.0)).sum(dim=1).mean()
    assert r.kl_per_point == pytest.approx(float(ref), rel=1e-5)


def test_representative_points_follow_the_main_axis():
    from dgm.experiments.vae_2d import representative_points

    _, test = _smoke_data("multivariate")
    pts = representative_points(test, 4)
    assert pts.shape == (4, 2) and all(any((p == t).all() for t in test) for p in pts)
    proj = (pts - test.mean(0)) @ np.array([1.0, 1.0]) / np.sqrt(2)  # the data's main axis
    assert (np.diff(proj) > 0).all() or (np.diff(proj) < 0).all()
    with pytest.raises(ValueError):
        representative_points(test[:2], 4)


def test_tables_show_the_results(cpu_experiment):
    md = cpu_experiment.likelihood_table().to_markdown().splitlines()
    assert len(md) == 2 + 3 and md[0].count("|") == 8
    r = cpu_experiment.multivariate
    assert (
        md[3].startswith("| multivariate | ") and f"{-r.log_px:.4f}" in md[3] and f"{r.elbo_gap:.4f}" in md[3]
    )
    latent = cpu_experiment.latent_table()
    assert list(latent.rows)[:2] == ["univariate: z_1", "univariate: z_2"] and len(latent.rows) == 6
    mu, std = cpu_experiment.univariate.mu_z[:, 1], cpu_experiment.univariate.std_z[:, 1]
    assert latent.rows["univariate: z_2"] == pytest.approx((mu.mean(), mu.std(), std.mean(), std.std()))
    kl = cpu_experiment.kl_table()
    assert kl.rows["univariate, free bits"][:2] == tuple(cpu_experiment.free_bits.kl_per_dim)
    assert kl._repr_markdown_() == kl.to_markdown()


def test_the_chapters_remaining_claims(cpu_experiment):
    from dgm.collapse import diagonal_fit_penalty
    from dgm.data import true_2d_distribution

    uni, multi, fb = cpu_experiment.univariate, cpu_experiment.multivariate, cpu_experiment.free_bits
    # "The two runs reach almost the same negative ELBO" (a rotation does not change the entropy)
    assert abs(uni.elbo - multi.elbo) < 0.02
    assert uni.true_log_px == pytest.approx(multi.true_log_px, abs=1e-6)  # float32 data
    # "On the rotated data the KL term grows ... on the diagonal data it shrinks towards zero"
    kl_uni, kl_multi = uni.trained.test_losses["kl_loss"], multi.trained.test_losses["kl_loss"]
    assert kl_multi[-1] > kl_multi[0] and kl_uni[-1] < min(0.05, kl_uni[0])
    # "... and gets back more than that in reconstruction": better than any collapsed model
    assert multi.elbo > multi.true_log_px - diagonal_fit_penalty(true_2d_distribution("multivariate")[1])
    # free bits: "the ELBO gap grows"
    assert fb.elbo_gap > 2 * uni.elbo_gap


def test_chapter_values_are_the_results_numbers(cpu_experiment):
    v = cpu_experiment.chapter_values()
    uni, multi, fb = cpu_experiment.univariate, cpu_experiment.multivariate, cpu_experiment.free_bits
    s = cpu_experiment.settings
    assert (v["count"], v["epochs"], v["decay_epochs"], v["lr"], v["batch_size"], v["free_bits"]) == (
        s.count,
        s.epochs,
        s.decay_epochs,
        s.lr,
        s.batch_size,
        s.free_bits,
    )
    for tag, r in (("uni", uni), ("multi", multi), ("fb", fb)):
        assert v[f"{tag}_exact_nll"] == pytest.approx(-r.log_px) and v[f"{tag}_neg_elbo"] == pytest.approx(
            -r.elbo
        )
        assert v[f"{tag}_nll_gap"] == pytest.approx(v[f"{tag}_exact_nll"] - v[f"{tag}_true_nll"])
        assert v[f"{tag}_elbo_gap"] == pytest.approx(v[f"{tag}_neg_elbo"] - v[f"{tag}_exact_nll"])
    assert v["kl_per_point_multivariate"] == pytest.approx(float(multi.kl_per_dim.sum()))
    # what the chapter says of the collapsed encoder, on the numbers it quotes
    assert v["uni_mu_abs"] < 0.1 and v["uni_std_dev"] < 0.05 and v["uni_nonoise_ratio"] < 0.2
    cov = np.array([[5.0, 4.0], [4.0, 5.0]])  # the rotated data's covariance
    assert v["diag_penalty"] == pytest.approx(0.5 * np.log(25 / np.linalg.det(cov)), rel=1e-9)
