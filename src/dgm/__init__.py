"""dgm: the code behind the executable textbook on variational inference and VAEs.

This module only re-exports the homework's public names, so that ``from dgm import VAE2d``
works as students know it. Each name lives in the module named after its concept.
"""

from dgm.data import generate_2d_data
from dgm.gaussians import get_normal_KL, get_normal_nll
from dgm.likelihood import exact_log_likelihood
from dgm.nets import FullyConnectedMLP
from dgm.plotting import plot_training_curves, visualize_2d_data, visualize_2d_samples
from dgm.training import train_model
from dgm.vae import VAE2d
from dgm.vae2d_experiment import get_latent_stats, solve_task

__all__ = [
    "FullyConnectedMLP",
    "VAE2d",
    "exact_log_likelihood",
    "generate_2d_data",
    "get_latent_stats",
    "get_normal_KL",
    "get_normal_nll",
    "plot_training_curves",
    "solve_task",
    "train_model",
    "visualize_2d_data",
    "visualize_2d_samples",
]
