"""The chapter on training with the bound: its settings, its model, and every claim its text makes, on a
cpu-profile run and on the glued values of the built (smoke) book."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from dgm.experiments.iwae_training import SETTINGS, IWAEVAE2d, plot_snr, run
from dgm.experiments.vae_2d import SETTINGS as VAE2D_SETTINGS

from bookutils import glued_values

CHAPTER = "book/vae/iwae_training.ipynb"


def test_settings_are_the_2d_chapters_and_refuse_bad_ks():
    for profile in ("smoke", "cpu", "gpu"):
        assert SETTINGS.get(profile).vae2d == VAE2D_SETTINGS.get(profile)  # same data, networks, budget
    assert SETTINGS.cpu.ks == SETTINGS.gpu.ks == (1, 5, 50)  # the list
    for bad in (dict(ks=(5, 50)), dict(ks=(1, 1)), dict(snr_ks=()), dict(snr_draws=1)):
        with pytest.raises(ValueError):
            replace(SETTINGS.smoke, **bad)


def test_the_model_trains_on_the_bound_and_monitors_the_elbo():
    torch.manual_seed(0)
    model = IWAEVAE2d(2, 2, [8], [8], k=5)
    losses = model.loss(torch.randn(16, 2))
    assert set(losses) == {"elbo_loss", "recon_loss", "kl_loss", "iwae_loss"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    losses["iwae_loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    with pytest.raises(ValueError, match="k must be"):
        IWAEVAE2d(2, 2, [8], [8], k=0)


def check_claims(v: dict, cpu_profile: bool) -> None:
    """The chapter's statements on its numbers (glued or computed); the measured ones on a cpu run only."""
    ks = SETTINGS.cpu.ks if cpu_profile else SETTINGS.smoke.ks
    assert v["it_k_max"] == ks[-1]
    for t in ("univa", "multi"):
        assert v[f"it_{t}_nll_change"] == pytest.approx(
            v[f"it_{t}_k1_nll"] - v[f"it_{t}_k{ks[-1]}_nll"], abs=1e-9
        )
        assert v[f"it_{t}_kmax_elbo_gap"] == v[f"it_{t}_k{ks[-1]}_elbo_gap"]
        assert v[f"it_{t}_kmax_active"] == v[f"it_{t}_k{ks[-1]}_active"]
        for k in ks:
            assert v[f"it_{t}_k{k}_elbo_gap"] > -1e-4  # log p(x) >= ELBO, up to the quadrature's error
    nll_gaps = [abs(v[f"it_{t}_k{k}_nll_gap"]) for t in ("univa", "multi") for k in ks]
    assert v["it_max_nll_gap"] == pytest.approx(max(nll_gaps))
    assert v["it_snr_iwae_enc_drop"] == pytest.approx(1 / v["it_snr_iwae_enc_ratio"])
    assert v["it_unbiased_max_z"] < v["it_z_crit"]  # DReG and IWAE agree in expectation
    assert 0 < v["it_n_encoder_varying"] <= v["it_n_encoder_params"]
    if cpu_profile:
        for t in ("univa", "multi"):
            assert abs(v[f"it_{t}_nll_change"]) < 0.01  # "cannot improve on that"
            gaps = [v[f"it_{t}_k{k}_elbo_gap"] for k in ks]
            assert gaps == sorted(gaps) and gaps[-1] > gaps[0]  # "the gap grows with K"
        assert v["it_max_nll_gap"] < 0.01  # every model near the truth
        assert v["it_univa_k1_active"] == v["it_univa_kmax_active"] == 0  # "did not make the latent useful"
        assert v["it_univa_k1_directions"] == v["it_univa_kmax_directions"] == 0
        # "the code is as one-dimensional as before": one direction whatever the per-coordinate count
        assert v["it_multi_k1_directions"] == v["it_multi_kmax_directions"] == 1
        assert v["it_multi_kmax_active"] >= v["it_multi_k1_active"] >= 1
        snr_ks = SETTINGS.cpu.snr_ks
        enc = [v[f"it_snr_iwae_enc_{k}"] for k in snr_ks]
        dec = [v[f"it_snr_iwae_dec_{k}"] for k in snr_ks]
        dreg = [v[f"it_snr_dreg_enc_{k}"] for k in snr_ks]
        assert enc == sorted(enc, reverse=True) and dec == sorted(dec) and dreg == sorted(dreg)
        assert v["it_snr_iwae_enc_slope"] < -0.2 and v["it_snr_iwae_dec_slope"] > 0.2  # "falls", "grows"
        assert v["it_snr_dreg_enc_slope"] > 0.2 and v["it_snr_dreg_enc_ratio"] > 1  # "instead grows"


@pytest.fixture(scope="session")
def cpu_result(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DGM_CHECKPOINT_DIR", str(tmp_path_factory.mktemp("iwae_training_checkpoints")))
        return run(SETTINGS.cpu, device="cpu")


def test_chapter_claims_hold_in_the_cpu_profile(cpu_result):
    v = cpu_result.chapter_values()
    check_claims(v, cpu_profile=True)
    m = cpu_result.models["multivariate", 50]
    assert v["it_multi_k50_nll"] == pytest.approx(-m.log_px) and v["it_multi_k50_active"] == m.active
    assert m.active == int((m.mean_variance > cpu_result.settings.active_threshold).sum())
    assert [t.name for t in cpu_result.log.trainings] == [
        f"{mode}_k{k}" for mode in ("univariate", "multivariate") for k in (1, 5, 50)
    ]
    table = cpu_result.snr_table().to_markdown().splitlines()
    assert len(table) == 2 + len(cpu_result.settings.snr_ks) and "IWAE encoder" in table[0]
    assert len(cpu_result.models_table().rows) == 6
    fig = plot_snr(cpu_result)
    assert len(fig.axes) == 2 and all(ax.get_xscale() == "log" for ax in fig.axes)
    slope = np.polyfit(
        np.log(cpu_result.settings.snr_ks),
        np.log([cpu_result.snr["iwae", k].encoder for k in cpu_result.settings.snr_ks]),
        1,
    )[0]
    assert v["it_snr_iwae_enc_slope"] == pytest.approx(slope)


@pytest.mark.book
def test_glued_numbers_in_the_built_chapter(built_book):
    assert built_book.returncode == 0, built_book.log[-3000:]
    v = glued_values(built_book.executed / CHAPTER)
    assert v["run_profile"] == "smoke"
    check_claims(v, cpu_profile=False)
