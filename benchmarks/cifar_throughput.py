"""Training throughput of the CIFAR-10 ConvVAE: the package's data path against the homework's.

For each path, times full training steps (get the batch, move it to the device, forward,
backward, Adam step) and reports images per second and the share of step time spent getting
the batch. The package's path keeps the data on the device as one tensor (``TensorLoader``);
the homework's wraps a numpy array in ``torch.utils.data.DataLoader(..., shuffle=True)``, which
fetches and collates every image on the CPU and then copies the batch to the device. Both run in
this one process, on CUDA when present, with the settings of an execution profile.

    python benchmarks/cifar_throughput.py [--profile cpu|gpu|smoke] [--steps 40] [--rounds 3] [--n 10000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils import data

from dgm.experiments.vae_cifar10 import SETTINGS
from dgm.loaders import TensorLoader
from dgm.profiles import default_device, device_name
from dgm.vae import ConvVAE


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(loader, model: ConvVAE, steps: int, warmup: int, device: torch.device) -> tuple[float, float]:
    """(images per second, share of time getting batches) over ``steps`` training steps after ``warmup``."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batches = iter(loader)
    data_s = total_s = 0.0
    images = 0
    for step in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        try:
            x = next(batches)
        except StopIteration:  # a new epoch: a new shuffled order
            batches = iter(loader)
            x = next(batches)
        x = x.to(device, non_blocking=True)
        _sync(device)
        t1 = time.perf_counter()
        loss = model.loss(x)["elbo_loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        _sync(device)
        t2 = time.perf_counter()
        if step >= warmup:
            data_s += t1 - t0
            total_s += t2 - t0
            images += len(x)
    return images / total_s, data_s / total_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default=None, help="settings to use (default: the current profile)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=10_000, help="training images (random, CIFAR-10's shape)")
    args = parser.parse_args()
    settings = SETTINGS.get(args.profile)
    device = default_device()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n, 3, 32, 32), dtype=np.uint8).astype(np.float32) / 255
    centered = images * 2 - 1  # what the homework passes to its DataLoader

    paths = {
        "package: TensorLoader over a device tensor": TensorLoader(
            torch.from_numpy(centered).to(device), settings.batch_size, shuffle=True
        ),
        "homework: DataLoader over a numpy array": data.DataLoader(
            centered, batch_size=settings.batch_size, shuffle=True
        ),
    }
    print(
        f"device: {device_name(device)}; batch {settings.batch_size}, channels {settings.channels}, "
        f"n_latent {settings.n_latent}; {args.rounds} alternating rounds of {args.steps} steps "
        f"(after {args.warmup} warm-up steps each); medians"
    )
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    for _ in range(args.rounds):  # alternate, so that a change in machine load hits both paths
        for name, loader in paths.items():
            torch.manual_seed(0)
            model = ConvVAE((3, 32, 32), settings.n_latent, channels=settings.channels).to(device)
            results[name].append(measure(loader, model, args.steps, args.warmup, device))
    medians = {}
    for name, runs in results.items():
        rate, share = (float(np.median(v)) for v in zip(*runs))
        medians[name] = rate, share
        print(f"{name:<45} {rate:10.0f} images/s   {100 * share:5.1f}% of step time getting data")
    (fast, fast_share), (slow, slow_share) = medians.values()
    print(
        f"package / homework throughput: {fast / slow:.2f}x; "
        f"data share {100 * fast_share:.1f}% vs {100 * slow_share:.1f}%"
    )


if __name__ == "__main__":
    main()
