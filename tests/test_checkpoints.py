"""dgm.checkpoints: trained weights kept, verified and reused; never a damaged or half-written file."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from dgm.checkpoints import checkpoint_key, load_or_train
from dgm.training import train_model

from test_training import Quadratic, _loaders


def test_load_or_train_reuses_and_retrains(tmp_path):
    train, test = _loaders()
    calls = []

    def fit(model):
        calls.append(1)
        return train_model(model, train, test, epochs=2, lr=0.5)

    first = load_or_train("quad", {"lr": 0.5}, Quadratic(), fit, tmp_path)
    assert not first.loaded and len(calls) == 1
    second = load_or_train("quad", {"lr": 0.5}, Quadratic(), fit, tmp_path)
    assert second.loaded and len(calls) == 1
    assert second.model.w.item() == first.model.w.item() != 0.0
    assert second.test_losses == first.test_losses and second.wall_time_s == first.wall_time_s
    third = load_or_train("quad", {"lr": 0.25}, Quadratic(), fit, tmp_path)  # new settings retrain
    assert not third.loaded and len(calls) == 2
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".pt", ".pt"]  # no temporary files


def test_corrupt_checkpoint_is_retrained_and_replaced(tmp_path):
    train, test = _loaders()
    path = tmp_path / f"{checkpoint_key('quad', {})}.pt"
    path.write_bytes(b"truncated")
    out = load_or_train("quad", {}, Quadratic(), lambda m: train_model(m, train, test, 1, 0.5), tmp_path)
    assert not out.loaded
    assert load_or_train("quad", {}, Quadratic(), lambda m: pytest.fail("retrained"), tmp_path).loaded


def test_failed_training_leaves_nothing(tmp_path):
    def boom(model):
        raise RuntimeError("diverged")

    with pytest.raises(RuntimeError):
        load_or_train("quad", {}, Quadratic(), boom, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_checkpoint_key_rejects_unserialisable_config():
    assert checkpoint_key("a/b c", {"x": 1}).startswith("a_b_c-")
    assert checkpoint_key("a", {"x": 1}) != checkpoint_key("a", {"x": 2})
    with pytest.raises(TypeError, match="JSON"):
        checkpoint_key("a", {(1, 2): "tuple keys have no JSON form"})


# --------------------------------------------------------------------------- torch_threads


def _saved_quadratic(tmp_path):
    train, test = _loaders()
    first = load_or_train("quad", {}, Quadratic(), lambda m: train_model(m, train, test, 2, 0.5), tmp_path)
    (path,) = tmp_path.glob("*.pt")
    return first, path, train, test


def test_a_checkpoint_with_flipped_bytes_in_a_weight_is_retrained(tmp_path):
    first, path, train, test = _saved_quadratic(tmp_path)
    saved = torch.load(path, weights_only=True)
    w = saved["state_dict"]["w"]
    raw = bytearray(path.read_bytes())
    needle = w.numpy().tobytes()  # the weight's 4 bytes as stored in the file
    at = raw.find(needle)
    assert at > 0 and raw.count(needle) == 1
    raw[at + 3] ^= 0x7F  # flip bits of the exponent byte: the weight becomes another number
    path.write_bytes(bytes(raw))
    assert torch.load(path, weights_only=True)["state_dict"]["w"].item() != w.item()  # torch loads it happily
    retrained = []
    out = load_or_train(
        "quad",
        {},
        Quadratic(),
        lambda m: retrained.append(1) or train_model(m, train, test, 2, 0.5),
        tmp_path,
    )
    assert retrained and not out.loaded
    assert out.model.w.item() == pytest.approx(first.model.w.item())  # same training from the same start
    assert load_or_train("quad", {}, Quadratic(), lambda m: pytest.fail("retrained"), tmp_path).loaded


def test_a_stored_loss_that_was_changed_is_retrained(tmp_path):
    _, path, train, test = _saved_quadratic(tmp_path)
    saved = torch.load(path, weights_only=True)
    saved["test_losses"]["elbo_loss"][-1] = 0.0  # a false record on the run card
    torch.save(saved, path)
    out = load_or_train("quad", {}, Quadratic(), lambda m: train_model(m, train, test, 2, 0.5), tmp_path)
    assert not out.loaded and out.test_losses["elbo_loss"][-1] > 0


def test_a_failed_load_leaves_no_trace_in_the_model_that_trains(tmp_path):
    # A checkpoint of another architecture: load_state_dict copies what fits, then raises.
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([123.0]))
            self.v = nn.Parameter(torch.tensor([1.0, 2.0]))

    state = {"w": torch.tensor([123.0]), "v": torch.tensor([1.0, 2.0])}
    from dgm.checkpoints import checkpoint_checksum

    path = tmp_path / f"{checkpoint_key('quad', {})}.pt"
    torch.save(
        {
            "state_dict": state,
            "train_losses": {},
            "test_losses": {},
            "wall_time_s": 1.0,
            "checksum": checkpoint_checksum(state, {}, {}, 1.0),
        },
        path,
    )
    starts = []
    out = load_or_train(
        "quad", {}, Quadratic(w=-1.0), lambda m: starts.append(m.w.item()) or ({}, {}), tmp_path
    )
    assert starts == [-1.0]  # trained from the model as passed in, not from the half-loaded 123
    assert not out.loaded


def test_an_unwritable_checkpoint_folder_keeps_the_trained_model(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    train, test = _loaders()
    out = load_or_train(
        "quad", {}, Quadratic(), lambda m: train_model(m, train, test, 2, 0.5), blocker / "ckpt"
    )
    assert not out.loaded and out.model.w.item() != 0.0
    said = capsys.readouterr().out
    assert str(blocker / "ckpt") in said and "DGM_CHECKPOINT_DIR" in said


def test_an_empty_checkpoint_dir_setting_means_the_default(monkeypatch, tmp_path):
    from dgm.checkpoints import checkpoint_dir

    monkeypatch.setenv("DGM_CHECKPOINT_DIR", "")
    assert checkpoint_dir().parts[-3:] == (".cache", "dgm", "checkpoints")
    monkeypatch.setenv("DGM_CHECKPOINT_DIR", str(tmp_path))
    assert checkpoint_dir() == tmp_path
