"""Training image models the way the image chapters do: the data on the device, one loop, reused weights.

:func:`prepare` takes a subset of an :class:`dgm.data.ImageData` and puts both splits on the device on
the model's scale; :func:`fit_image_model` trains any model with a ``loss`` on it with the homework's
:func:`dgm.training.train_model`, through :func:`dgm.checkpoints.load_or_train`, keyed on the
configuration, the data's fingerprint and the model's class, so that an unchanged rebuild reuses the
weights; :func:`training_curves` gives a training's curves for plotting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from dgm.checkpoints import Trained, load_or_train
from dgm.data import ImageData, to_model_scale
from dgm.jupyter import kernel_shell
from dgm.loaders import TensorLoader
from dgm.profiles import RunLog, default_device
from dgm.training import Losses, train_model


class Sizes(Protocol):
    """Settings that say how many images of each split to use (``None``: all)."""

    n_train: int | None
    n_test: int | None


@dataclass(frozen=True)
class Prepared:
    """A chapter's data on its device, on the model's scale, with the identity checkpoints use."""

    data: ImageData
    train_x: torch.Tensor  # (N, C, H, W) in [-1, 1]
    test_x: torch.Tensor
    fingerprint: str
    device: torch.device


def prepare(data: ImageData, settings: Sizes, device: torch.device | str | None = None) -> Prepared:
    """Take the settings' subset of ``data`` and put it on ``device`` as one tensor per split."""
    device = torch.device(default_device() if device is None else device)
    data = data.subset(settings.n_train, settings.n_test)
    return Prepared(
        data,
        to_model_scale(data.train, device),
        to_model_scale(data.test, device),
        data.fingerprint(),
        device,
    )


@dataclass(frozen=True)
class ImageBudget:
    """The data, network and training that every model of one comparison shares (None: the whole split)."""

    n_train: int | None
    n_test: int | None
    channels: tuple[int, ...]  # encoder convs; the decoder mirrors them
    n_latent: int
    batch_size: int
    epochs: int
    lr: float

    def schedule(self, seed: int = 0, eval_batch_size: int = 500) -> Schedule:
        """How a model is trained on this budget."""
        return Schedule(self.batch_size, self.epochs, self.lr, seed, eval_batch_size)


@dataclass(frozen=True)
class Schedule:
    """How a model is trained: batches, passes, step size, the noise's seed and the test batches."""

    batch_size: int
    epochs: int
    lr: float
    seed: int = 0
    eval_batch_size: int = 500


def fit_image_model(
    prep: Prepared,
    name: str,
    model: torch.nn.Module,
    schedule: Schedule,
    config: dict,
    loss_key: str = "elbo_loss",
    log: RunLog | None = None,
    use_tqdm: bool | None = None,
) -> Trained:
    """Train (or load) ``model`` on ``prep`` with ``train_model``, minimising ``model.loss(x)[loss_key]``.

    The checkpoint is keyed on ``name``, ``config`` (everything else that decides the weights), the
    schedule, the model's class and the data; the training is recorded in ``log``. ``use_tqdm``
    (default: in a notebook) shows a progress bar.
    """
    use_tqdm = kernel_shell() is not None if use_tqdm is None else use_tqdm
    model = model.to(prep.device)
    key = {
        **config,
        "schedule": {"batch_size": schedule.batch_size, "epochs": schedule.epochs, "lr": schedule.lr},
        "seed": schedule.seed,
        "loss_key": loss_key,
        "model": type(model).__name__,
        "data": prep.fingerprint,
    }

    def fit(m: torch.nn.Module) -> tuple[Losses, Losses]:
        train = TensorLoader(prep.train_x, schedule.batch_size, shuffle=True, seed=schedule.seed)
        test = TensorLoader(prep.test_x, schedule.eval_batch_size)
        return train_model(
            m,
            train,
            test,
            epochs=schedule.epochs,
            lr=schedule.lr,
            loss_key=loss_key,
            use_tqdm=use_tqdm,
            device=prep.device,
        )

    trained = load_or_train(name, key, model, fit)
    if log is not None:
        log.record(name, schedule.epochs, trained.wall_time_s, loaded=trained.loaded)
    return trained


def training_curves(trained: Trained, key: str = "elbo_loss") -> dict[str, tuple[np.ndarray, list[float]]]:
    """Per-step training and per-epoch test values of ``key``, both against epochs."""
    train, test = trained.train_losses[key], trained.test_losses[key]
    steps_per_epoch = len(train) / (len(test) - 1)
    return {
        "train (per step)": (np.arange(1, len(train) + 1) / steps_per_epoch, train),
        "test": (np.arange(len(test)), test),
    }
