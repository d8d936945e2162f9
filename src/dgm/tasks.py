"""The homework's task driver, ``solve_task``: train a 2d VAE, print its test losses, plot what it learnt.

The book's chapters train through their experiments (:mod:`dgm.experiments`); this is the
homework's own entry point, with the homework's signature, for a student who works through it.
"""

from __future__ import annotations

import numpy as np
import torch

from dgm.plotting import plot_training_curves, visualize_2d_samples
from dgm.training import Losses, fit
from dgm.vae import VAE2d


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
