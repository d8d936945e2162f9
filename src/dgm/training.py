"""Training loop (the homework's ``train_model``) and reuse of trained weights.

``train_model`` runs Adam over a loader and records every loss the model's ``loss`` returns.
``load_or_train`` saves a trained model with its losses under a key made of its settings and
the package source, and loads it instead of training again when the same key comes back.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from dgm.jupyter import kernel_shell

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
                f"{key} became {v} at epoch {epoch}, step {step}; lower the learning rate "
                "or check the data"
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
    for batch in loader:
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
    epochs_bar = _progress(range(1, epochs + 1), use_tqdm, desc="epochs")
    for epoch in epochs_bar:
        model.train()
        steps = 0
        for step, batch in enumerate(train_loader, start=1):
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


# --------------------------------------------------------------------------- weight reuse


def checkpoint_dir() -> Path:
    """Where trained weights are kept: ``$DGM_CHECKPOINT_DIR``, default ``~/.cache/dgm/checkpoints``."""
    return Path(os.environ.get("DGM_CHECKPOINT_DIR", "").strip() or Path.home() / ".cache" / "dgm" / "checkpoints")


def package_fingerprint() -> str:
    """SHA-256 of the installed ``dgm`` package source: any change to it retrains."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def checkpoint_key(name: str, config: dict) -> str:
    """A file-name-safe key of ``name``, the JSON of ``config`` and the package source."""
    try:
        blob = json.dumps(config, sort_keys=True, default=str)
    except TypeError as e:
        raise TypeError(f"config of {name!r} must be JSON-serialisable: {e}") from e
    digest = hashlib.sha256(f"{blob}\0{package_fingerprint()}\0{torch.__version__}".encode()).hexdigest()
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return f"{safe}-{digest[:16]}"


def checkpoint_checksum(state: dict[str, torch.Tensor], train_losses: Losses, test_losses: Losses,
                        wall_time_s: float) -> str:
    """SHA-256 of a checkpoint's content: every tensor's name, dtype, shape and bytes, and the losses.

    ``torch.load`` does not verify data: a flipped byte inside a weight loads silently. The checksum
    saved beside the content is recomputed on load, so such a file is retrained instead of used.
    """
    h = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        h.update(f"{name}\0{tensor.dtype}\0{tuple(tensor.shape)}\0".encode())
        h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    blob = json.dumps({"train": train_losses, "test": test_losses, "wall": wall_time_s}, sort_keys=True)
    h.update(blob.encode())
    return h.hexdigest()


def _load_checkpoint(path: Path, model: nn.Module, device: torch.device) -> Trained:
    """The verified checkpoint at ``path`` loaded into ``model``; raises if anything is wrong with it."""
    saved = torch.load(path, map_location=device, weights_only=True)
    missing = {"state_dict", "train_losses", "test_losses", "wall_time_s", "checksum"} - set(saved)
    if missing:
        raise ValueError(f"no {', '.join(sorted(missing))} in it")
    expected = checkpoint_checksum(saved["state_dict"], saved["train_losses"], saved["test_losses"], saved["wall_time_s"])
    if saved["checksum"] != expected:
        raise ValueError("its content does not match its checksum (the file is damaged)")
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return Trained(model, saved["train_losses"], saved["test_losses"], saved["wall_time_s"], True)


@dataclass
class Trained:
    """A trained model with its losses, how long its training took and whether it was loaded."""

    model: nn.Module
    train_losses: Losses
    test_losses: Losses
    wall_time_s: float
    loaded: bool


def load_or_train(
    name: str,
    config: dict,
    model: nn.Module,
    train: Callable[[nn.Module], tuple[Losses, Losses]],
    directory: Path | None = None,
) -> Trained:
    """Load ``model``'s weights saved under (name, config, package source), or train and save them.

    ``train(model)`` must return ``(train_losses, test_losses)`` as :func:`train_model` does.
    The file is written atomically (temporary file, then rename) with a checksum of its content. A
    file that is unreadable, damaged (checksum) or does not fit the model is retrained, from the
    model as it was passed in: a failed load leaves no trace in it. A checkpoint that cannot be
    written is reported with its path; the trained model is returned all the same.
    """
    directory = checkpoint_dir() if directory is None else Path(directory)
    path = directory / f"{checkpoint_key(name, config)}.pt"
    device = next(model.parameters()).device
    if path.exists():
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
        try:
            return _load_checkpoint(path, model, device)
        except Exception as e:  # truncated, damaged, foreign: say so, then retrain from the initial state
            model.load_state_dict(initial)
            print(f"[dgm] not using the checkpoint {path}: {type(e).__name__}: {e}; training again")
    start = time.perf_counter()
    train_losses, test_losses = train(model)
    wall = time.perf_counter() - start
    train_losses, test_losses = dict(train_losses), dict(test_losses)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": state, "train_losses": train_losses, "test_losses": test_losses,
                    "wall_time_s": wall, "config": json.dumps(config, sort_keys=True, default=str),
                    "checksum": checkpoint_checksum(state, train_losses, test_losses, wall)}, tmp)
        tmp.replace(path)
    except (OSError, RuntimeError) as e:  # torch reports an unwritable file as a RuntimeError
        print(f"[dgm] could not save the checkpoint {path} ({type(e).__name__}: {e}); the trained model is "
              "used as it is, and trains again next time: set DGM_CHECKPOINT_DIR to a writable folder to keep it")
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return Trained(model, train_losses, test_losses, wall, False)


# --------------------------------------------------------------------------- fast batches


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
