"""The homework's Task 2 (a VAE on 2d data) as students receive it: its cells, signatures and comments.

Each stub is the homework's own cell (seed ``000``), changed only so that it runs anywhere: the
imports it needs are at its top (so that a notebook cell, or the grader, can run it alone); an
empty body holds ``raise NotImplementedError`` (so that the cell runs before it is filled, and a
check says what is missing); the homework's ``use_cuda`` flags give way to the model's device (the
book's code is device-agnostic), with a comment that says so; the homework's typos that do not
parse (``) - > None``, ``-> : torch.Tensor``), its KL docstring's ``exp(log_std_1)`` (for the
variance ``exp(log_std_1) ** 2``) and comments that contradict the code (the order of ``forward``'s
outputs, "std" for log-std, a "parameter noise" for ``sample_from_decoder``) are corrected, and the
docstrings say that the Gaussian functions are elementwise; the settings are ``None`` until chosen. The
``# ====`` markers enclose what the student writes. Task 3's cells are in
:mod:`dgm.homework.stubs_cifar10`, with the same changes.
"""

from __future__ import annotations

GET_NORMAL_KL = '''\
import torch
from typing import Optional


def get_normal_KL(
    mean_1: torch.Tensor,
    log_std_1: torch.Tensor,
    mean_2: Optional[torch.Tensor] = None,
    log_std_2: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """
    This function should return the value of KL(p1 || p2),
    where p1 = Normal(mean_1, exp(log_std_1) ** 2), p2 = Normal(mean_2, exp(log_std_2) ** 2).
    If mean_2 and log_std_2 are None values, we will use standard normal distribution.
    Note that we consider the case of diagonal covariance matrix: the result is elementwise,
    one value per coordinate, of the shape of the inputs (the loss sums over dimensions).
    """
    if mean_2 is None:
        mean_2 = torch.zeros_like(mean_1)
    if log_std_2 is None:
        log_std_2 = torch.zeros_like(log_std_1)
    # ====
    # your code
    raise NotImplementedError("get_normal_KL: your code")
    # ====
'''

GET_NORMAL_NLL = '''\
import torch


def get_normal_nll(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """
    This function should return the negative log likelihood -log p(x),
    where p(x) = Normal(x | mean, exp(log_std) ** 2).
    Note that we consider the case of diagonal covariance matrix: the result is elementwise,
    one value per coordinate, of the shape of x (the loss sums over dimensions).
    """
    # ====
    # your code
    raise NotImplementedError("get_normal_nll: your code")
    # ====
'''

FULLY_CONNECTED_MLP = """\
import torch
import torch.nn as nn


class FullyConnectedMLP(nn.Module):
    def __init__(self, input_shape: int, hiddens: list, output_shape: int) -> None:
        assert isinstance(hiddens, list)
        super().__init__()
        self.input_shape = (input_shape,)
        self.output_shape = (output_shape,)
        self.hiddens = hiddens

        model = []

        # ====
        # your code
        # stack Dense layers with ReLU activation
        # note: do not add relu after the last dense layer (its outputs are means and log-stds)
        raise NotImplementedError("FullyConnectedMLP.__init__: your code")
        # ====
        self.net = nn.Sequential(*model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # ====
        # your code
        # apply network that was defined in __init__ and return the output
        raise NotImplementedError("FullyConnectedMLP.forward: your code")
        # ====
"""

VAE2D = """\
import numpy as np
import torch
import torch.nn as nn


class VAE2d(nn.Module):
    def __init__(self, n_in: int, n_latent: int, enc_hidden_sizes: list, dec_hidden_sizes: list) -> None:
        assert isinstance(enc_hidden_sizes, list)
        assert isinstance(dec_hidden_sizes, list)
        super().__init__()
        self.n_latent = n_latent

        # ====
        # your code
        # define encoder and decoder networks
        # the encoder takes n_in elements, has enc_hidden_sizes neurons in hidden layers
        # and outputs 2 * n_latent (n_latent for means, and n_latent for log std)
        # the decoder takes n_latent elements, has dec_hidden_sizes neurons in hidden layers
        # and outputs 2 * n_in (n_in for means, and n_in for log std)
        raise NotImplementedError("VAE2d.__init__: your code")
        # ====

    def prior(self, n: int) -> torch.Tensor:
        # ====
        # your code
        # return n samples from prior distribution (we use standard normal for prior),
        # on the device of the model's parameters: next(self.parameters()).device
        raise NotImplementedError("VAE2d.prior: your code")
        # ====

    def forward(self, x: torch.Tensor) -> tuple:
        # ====
        # your code
        # now you have to return from the model
        # - mu_z - means for variational distribution
        # - log_std_z - logarithm of std for variational distribution
        # - mu_x - means for generative distribution
        # - log_std_x - logarithm of std for generative distribution
        # we use logarithm, since the std is always positive
        # to get std we will exponentiate it to get rid of this constraint

        # 1) mu_z, log_std_z are outputs from the encoder
        # 2) apply reparametrization trick to get z (input of decoder)
        # (do not forget to use self.prior())
        # 3) mu_x, log_std_x are outputs from the decoder
        #    Note: [mu, log_std = decoder(input).chunk(2, dim=1)]
        raise NotImplementedError("VAE2d.forward: your code")
        # ====
        return mu_z, log_std_z, mu_x, log_std_x

    def loss(self, x: torch.Tensor) -> dict:
        mu_z, log_std_z, mu_x, log_std_x = self(x)
        # ====
        # your code
        # 1) the line above applied the model to get mu_z, log_std_z, mu_x, log_std_x
        # 2) compute reconstruction loss using get_normal_nll (it is the first term in ELBO)
        # 3) compute KL loss using get_normal_KL (it is the second term in ELBO)
        raise NotImplementedError("VAE2d.loss: your code")
        # ====

        return {
            "elbo_loss": recon_loss + kl_loss,
            "recon_loss": recon_loss,
            "kl_loss": kl_loss,
        }

    def sample(self, n: int, sample_from_decoder: bool = True) -> np.ndarray:
        with torch.no_grad():
            # ====
            # your code
            # to sample from VAE model you have to sample from prior
            # and then apply decoder to prior samples.
            # parameter sample_from_decoder indicates whether to sample from decoder
            # or just use means of generative distribution as samples
            # 1) generate prior samples
            # 2) apply decoder
            # 3) sample from the decoder distribution if sample_from_decoder=True
            # (the samples, x, are returned in the variable z)
            raise NotImplementedError("VAE2d.sample: your code")
            # ====
        return z.cpu().numpy()
"""

SETTINGS_2D = """\
# ====
# your code
# choose these parameters (2 hidden layers could be enough for encoder and decoder)
ENC_HIDDEN_SIZES = None  # a list of layer sizes
DEC_HIDDEN_SIZES = None  # a list of layer sizes
BATCH_SIZE = None  # any adequate value
EPOCHS = None  # < 10
LR = None  # < 1e-2
# ====
"""

TRAIN_2D = """\
# The homework's Task 2 with your VAE2d and your settings: train on both data sets, then look at
# the encoder's statistics (solve_task prints the final test losses and plots curves and samples).
from dgm import generate_2d_data, get_latent_stats, solve_task, visualize_2d_data

COUNT = 10000
my_models = {}
for mode in ("multivariate", "univariate"):
    hw_train, hw_test = generate_2d_data(COUNT, mode=mode)
    visualize_2d_data(hw_train, hw_test)
    my_models[mode] = VAE2d(2, 2, ENC_HIDDEN_SIZES, DEC_HIDDEN_SIZES)
    solve_task(hw_train, hw_test, my_models[mode], BATCH_SIZE, EPOCHS, LR)
    mu_z, std_z = get_latent_stats(my_models[mode], hw_test)
    print(mode, "mu_z =", mu_z.mean(axis=0), "+-", mu_z.std(axis=0))
    print(mode, "std_z =", std_z.mean(axis=0), "+-", std_z.std(axis=0))
"""
