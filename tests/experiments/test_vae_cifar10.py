"""The CIFAR-10 chapter: its experiment code, and every claim its text makes, on the built book."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.stats import norm

from dgm.calibration import calibrate
from dgm.data import ImageData
from dgm.experiments.vae_cifar10 import SETTINGS, beta_sweep, prepare, run, train_conv_vae
from dgm.profiles import RunLog
from dgm.reconstruction import interpolation_rows, reconstruct, reconstruction_error, reconstruction_pairs

from bookutils import execute_chapter, glued_values

CHAPTER = "book/vae/vae_cifar10"
TINY = replace(
    SETTINGS.smoke,
    n_train=None,
    n_test=None,
    channels=(4, 8, 8, 8),
    n_latent=3,
    batch_size=16,
    epochs=1,
    betas=(0.5, 1.0, 2.0),
)


def _tiny_data(seed: int = 0) -> ImageData:
    rng = np.random.default_rng(seed)
    train, test = rng.random((48, 3, 8, 8), dtype=np.float32), rng.random((16, 3, 8, 8), dtype=np.float32)
    return ImageData(train, test, "patches", "a test")


def test_gpu_profile_uses_the_homework_ranges():
    gpu, cpu = SETTINGS.gpu, SETTINGS.cpu
    assert gpu.n_train is None and gpu.n_test is None  # the full training set
    assert gpu.epochs < 16 and gpu.lr < 1e-3 and 128 < gpu.n_latent < 1024
    assert all(0.1 < b < 10 for b in (gpu.beta, *gpu.betas))
    assert gpu.channels == (32, 64, 128, 256)  # the homework's suggestion
    for s in (SETTINGS.smoke, cpu, gpu):
        assert len(s.betas) >= 3 and s.beta in s.betas
    assert cpu.n_train < 50_000 and cpu.epochs * cpu.n_train < gpu.epochs * 50_000


def test_trained_weights_are_reused_and_data_changes_retrain(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_CHECKPOINT_DIR", str(tmp_path))
    prep = prepare(_tiny_data(), TINY, "cpu")
    assert prep.train_x.min() >= -1 and prep.train_x.max() <= 1 and prep.train_x.min() < -0.9
    log = RunLog()
    first = train_conv_vae(prep, TINY, beta=1.0, log=log, use_tqdm=False)
    assert not first.loaded and len(first.train_losses["elbo_loss"]) == 3  # 48 / 16 steps
    again = RunLog()
    second = train_conv_vae(prep, TINY, beta=1.0, log=again, use_tqdm=False)
    assert second.loaded and again.trainings[0].loaded
    assert again.trainings[0].wall_time_s == pytest.approx(first.wall_time_s)
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)
    other = prepare(_tiny_data(seed=1), TINY, "cpu")  # other data: another key
    assert not train_conv_vae(other, TINY, beta=1.0, use_tqdm=False).loaded
    calibrated = train_conv_vae(prep, TINY, beta=1.0, calibrated=True, log=log, use_tqdm=False)
    assert not calibrated.loaded and calibrated.model.log_std_x.abs().sum() > 0
    assert [t.name for t in log.trainings] == ["conv_vae_beta1", "calibrated_vae_beta1"]


def test_beta_sweep_reuses_the_main_model(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_CHECKPOINT_DIR", str(tmp_path))
    prep = prepare(_tiny_data(), TINY, "cpu")
    main = train_conv_vae(prep, TINY, beta=1.0, use_tqdm=False)
    log = RunLog()
    points = beta_sweep(prep, replace(TINY, n_samples=4), log, trained={1.0: main})
    assert [p.beta for p in points] == [0.5, 1.0, 2.0]
    assert sorted(t.name for t in log.trainings) == ["conv_vae_beta0.5", "conv_vae_beta2"]
    assert points[1].rate == main.test_losses["kl_loss"][-1]
    assert points[1].distortion == main.test_losses["recon_loss"][-1]
    assert points[0].samples.shape == (4, 3, 8, 8)


def test_evaluation_helpers_against_numpy():
    torch.manual_seed(0)
    prep = prepare(_tiny_data(), TINY, "cpu")
    from dgm.vae import ConvVAE

    model = ConvVAE((3, 8, 8), 3, channels=TINY.channels).eval()
    x = prep.test_x
    err = reconstruction_error(model, prep.test_x, prep.train_x, batch_size=5)
    images = (x.numpy() + 1) / 2
    rec = np.clip((reconstruct(model, x).numpy() + 1) / 2, 0, 1)
    mean_image = (prep.train_x.numpy() + 1).mean(axis=0) / 2
    assert err.reconstruction == pytest.approx(((rec - images) ** 2).mean(), rel=1e-5)
    assert err.mean_image == pytest.approx(((mean_image - images) ** 2).mean(), rel=1e-5)
    assert err.other_image == pytest.approx(((np.roll(images, 1, axis=0) - images) ** 2).mean(), rel=1e-5)
    pairs = reconstruction_pairs(model, x[:4])
    assert pairs.shape == (8, 3, 8, 8)
    np.testing.assert_allclose(pairs[0::2], images[:4], atol=1e-6)
    np.testing.assert_allclose(pairs[1::2], rec[:4], atol=1e-6)
    rows = interpolation_rows(model, x[:2], x[2:4], n_steps=10)
    assert rows.shape == (20, 3, 8, 8)
    np.testing.assert_allclose(rows[9], rec[2], atol=1e-6)  # the first row ends at x2's reconstruction


def test_run_trains_every_model_and_its_values_are_the_chapters(tmp_path, monkeypatch):
    monkeypatch.setenv("DGM_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("DGM_DATASET", "patches")
    settings = replace(TINY, n_train=48, n_test=16, n_samples=4, calibration_images=32)
    result = run(settings, device="cpu")
    assert [t.name for t in result.log.trainings] == [
        "conv_vae_beta1",
        "conv_vae_beta0.5",
        "conv_vae_beta2",
        "calibrated_vae_beta1",
    ]
    assert result.prep.train_x.shape == (48, 3, 32, 32) and result.model is result.main.model
    v = result.chapter_values()
    assert v["n_train"] == 48 and v["n_test"] == 16 and v["dataset_name"] == "the stand-in patches"
    assert v["n_dims"] == 3 * 32 * 32 and v["recon_constant"] == pytest.approx(
        3072 / 2 * math.log(2 * math.pi)
    )
    assert v["main_elbo"] == pytest.approx(v["main_recon"] + v["main_beta"] * v["main_kl"], rel=1e-6)
    assert v["main_elbo"] == result.main.test_losses["elbo_loss"][-1] and v["main_epochs"] == settings.epochs
    assert [v[f"sweep_beta_{i}"] for i in range(int(v["sweep_n"]))] == [0.5, 1.0, 2.0]
    assert v["sweep_rate_1"] == v["main_kl"] and v["sweep_distortion_1"] == v["main_recon"]
    assert v["bpd_unit"] == result.bpd_unit.total and v["bpd_cal"] == result.bpd_calibrated.total
    assert v["bpd_gain"] == pytest.approx(v["bpd_unit"] - v["bpd_cal"])
    assert v["bpd_posthoc"] == result.bpd_posthoc.total != v["bpd_unit"]
    sigma = result.calibrated.model.log_std_x.exp().flatten().tolist()
    assert [v[f"sigma_{c}"] for c in "rgb"] == pytest.approx(sigma)
    assert v["mse_recon"] == result.reconstruction.reconstruction
    check_types = {k: type(x) for k, x in v.items()}
    assert set(check_types.values()) <= {int, float, str}, check_types


def test_calibrate_fits_sigma_to_the_squared_error():
    torch.manual_seed(0)
    prep = prepare(_tiny_data(), TINY, "cpu")
    from dgm.vae import ConvVAE

    model = ConvVAE((3, 8, 8), 3, channels=TINY.channels).eval()
    torch.manual_seed(1)
    cal = calibrate(model, prep.train_x, batch_size=1000)
    torch.manual_seed(1)
    with torch.no_grad():
        mu_x = model(prep.train_x)[2]  # the same noise
    expected = ((prep.train_x - mu_x) ** 2).mean(dim=(0, 2, 3)).numpy()
    np.testing.assert_allclose(cal.log_std_x.exp().flatten().numpy() ** 2, expected, rtol=1e-5)
    for a, b in zip(model.decoder.parameters(), cal.decoder.parameters()):
        assert torch.equal(a, b)


# --------------------------------------------------------------------------- the built chapter


def _parsed(notebook) -> dict:
    """The values a notebook glued, parsed from their text form (numbers as numbers, strings unquoted)."""
    return glued_values(notebook)


def _values(built_book) -> dict:
    """Glued values of the executed chapter of the built book."""
    return _parsed(built_book.executed / f"{CHAPTER}.ipynb")


def _cells(built_book) -> list[dict]:
    nb = json.loads((built_book.executed / f"{CHAPTER}.ipynb").read_text())
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


@pytest.mark.book
def test_chapter_claims(built_book):
    assert built_book.returncode == 0, built_book.log[-3000:]
    g = _values(built_book)
    assert g["run_profile"] == "smoke"
    check_claims(g)
    # The smoke profile never downloads: it labels its stand-in data.
    assert g["run_dataset"].startswith("STAND-IN, not CIFAR-10")
    assert g["dataset_name"] == "the stand-in patches"


def check_claims(g: dict) -> None:
    """Every claim the chapter's text makes, on its glued values (any profile)."""
    # The objective: the constant of the unit-variance Gaussian, and elbo = recon + beta * kl.
    assert g["recon_constant"] == pytest.approx(g["n_dims"] / 2 * math.log(2 * math.pi))
    assert g["main_elbo"] == pytest.approx(g["main_recon"] + g["main_beta"] * g["main_kl"], rel=1e-6)
    assert g["main_half_sq"] == pytest.approx(g["main_recon"] - g["recon_constant"])
    assert g["main_elbo"] < g["main_elbo_start"], "training lowered the test loss"
    # Reconstructions are closer to their inputs than the two baselines.
    assert g["mse_recon"] < g["mse_mean"] < g["mse_other"]
    # The beta sweep: at least three values; rate falls and distortion rises with beta.
    n = int(g["sweep_n"])
    assert n >= 3
    betas = [g[f"sweep_beta_{i}"] for i in range(n)]
    rates = [g[f"sweep_rate_{i}"] for i in range(n)]
    distortions = [g[f"sweep_distortion_{i}"] for i in range(n)]
    assert betas == sorted(betas) and g["main_beta"] in betas
    assert all(a > b for a, b in zip(rates, rates[1:])), rates
    assert all(a < b for a, b in zip(distortions, distortions[1:])), distortions
    # Bits per dimension: the floor, the parts, and the calibrated decoder's gain.
    assert g["floor"] == pytest.approx(-np.log2(norm.cdf(1 / 255) - norm.cdf(-1 / 255)), rel=1e-9)
    assert g["bpd_offset"] == pytest.approx(np.log2(255 / 2))
    assert g["bpd_unit"] == pytest.approx(g["bpd_offset"] + g["bpd_unit_recon"] + g["bpd_unit_kl"])
    assert g["bpd_unit"] > g["floor"]
    # the importance-weighted bound: tighter than the ELBO, still above the floor
    assert g["floor"] < g["bpd_unit_iw"] < g["bpd_unit"] and g["bpd_k"] > 1
    assert g["bpd_iw_gain"] == pytest.approx(g["bpd_unit"] - g["bpd_unit_iw"])
    assert g["bpd_iw_gain_nats"] > 3 * g["bpd_iw_gain_se_nats"] > 0  # "up to a few standard errors"
    assert g["bpd_iw_gain_nats"] == pytest.approx(g["bpd_iw_gain"] * g["n_dims"] * math.log(2), rel=1e-6)
    assert g["bpd_unit_kl"] == pytest.approx(g["main_kl"] / (g["n_dims"] * math.log(2)), rel=0.2)
    assert g["bpd_cal"] < g["bpd_unit"] and g["bpd_posthoc"] < g["bpd_unit"]
    assert g["bpd_gain"] == pytest.approx(g["bpd_unit"] - g["bpd_cal"])
    assert g["cal_vs_floor"] == ("below" if g["bpd_cal"] < g["floor"] else "still above")
    assert g["cal_kl"] > g["main_kl"], "a small sigma acts as a small beta: more rate"
    sigmas = [g[f"sigma_{c}"] for c in "rgb"]
    assert g["sigma2_min"] == pytest.approx(min(sigmas) ** 2) and g["sigma2_max"] == pytest.approx(
        max(sigmas) ** 2
    )
    assert all(g[f"sigma_{c}_levels"] == pytest.approx(g[f"sigma_{c}"] * 127.5) for c in "rgb")
    # The run card lists every training, and says which data were used.
    for name in ("conv_vae_beta0.2", "conv_vae_beta1", "conv_vae_beta5", "calibrated_vae_beta1"):
        assert g[f"run_epochs_{name}"] == g["main_epochs"]
    assert g["run_dataset"].startswith("CIFAR-10" if g["dataset_name"] == "CIFAR-10" else "STAND-IN")


@pytest.mark.book
def test_chapter_opens_with_the_data_notice_and_shows_each_figure_once(built_book):
    assert built_book.returncode == 0, built_book.log[-3000:]
    cells = _cells(built_book)
    first = "".join(cells[0]["outputs"][0]["data"]["text/html"])
    assert "admonition warning" in first and "not CIFAR-10" in first
    html = (built_book.html / f"{CHAPTER}.html").read_text()
    assert html.index("These images are a stand-in") < html.index('id="the-data"'), (
        "the notice leads the page"
    )
    for cell in cells:
        source = "".join(cell["source"])
        # a figure is an output whose best form is a PNG; an animation's PNG is its still, for the PDF
        images = sum(
            "image/png" in o.get("data", {}) and "text/html" not in o["data"] for o in cell["outputs"]
        )
        if "rate_distortion_animation(" in source:
            (anim,) = [o for o in cell["outputs"] if "text/html" in o.get("data", {})]
            assert "image/png" in anim["data"] and images == 0, source
        elif "display(" in source:
            assert images == 3, source  # one figure per beta of the smoke sweep
        elif any(
            f in source
            for f in ("show_samples(", "visualize_images(", "plot_curves(", "plot_rate_distortion(")
        ):
            assert images == 1, f"{images} images from:\n{source}"
        else:
            assert images == 0, source


@pytest.mark.slow
def test_chapter_claims_hold_in_the_cpu_profile(tmp_path):
    # What a reader of a cpu build sees, on the stand-in data (CIFAR-10 cannot be downloaded here):
    # the chapter executed as it is, and every claim checked on the values it glued.
    env = {"DGM_PROFILE": "cpu", "DGM_DATASET": "patches", "DGM_CHECKPOINT_DIR": str(tmp_path / "ckpt")}
    g = execute_chapter(CHAPTER, tmp_path, **env)
    assert g["run_profile"] == "cpu" and g["dataset_name"] == "the stand-in patches"
    assert 0 < g["n_train"] <= SETTINGS.cpu.n_train  # the profile's subset (the stand-in may have fewer)
    check_claims(g)


def test_sweep_table_has_one_row_per_beta():
    from dgm.experiments.vae_cifar10 import SweepPoint, sweep_table

    points = [SweepPoint(0.5, 30.25, 100.0, np.zeros(1)), SweepPoint(2.0, 4.0, 150.5, np.zeros(1))]
    lines = sweep_table(points).to_markdown().splitlines()
    assert lines[0] == "| | rate (nats) | distortion (nats) |"
    assert lines[2:] == ["| β = 0.5 | 30.2 | 100.0 |", "| β = 2 | 4.0 | 150.5 |"]  # f"{30.25:.1f}" is 30.2
    with pytest.raises(ValueError, match="no points"):
        sweep_table([])


def test_the_sweep_scrubs_one_frame_per_beta():
    from dgm.animation import rate_distortion_animation

    samples = [np.full((4, 3, 8, 8), v, dtype=np.float32) for v in (0.2, 0.5, 0.8)]
    anim = rate_distortion_animation([0.5, 1.0, 2.0], [30.0, 20.0, 10.0], [100.0, 120.0, 150.0], samples)
    assert anim.n_frames == 3 and anim.html.count("data:image/png;base64") == 3
    assert 'type="range"' in anim.html and "https://" not in anim.html
    with pytest.raises(ValueError, match="one set of samples per beta"):
        rate_distortion_animation([0.5, 1.0], [30.0, 20.0], [100.0, 120.0], samples)
