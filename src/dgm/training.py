"""Training loop: the homework's ``train_model``, and :func:`fit` with a learning-rate decay.

``train_model`` runs Adam over a loader and records every loss the model's ``loss`` returns.
Trained weights are kept and reused by :mod:`dgm.checkpoints`.
"""

from __future__ import annotations

import ctypes
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn as nn

from dgm.jupyter import kernel_shell
from dgm.loaders import TensorLoader
from dgm.profiles import rehearsal_steps

Losses = dict[str, list[float]]


def _first_tensor(batch) -> torch.Tensor:
    """A loader may yield a tensor or a (tensor, labels, ...) tuple; the data is the first."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("the loader yielded an empty tuple")
        batch = batch[0]
    if not isinstance(batch, torch.Tensor):
        batch = torch.as_tensor(batch)
    return batch


def _resolve_device(model: nn.Module, use_cuda: bool, device: torch.device | str | None) -> torch.device:
    if device is not None:
        return torch.device(device)
    if use_cuda:
        if not torch.cuda.is_available():
            raise RuntimeError("use_cuda=True but CUDA is not available; pass use_cuda=False")
        return torch.device("cuda")
    params = list(model.parameters())
    return params[0].device if params else torch.device("cpu")


def _check_finite(losses: dict[str, torch.Tensor], epoch: int, step: int) -> None:
    for key, value in losses.items():
        v = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        if not math.isfinite(v):
            raise FloatingPointError(
                f"{key} became {v} at epoch {epoch}, step {step}; lower the learning rate or check the data"
            )


class _DisplayLine:
    """A file for tqdm that shows only its latest line, as one updatable Jupyter display.

    Live, the line updates in place (Jupyter, Colab, Binder, with or without ipywidgets); in an
    executed notebook (the built book) only the final state is stored: one clean line, no
    carriage-return debris and no widget that a static page could not render.
    """

    encoding = "utf-8"  # lets tqdm draw its block characters

    def __init__(self) -> None:
        from IPython.display import display

        self._handle = display({"text/plain": ""}, raw=True, display_id=True)

    def write(self, text: str) -> None:
        line = text.replace("\r", "\n").strip("\n").split("\n")[-1].rstrip()
        if line:
            self._handle.update({"text/plain": line}, raw=True)

    def flush(self) -> None:
        pass


def _progress(iterable: Iterable, enabled: bool, **kwargs):
    """A tqdm progress bar: one updatable line in Jupyter, the usual bar on a terminal."""
    if not enabled:
        return iterable
    from tqdm.std import tqdm

    file = _DisplayLine() if kernel_shell() is not None else sys.stderr
    return tqdm(iterable, file=file, ncols=100, mininterval=0.5, **kwargs)


@torch.no_grad()
def eval_model(model: nn.Module, loader: Iterable, device: torch.device) -> dict[str, float]:
    """Every loss of ``model.loss`` averaged over all examples of ``loader`` (batches weighted by size)."""
    model.eval()
    totals: dict[str, float] = defaultdict(float)
    count = 0
    cap = rehearsal_steps()
    for i, batch in enumerate(loader):
        if cap is not None and i == cap:
            break
        x = _first_tensor(batch).to(device)
        n = x.shape[0]
        for key, value in model.loss(x).items():
            totals[key] += float(value) * n
        count += n
    if count == 0:
        raise ValueError("the test loader yielded no examples")
    return {key: total / count for key, total in totals.items()}


def train_model(
    model: nn.Module,
    train_loader: Iterable,
    test_loader: Iterable,
    epochs: int,
    lr: float,
    use_tqdm: bool = False,
    use_cuda: bool = False,
    loss_key: str = "elbo_loss",
    device: torch.device | str | None = None,
) -> tuple[Losses, Losses]:
    """Train with Adam on ``model.loss(x)[loss_key]``; return (train_losses, test_losses).

    ``loss_key`` defaults to ``"elbo_loss"``, the key of every model of the homework and the book.

    ``train_losses[key]`` has one value per training step; ``test_losses[key]`` one value before
    training and one after each epoch, each averaged over the whole test set. A loss that becomes
    NaN or infinite stops training with an error naming the epoch and step.
    """
    if epochs < 0 or lr <= 0:
        raise ValueError(f"need epochs >= 0 and lr > 0, got epochs={epochs}, lr={lr}")
    device = _resolve_device(model, use_cuda, device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    train_losses: Losses = defaultdict(list)
    test_losses: Losses = defaultdict(list)
    for key, value in eval_model(model, test_loader, device).items():
        test_losses[key].append(value)
    if loss_key not in test_losses:
        raise KeyError(f"loss_key {loss_key!r} is not among the model's losses {sorted(test_losses)}")
    cap = rehearsal_steps()  # a rehearsal (dgm.profiles) takes the first batches of each epoch only
    epochs_bar = _progress(range(1, epochs + 1), use_tqdm, desc="epochs")
    for epoch in epochs_bar:
        model.train()
        steps = 0
        for step, batch in enumerate(train_loader, start=1):
            if cap is not None and step > cap:
                break
            x = _first_tensor(batch).to(device)
            losses = model.loss(x)
            _check_finite(losses, epoch, step)
            optimizer.zero_grad(set_to_none=True)
            losses[loss_key].backward()
            optimizer.step()
            for key, value in losses.items():
                train_losses[key].append(float(value.detach()))
            steps = step
        if steps == 0:
            raise ValueError("the training loader yielded no batches")
        for key, value in eval_model(model, test_loader, device).items():
            test_losses[key].append(value)
        _check_finite({f"test {k}": v[-1] for k, v in test_losses.items()}, epoch, steps)
        if hasattr(epochs_bar, "set_postfix"):
            epochs_bar.set_postfix({f"test {loss_key}": f"{test_losses[loss_key][-1]:.4f}"})
    model.eval()
    return dict(train_losses), dict(test_losses)


# --------------------------------------------------------------------------- fast batches


def release_freed_memory() -> None:
    """Give memory that torch freed on the CPU back to the system (glibc's ``malloc_trim``; elsewhere
    nothing).

    A loop that allocates and frees the same large CPU tensors thousands of times (one gradient
    estimate per draw) can otherwise grow glibc's heap by megabytes per iteration: glibc raises its
    threshold for serving large blocks from fresh mappings once such blocks are freed, and the heap
    it serves them from instead fragments and is not returned. Measured: about 2 MB per draw of a
    2d VAE's L_500 gradient on a batch of 64; the gpu profile's signal-to-noise measurement (4000
    draws per K and estimator) took the process to 22.7 GB, and 1.8 GB with a call every 16 draws.
    """
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
            _LIBC.malloc_trim
        except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC = None


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op CPU threads in torch (``None``: leave as is), then restore.

    Small models (a few thousand parameters, small batches) train fastest on one thread: with
    more, each tiny operation pays for synchronisation, many times over on a busy machine.
    """
    if n is None:
        yield
        return
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be a positive integer or None, got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit(
    model: torch.nn.Module,
    train_data: np.ndarray,
    test_data: np.ndarray,
    batch_size: int,
    epochs: int,
    lr: float,
    decay_epochs: int = 0,
    loss_key: str = "elbo_loss",
    use_tqdm: bool = False,
    seed: int | None = None,
    threads: int | None = 1,
) -> tuple[Losses, Losses]:
    """:func:`train_model` on batches sliced from the data, the last ``decay_epochs`` of ``epochs``
    at lr / 10.

    Returns (train_losses, test_losses) as :func:`train_model` does, the two phases concatenated.
    The model stays on its device; ``seed`` fixes the order of the batches; on a CPU, torch uses
    ``threads`` threads meanwhile (:func:`torch_threads`).
    """
    if not 0 <= decay_epochs <= epochs:
        raise ValueError(f"need 0 <= decay_epochs <= epochs, got {decay_epochs} and {epochs}")
    device = next(model.parameters()).device
    train_loader = TensorLoader(torch.as_tensor(train_data), batch_size, shuffle=True, seed=seed)
    test_loader = TensorLoader(torch.as_tensor(test_data), max(batch_size, 1000))
    with torch_threads(threads):
        tr, te = train_model(
            model,
            train_loader,
            test_loader,
            epochs - decay_epochs,
            lr,
            use_tqdm=use_tqdm,
            loss_key=loss_key,
            device=device,
        )
        if decay_epochs:
            tr2, te2 = train_model(
                model,
                train_loader,
                test_loader,
                decay_epochs,
                lr / 10,
                use_tqdm=use_tqdm,
                loss_key=loss_key,
                device=device,
            )
            tr = {k: tr.get(k, []) + v for k, v in tr2.items()}
            te = {k: te[k] + v[1:] for k, v in te2.items()}  # v[0] repeats the last test value
    return tr, te
