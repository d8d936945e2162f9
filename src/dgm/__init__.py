"""dgm: the code behind the executable textbook on variational inference and VAEs.

This module only re-exports the homework's public names, so that ``from dgm import VAE2d``
works as students know it. Each name lives in the module named after its concept.
"""

from dgm.data import generate_2d_data
from dgm.data import load_cifar10, load_pickle
from dgm.gaussians import get_normal_KL, get_normal_nll
from dgm.nets import FullyConnectedMLP
from dgm.nets import ConvDecoder, ConvEncoder
from dgm.plotting import show_samples, visualize_images
from dgm.training import train_model
from dgm.vae import VAE2d
from dgm.vae import ConvVAE

__all__ = [
    "FullyConnectedMLP",
    "VAE2d",
    "generate_2d_data",
    "get_normal_KL",
    "get_normal_nll",
    "train_model",
    "ConvDecoder",
    "ConvEncoder",
    "ConvVAE",
    "load_cifar10",
    "load_pickle",
    "show_samples",
    "visualize_images",
]
