"""The homework's Task 3 (a convolutional VAE on CIFAR-10) as students receive it.

The stubs of ``ConvEncoder``, ``ConvDecoder`` and ``ConvVAE``, the settings and the training cell,
with the changes of :mod:`dgm.homework.stubs_2d`.
"""

from __future__ import annotations

CONV_ENCODER = """\
import torch
import torch.nn as nn


class ConvEncoder(nn.Module):
    def __init__(self, input_shape: tuple, n_latent: int) -> None:
        super().__init__()
        self.input_shape = input_shape
        self.n_latent = n_latent
        # ====
        # your code
        # we suggest to use the following architecture
        # conv2d(32) -> relu -> conv(64) -> relu -> conv(128) -> relu -> conv(256) -> fc(2 * n_latent)
        # but we encourage you to create your own architecture
        raise NotImplementedError("ConvEncoder.__init__: your code")
        # ====

    def forward(self, x: torch.Tensor) -> tuple:
        # ====
        # your code
        # 1) apply convs
        # 2) reshape the output to 2d matrix for last fc layer
        # 3) apply fc layer
        raise NotImplementedError("ConvEncoder.forward: your code")
        # ====
        return mu, log_std
"""

CONV_DECODER = """\
import torch
import torch.nn as nn


class ConvDecoder(nn.Module):
    def __init__(self, n_latent: int, output_shape: tuple) -> None:
        super().__init__()
        self.n_latent = n_latent
        self.output_shape = output_shape

        self.base_size = (128, output_shape[1] // 8, output_shape[2] // 8)
        # ====
        # your code
        # we suggest to use the following architecture
        # fc -> conv2dtranspose(128) -> relu -> conv2dtranspose(64) -> relu
        # -> conv2dtranspose(32) -> relu -> conv2dtranspose(3)
        # but we encourage you to create your own architecture
        raise NotImplementedError("ConvDecoder.__init__: your code")
        # ====

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # ====
        # your code
        # 1) apply fc layer
        # 2) reshape the output to 4d tensor
        # 3) apply conv layers
        raise NotImplementedError("ConvDecoder.forward: your code")
        # ====
        return out
"""

CONV_VAE = """\
import numpy as np
import torch
import torch.nn as nn

from dgm import get_normal_KL, get_normal_nll  # the book's (you wrote yours in the 2d chapter)


class ConvVAE(nn.Module):
    def __init__(self, input_shape: tuple, n_latent: int, beta: float = 1) -> None:
        super().__init__()
        assert len(input_shape) == 3

        self.input_shape = input_shape
        self.n_latent = n_latent
        self.beta = beta
        # ====
        # your code
        # define encoder with input size input_shape and output dim n_latent
        # define decoder with input dim n_latent and output size input_shape
        # (as self.encoder and self.decoder: the cells after training use them)
        raise NotImplementedError("ConvVAE.__init__: your code")
        # ====

    def prior(self, n: int) -> torch.Tensor:
        # ====
        # your code
        # return n samples from prior distribution (we use standart normal for prior),
        # on the device of the model's parameters: next(self.parameters()).device
        raise NotImplementedError("ConvVAE.prior: your code")
        # ====
        return z

    def forward(self, x: torch.Tensor) -> tuple:
        # ====
        # your code
        # 1) apply encoder to get mu_z, log_std_z
        # 2) apply reparametrization trick (use self.prior)
        # 3) apply decoder to get mu_x (which corresponds to reconstructed x)
        raise NotImplementedError("ConvVAE.forward: your code")
        # ====
        return mu_z, log_std_z, x_recon

    def loss(self, x: torch.Tensor) -> dict:
        # ====
        # your code
        # 1) make forward step to get mu_z, log_std_z, x_recon
        # 2) calculate recon_loss (use get_normal_nll)
        # 3) calcucalte kl_loss (use get_normal_KL)
        raise NotImplementedError("ConvVAE.loss: your code")
        # ====
        return {
            "elbo_loss": recon_loss + self.beta * kl_loss,
            "recon_loss": recon_loss,
            "kl_loss": kl_loss,
        }

    def sample(self, n: int) -> np.ndarray:
        with torch.no_grad():
            # ====
            # your code
            # 1) generate prior samples
            # 2) apply decoder
            raise NotImplementedError("ConvVAE.sample: your code")
            # ====
            samples = torch.clamp(x_recon, -1, 1)
        return samples.cpu().numpy() * 0.5 + 0.5
"""

SETTINGS_CIFAR10 = """\
# ====
# your code
# choose these parameters
BATCH_SIZE = None  # any adequate value
EPOCHS = None  # < 16
LR = None  # < 1e-3
N_LATENS = None  # 128 < _ < 1024
BETA = None  # 0.1 < _ < 10
# ====
"""

TRAIN_CIFAR10 = """\
# The homework's Task 3 with your ConvVAE and your settings, on the images loaded above (`data`).
import torch
import torch.utils.data as tdata

from dgm import plot_training_curves, show_samples, train_model
from dgm.data import to_model_scale

# we center the data, because it helps the model to fit
centered_train_data = to_model_scale(data.train)
centered_test_data = to_model_scale(data.test)
train_loader = tdata.DataLoader(centered_train_data, batch_size=BATCH_SIZE, shuffle=True)
test_loader = tdata.DataLoader(centered_test_data, batch_size=BATCH_SIZE)

my_model = ConvVAE(tuple(data.train.shape[1:]), N_LATENS, BETA)
train_losses, test_losses = train_model(
    my_model, train_loader, test_loader, epochs=EPOCHS, lr=LR, loss_key="elbo_loss", use_tqdm=True,
    use_cuda=torch.cuda.is_available(),
)
for key, value in test_losses.items():
    print("{}: {:.4f}".format(key, value[-1]))
plot_training_curves(train_losses, test_losses)
show_samples(my_model.sample(100), "Samples of your ConvVAE")
"""
