from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from dgm.training import checkpoint_key, load_or_train, train_model
from dgm.vae import VAE2d


class Quadratic(nn.Module):
    """loss = mean((x - w)^2): Adam drives w to the data mean."""

    def __init__(self, w: float = 0.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([w]))

    def loss(self, x):
        return {"total_loss": ((x - self.w) ** 2).mean(), "w": self.w.detach().clone().squeeze()}


def _loaders(n=64, batch=16, value=3.0, tuples=False):
    x = torch.full((n, 1), value)
    ds = TensorDataset(x, torch.zeros(n)) if tuples else x
    return DataLoader(ds, batch_size=batch), DataLoader(ds, batch_size=batch * 2)


def test_losses_recorded_per_step_and_per_epoch():
    train, test = _loaders()
    tr, te = train_model(Quadratic(), train, test, epochs=3, lr=0.1)
    assert len(tr["total_loss"]) == 3 * 4  # 64 / 16 steps per epoch
    assert len(te["total_loss"]) == 3 + 1  # before training, then per epoch
    assert te["total_loss"][0] == pytest.approx(9.0)  # (3 - 0)^2, computed by hand
    assert te["total_loss"][-1] < te["total_loss"][0]
    assert set(tr) == set(te) == {"total_loss", "w"}


def test_test_loss_is_weighted_by_batch_size():
    x = torch.cat([torch.zeros(10, 1), torch.full((1, 1), 11.0)])
    _, te = train_model(Quadratic(), DataLoader(x, batch_size=10), DataLoader(x, batch_size=10), epochs=0, lr=0.1)
    assert te["total_loss"][0] == pytest.approx(121.0 / 11)  # not the mean of batch means (60.5)


def test_tuple_batches_and_vae_training_reduces_loss():
    torch.manual_seed(0)
    x = torch.randn(512, 2) * torch.tensor([3.0, 1.0]) + 2
    model = VAE2d(2, 2, [32, 32], [32, 32])
    loader = DataLoader(TensorDataset(x, torch.zeros(512)), batch_size=64, shuffle=True)
    tr, te = train_model(model, loader, loader, epochs=5, lr=3e-3, loss_key="elbo_loss")
    assert te["elbo_loss"][-1] < te["elbo_loss"][0] - 0.5
    assert set(te) == {"elbo_loss", "recon_loss", "kl_loss"}


def test_divergence_names_epoch_and_step():
    class Exploding(Quadratic):
        steps = 0

        def loss(self, x):
            out = super().loss(x)
            if self.training:
                Exploding.steps += 1
                if Exploding.steps == 6:  # 4 steps per epoch: the 6th is epoch 2, step 2
                    out["total_loss"] = out["total_loss"] * float("nan")
            return out

    train, test = _loaders()
    with pytest.raises(FloatingPointError, match=r"total_loss became nan at epoch 2, step 2"):
        train_model(Exploding(), train, test, epochs=3, lr=0.1)


def test_bad_arguments():
    train, test = _loaders()
    with pytest.raises(KeyError, match="elbo_loss"):
        train_model(Quadratic(), train, test, epochs=1, lr=0.1, loss_key="elbo_loss")
    with pytest.raises(ValueError, match="lr"):
        train_model(Quadratic(), train, test, epochs=1, lr=0)
    with pytest.raises(ValueError, match="no examples"):
        train_model(Quadratic(), train, [], epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="no batches"):
        train_model(Quadratic(), [], test, epochs=1, lr=0.1)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            train_model(Quadratic(), train, test, epochs=1, lr=0.1, use_cuda=True)


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

from dgm.training import torch_threads  # noqa: E402


def test_torch_threads_restores_the_setting():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="positive"):
        with torch_threads(0):
            pass
