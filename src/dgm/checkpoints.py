"""Reuse of trained weights: a checkpoint per (name, settings, source that can change a model).

:func:`load_or_train` saves a trained model with its losses under a key made of its settings, the
source of the core and experiment modules (:func:`dgm.fingerprint.model_source_fingerprint`; the
book tooling is not part of it) and torch's version, and loads it instead of training again when
the same key comes back. Files are written atomically and verified by a checksum on load.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from dgm.fingerprint import model_source_fingerprint
from dgm.profiles import rehearsal_steps
from dgm.training import Losses


def checkpoint_dir() -> Path:
    """Where trained weights are kept: ``$DGM_CHECKPOINT_DIR``, default ``~/.cache/dgm/checkpoints``."""
    return Path(
        os.environ.get("DGM_CHECKPOINT_DIR", "").strip() or Path.home() / ".cache" / "dgm" / "checkpoints"
    )


def checkpoint_key(name: str, config: dict) -> str:
    """A file-name-safe key of ``name``, the JSON of ``config``, the model source and torch's version."""
    try:
        blob = json.dumps(config, sort_keys=True, default=str)
    except TypeError as e:
        raise TypeError(f"config of {name!r} must be JSON-serialisable: {e}") from e
    digest = hashlib.sha256(f"{blob}\0{model_source_fingerprint()}\0{torch.__version__}".encode()).hexdigest()
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return f"{safe}-{digest[:16]}"


def checkpoint_checksum(
    state: dict[str, torch.Tensor], train_losses: Losses, test_losses: Losses, wall_time_s: float
) -> str:
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
    expected = checkpoint_checksum(
        saved["state_dict"], saved["train_losses"], saved["test_losses"], saved["wall_time_s"]
    )
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
    steps = rehearsal_steps()
    if steps is not None:  # a rehearsal's weights (dgm.profiles) are kept apart from real ones
        config = {**config, "rehearsal_steps": steps}
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
        torch.save(
            {
                "state_dict": state,
                "train_losses": train_losses,
                "test_losses": test_losses,
                "wall_time_s": wall,
                "config": json.dumps(config, sort_keys=True, default=str),
                "checksum": checkpoint_checksum(state, train_losses, test_losses, wall),
            },
            tmp,
        )
        tmp.replace(path)
    except (OSError, RuntimeError) as e:  # torch reports an unwritable file as a RuntimeError
        print(
            f"[dgm] could not save the checkpoint {path} ({type(e).__name__}: {e}); the trained model is "
            "used as it is, and trains again next time: "
            "set DGM_CHECKPOINT_DIR to a writable folder to keep it"
        )
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
    return Trained(model, train_losses, test_losses, wall, False)
