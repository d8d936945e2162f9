"""Cold-run time of every chapter's experiment: ``run(SETTINGS.get(profile))`` with no checkpoints.

Each experiment runs in this process with a fresh, empty checkpoint folder, so every model it needs
is trained (the IWAE bound chapter's experiment trains the 2d chapter's models again: it reuses them
only through checkpoints). Prints one line per experiment and the total.

Usage: ``python benchmarks/experiment_times.py [--profile cpu] [--only iwae_training vae_cifar10]``
(``DGM_DATASET=patches`` for the CIFAR-10 chapter's stand-in when CIFAR-10 cannot be downloaded).
"""

from __future__ import annotations

import argparse
import importlib
import os
import tempfile
import time
from pathlib import Path

EXPERIMENTS = sorted(
    p.stem
    for p in (Path(__file__).resolve().parents[1] / "src" / "dgm" / "experiments").glob("*.py")
    if p.stem != "__init__"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu", choices=("smoke", "cpu", "gpu"))
    parser.add_argument("--only", nargs="*", choices=EXPERIMENTS, default=EXPERIMENTS)
    args = parser.parse_args()
    total = 0.0
    print(f"== cold experiment times, {args.profile} profile")
    for name in args.only:
        module = importlib.import_module(f"dgm.experiments.{name}")
        with tempfile.TemporaryDirectory() as ckpt:
            os.environ["DGM_CHECKPOINT_DIR"] = ckpt
            start = time.perf_counter()
            result = module.run(module.SETTINGS.get(args.profile))
            elapsed = time.perf_counter() - start
        trainings = sum(t.wall_time_s for t in result.log.trainings)
        print(
            f"{name:<24} {elapsed:8.1f} s   (training {trainings:.1f} s, {len(result.log.trainings)} models)"
        )
        total += elapsed
    print(f"{'total':<24} {total:8.1f} s")


if __name__ == "__main__":
    main()
