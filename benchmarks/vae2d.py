"""Benchmark of the 2d VAE chapter: likelihood quality of the trained models and training speed.

Prints, in one run:

1. for each trained model of the chapter, its exact test NLL minus the true data distribution's
   NLL on the same points (target: below 0.01 nats in the cpu profile), the ELBO gap
   log p(x) - ELBO, and the KL from q(z|x) to the true posterior;
2. training time per epoch of the package's path (``dgm.training.fit``: batches sliced
   from one tensor, one torch thread) against the homework's path (``DataLoader`` over a numpy
   array, torch's default threads), and the two mixed variants, as ratios.

Usage: ``python benchmarks/vae2d.py [--profile cpu] [--repeats 5]``. Trained models come from the
checkpoint directory (``$DGM_CHECKPOINT_DIR``) when present, and are trained otherwise.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader

from dgm.data import generate_2d_data
from dgm.experiments.vae_2d import SETTINGS, run
from dgm.loaders import TensorLoader
from dgm.profiles import device_name
from dgm.training import torch_threads, train_model
from dgm.vae import VAE2d


def quality(profile: str) -> bool:
    start = time.perf_counter()
    result = run(SETTINGS.get(profile))
    print(f"== quality ({profile} profile; models and evaluation took {time.perf_counter() - start:.1f} s)")
    print(
        f"{'model':24s} {'exact NLL - true NLL':>21s} {'log p(x) - ELBO':>16s} {'KL(q || p(z|x))':>16s}"
        f" {'KL per point':>13s}  loaded"
    )
    ok = True
    for name, r in (
        ("univariate", result.univariate),
        ("multivariate", result.multivariate),
        ("univariate, free bits", result.free_bits),
    ):
        print(
            f"{name:24s} {r.nll_gap:21.5f} {r.elbo_gap:16.5f} {r.posterior_kl:16.5f} {r.kl_per_point:13.4f}"
            f"  {r.trained.loaded}"
        )
        ok &= abs(r.nll_gap) < 0.01
    print(f"target |exact NLL - true NLL| < 0.01 nats for every model: {'met' if ok else 'NOT MET'}")
    return ok


def epoch_time(loader_kind: str, threads: int | None, profile: str, epochs: int = 2) -> float:
    """Seconds per epoch of train_model on the multivariate data with the profile's settings."""
    s = SETTINGS.get(profile)
    train, test = generate_2d_data(s.count, "multivariate")
    if loader_kind == "DataLoader(numpy)":
        train_loader = DataLoader(train, batch_size=s.batch_size, shuffle=True)
        test_loader = DataLoader(test, batch_size=s.batch_size)
    else:
        train_loader = TensorLoader(torch.as_tensor(train), s.batch_size, shuffle=True, seed=0)
        test_loader = TensorLoader(torch.as_tensor(test), max(s.batch_size, 1000))
    torch.manual_seed(0)
    model = VAE2d(2, 2, list(s.enc_hidden_sizes), list(s.dec_hidden_sizes))
    with torch_threads(threads):
        start = time.perf_counter()
        train_model(model, train_loader, test_loader, epochs, s.lr, loss_key="elbo_loss", device="cpu")
        return (time.perf_counter() - start) / epochs


def speed(profile: str, repeats: int) -> None:
    variants = [
        ("homework: DataLoader(numpy), default threads", "DataLoader(numpy)", None),
        ("DataLoader(numpy), 1 thread", "DataLoader(numpy)", 1),
        ("sliced batches, default threads", "TensorLoader", None),
        ("package (fit): sliced batches, 1 thread", "TensorLoader", 1),
    ]
    epoch_time("TensorLoader", 1, profile, epochs=1)  # warm-up
    times: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    for _ in range(repeats):  # interleaved, so that load from other processes hits all variants alike
        for name, kind, threads in variants:
            times[name].append(epoch_time(kind, threads, profile))
    s = SETTINGS.get(profile)
    print(
        f"\n== training time per epoch (multivariate data, "
        f"{len(generate_2d_data(s.count, 'multivariate')[0])} points, "
        f"batch {s.batch_size}, hidden {s.enc_hidden_sizes}; median of {repeats}; {device_name('cpu')})"
    )
    base = statistics.median(times[variants[0][0]])
    for name, _, _ in variants:
        med = statistics.median(times[name])
        print(
            f"{name:46s} {med:7.3f} s/epoch   speed-up x{base / med:5.2f}   "
            f"(min {min(times[name]):.3f}, max {max(times[name]):.3f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, default threads {torch.get_num_threads()}")
    quality(args.profile)
    speed(args.profile, args.repeats)


if __name__ == "__main__":
    main()
