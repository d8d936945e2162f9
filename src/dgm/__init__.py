"""dgm: the code behind the executable textbook on variational inference and VAEs.

This module only re-exports the homework's public names, so that ``from dgm import VAE2d``
works as students know it. Each name lives in the module named after its concept.
"""

from dgm.cifar10 import load_cifar10, load_pickle
from dgm.collapse import get_latent_stats
from dgm.data import generate_2d_data
from dgm.gaussians import get_normal_KL, get_normal_nll
from dgm.likelihood import exact_log_likelihood
from dgm.nets import ConvDecoder, ConvEncoder, FullyConnectedMLP
from dgm.plotting import (
    plot_training_curves,
    show_samples,
    visualize_2d_data,
    visualize_2d_samples,
    visualize_images,
)
from dgm.tasks import solve_task
from dgm.training import train_model
from dgm.vae import ConvVAE, VAE2d

__all__ = [
    "ConvDecoder",
    "ConvEncoder",
    "ConvVAE",
    "FullyConnectedMLP",
    "VAE2d",
    "exact_log_likelihood",
    "generate_2d_data",
    "get_latent_stats",
    "get_normal_KL",
    "get_normal_nll",
    "load_cifar10",
    "load_pickle",
    "plot_training_curves",
    "show_samples",
    "solve_task",
    "train_model",
    "visualize_2d_data",
    "visualize_2d_samples",
    "visualize_images",
]
