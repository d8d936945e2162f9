"""The rehearsal of the gpu profile on a CPU: every chapter with the gpu settings, passes cut short.

The published site is built only with the ``gpu`` profile, on a GPU runner. Here every chapter runs
with those settings (widths, batch sizes, data sizes, the full-size CIFAR-10 archive in the real
format) with every pass over the data cut to its first batches (``DGM_REHEARSAL``), so that a shape,
memory or settings error in the gpu configuration fails here instead of in the publish.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from dgm.experiments import better_priors, iwae_bound, iwae_training, vae_2d, vae_cifar10
from dgm.profiles import RunLog, rehearsal_steps, rehearsed, run_card, smoke_notice
from dgm.training import train_model

from bookutils import ROOT, notebook_chapters

STEPS = 1  # training steps per epoch, and batches per evaluation pass


def test_the_gpu_settings_keep_the_homework_limits():
    # Task 3 of the homework: EPOCHS < 16, LR < 1e-3, 128 < N_LATENS < 1024, 0.1 < BETA < 10
    s = vae_cifar10.SETTINGS.gpu
    assert s.epochs < 16 and s.lr < 1e-3 and 128 < s.n_latent < 1024
    assert all(0.1 < beta < 10 for beta in (s.beta, *s.betas))
    assert s.n_train is None and s.n_test is None  # the full data
    for b in (better_priors.SETTINGS.gpu.budget, better_priors.SETTINGS.gpu.iwae_budget):  # the same limits
        assert b.epochs < 16 and b.lr < 1e-3 and 128 < b.n_latent < 1024 and b.n_train is None
    # Task 2: EPOCHS < 10, LR < 1e-2, for the 2d chapter and the chapters that reuse its settings
    for two_d in (vae_2d.SETTINGS.gpu, iwae_bound.SETTINGS.gpu.vae2d, iwae_training.SETTINGS.gpu.vae2d):
        assert two_d.epochs < 10 and two_d.lr < 1e-2


def test_rehearsal_steps_come_from_the_environment():
    assert rehearsal_steps({}) is None and rehearsal_steps({"DGM_REHEARSAL": " "}) is None
    assert rehearsal_steps({"DGM_REHEARSAL": " 3 "}) == 3
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(ValueError, match="DGM_REHEARSAL must be a positive number"):
            rehearsal_steps({"DGM_REHEARSAL": bad})


class _Counting(torch.nn.Module):
    """A model that counts the batches it sees, training and evaluating."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.batches = 0

    def loss(self, x):
        self.batches += 1
        return {"elbo_loss": ((x - self.w) ** 2).mean()}


def test_a_rehearsal_cuts_every_pass_and_says_so(monkeypatch):
    monkeypatch.delenv("DGM_REHEARSAL", raising=False)
    batches = [torch.full((4, 1), float(i)) for i in range(10)]
    model = _Counting()
    train, test = train_model(model, batches, batches, epochs=3, lr=0.1)
    assert len(train["elbo_loss"]) == 30 and model.batches == 30 + 4 * 10
    assert rehearsed(1000, per_step=7) == 1000 and "REHEARSAL" not in run_card("data").to_markdown()

    monkeypatch.setenv("DGM_REHEARSAL", "2")
    model = _Counting()
    train, test = train_model(model, batches, batches, epochs=3, lr=0.1)
    assert len(train["elbo_loss"]) == 6 and len(test["elbo_loss"]) == 4  # 2 steps per epoch
    assert model.batches == 6 + 4 * 2  # and 2 batches per evaluation
    assert rehearsed(1000) == 2 and rehearsed(1000, per_step=7) == 14 and rehearsed(5, per_step=7) == 5
    card = run_card("data", RunLog(), profile="gpu")
    assert card.as_dict()["run_rehearsal"] == 2
    assert "REHEARSAL: every pass cut to 2 steps" in card.to_markdown()
    for profile in ("smoke", "gpu"):
        assert "rehearsal of the" in smoke_notice(profile)._repr_markdown_()


def test_a_rehearsal_never_shares_weights_or_cached_pages_with_a_real_run(tmp_path, monkeypatch):
    monkeypatch.delenv("DGM_REHEARSAL", raising=False)
    from dgm.book.build import fingerprint
    from dgm.checkpoints import load_or_train

    env = {"DGM_PROFILE": "gpu", "DGM_DATASET": "patches", "DGM_DATA_DIR": str(tmp_path)}
    assert fingerprint(ROOT, env) != fingerprint(ROOT, {**env, "DGM_REHEARSAL": "1"})

    def fit(model):
        return {"elbo_loss": [0.0]}, {"elbo_loss": [0.0, 0.0]}

    model = torch.nn.Linear(1, 1)
    assert not load_or_train("m", {"a": 1}, model, fit, tmp_path).loaded
    monkeypatch.setenv("DGM_REHEARSAL", "1")
    assert not load_or_train("m", {"a": 1}, model, fit, tmp_path).loaded  # not the real one's weights
    assert load_or_train("m", {"a": 1}, model, fit, tmp_path).loaded
    assert len(list(tmp_path.glob("*.pt"))) == 2


def _rehearse(chapters: list[str], archive: Path, env: dict[str, str], out: list) -> None:
    for chapter in chapters:
        proc = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tests" / "rehearse.py"),
                str(ROOT / f"{chapter}.md"),
                "--steps",
                str(STEPS),
            ]
            + ["--archive", str(archive)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        out.append((chapter, proc))


def test_every_chapter_runs_in_a_rehearsal_of_the_gpu_profile(tmp_path, capsys):
    from fakecifar import write_fake_cifar

    archive = tmp_path / "cifar-10-python.tar.gz"
    train_rows, test_rows = write_fake_cifar(archive, n_per_batch=10_000)  # CIFAR-10's 50,000 + 10,000
    assert train_rows.shape == (50_000, 3072) and test_rows.shape == (10_000, 3072)
    env = {
        **os.environ,
        "DGM_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "OMP_NUM_THREADS": "1",  # two chapters at a time, one core each
        "PYTHONPATH": str(ROOT / "tests"),
    }
    env.pop("DGM_DATASET", None)
    chapters = notebook_chapters()
    image = [c for c in chapters if c.endswith("vae_cifar10")]
    heaviest = [c for c in chapters if c.endswith("better_priors")]  # eight trainings, K = 50 among them
    assert image and heaviest, "an image chapter is not in the toc"
    results: list = []
    rest = [c for c in chapters if c not in image + heaviest]
    workers = [  # the two image chapters apart, the others shared out in turn
        threading.Thread(target=_rehearse, args=(part, archive, env, results))
        for part in (image + rest[0::2], heaviest + rest[1::2])
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()

    failed = [f"{c}:\n{p.stderr[-4000:]}" for c, p in results if p.returncode != 0]
    assert not failed, "\n\n".join(failed)
    report = {c: json.loads(p.stdout.strip().splitlines()[-1]) for c, p in results}
    assert sorted(report) == sorted(chapters)
    lines = [f"{'chapter':<28} {'seconds':>8} {'peak MiB':>9}  trainings"]
    for c in chapters:
        r = report[c]
        assert r["profile"] == "gpu" and r["steps"] == STEPS
        lines.append(f"{c:<28} {r['seconds']:>8.1f} {r['peak_rss_mib']:>9}  {len(r['trainings'])}")
    out = ROOT / "test-output"
    out.mkdir(exist_ok=True)
    (out / "rehearsal.txt").write_text("\n".join(lines) + "\n")
    with capsys.disabled():  # shown in every run of the tests
        print("\nRehearsal of the gpu profile (peak resident memory per chapter):\n" + "\n".join(lines))
    # the chapters that train show it; the CIFAR-10 chapter trained its four models on the archive
    cifar = report[image[0]]
    assert cifar["images"] == "CIFAR-10, 50000 train / 10000 test images (archive MD5 verified)"
    assert len(cifar["trainings"]) == len(vae_cifar10.SETTINGS.gpu.betas) + 1  # and the calibrated one
    assert report["book/vae/vae_2d"]["trainings"] == ["univariate", "multivariate", "free_bits"]
    methods = [f"better_{key}" for key in better_priors.KEYS.values()]
    iwae = [f"iwae_conv_k{k}" for k in better_priors.SETTINGS.gpu.iwae_ks]
    assert report["book/vae/better_priors"]["trainings"] == methods + iwae
