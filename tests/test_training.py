from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from dgm.data import generate_2d_data
from dgm.training import fit, train_model
from dgm.vae import VAE2d


class Quadratic(nn.Module):
    """loss = mean((x - w)^2): Adam drives w to the data mean."""

    def __init__(self, w: float = 0.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([w]))

    def loss(self, x):
        return {"elbo_loss": ((x - self.w) ** 2).mean(), "w": self.w.detach().clone().squeeze()}


def _loaders(n=64, batch=16, value=3.0, tuples=False):
    x = torch.full((n, 1), value)
    ds = TensorDataset(x, torch.zeros(n)) if tuples else x
    return DataLoader(ds, batch_size=batch), DataLoader(ds, batch_size=batch * 2)


def test_losses_recorded_per_step_and_per_epoch():
    train, test = _loaders()
    tr, te = train_model(Quadratic(), train, test, epochs=3, lr=0.1)
    assert len(tr["elbo_loss"]) == 3 * 4  # 64 / 16 steps per epoch
    assert len(te["elbo_loss"]) == 3 + 1  # before training, then per epoch
    assert te["elbo_loss"][0] == pytest.approx(9.0)  # (3 - 0)^2, computed by hand
    assert te["elbo_loss"][-1] < te["elbo_loss"][0]
    assert set(tr) == set(te) == {"elbo_loss", "w"}


def test_test_loss_is_weighted_by_batch_size():
    x = torch.cat([torch.zeros(10, 1), torch.full((1, 1), 11.0)])
    _, te = train_model(
        Quadratic(), DataLoader(x, batch_size=10), DataLoader(x, batch_size=10), epochs=0, lr=0.1
    )
    assert te["elbo_loss"][0] == pytest.approx(121.0 / 11)  # not the mean of batch means (60.5)


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
                    out["elbo_loss"] = out["elbo_loss"] * float("nan")
            return out

    train, test = _loaders()
    with pytest.raises(FloatingPointError, match=r"elbo_loss became nan at epoch 2, step 2"):
        train_model(Exploding(), train, test, epochs=3, lr=0.1)


def test_bad_arguments():
    train, test = _loaders()
    with pytest.raises(KeyError, match="total_loss"):
        train_model(Quadratic(), train, test, epochs=1, lr=0.1, loss_key="total_loss")
    with pytest.raises(ValueError, match="lr"):
        train_model(Quadratic(), train, test, epochs=1, lr=0)
    with pytest.raises(ValueError, match="no examples"):
        train_model(Quadratic(), train, [], epochs=1, lr=0.1)
    with pytest.raises(ValueError, match="no batches"):
        train_model(Quadratic(), [], test, epochs=1, lr=0.1)
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            train_model(Quadratic(), train, test, epochs=1, lr=0.1, use_cuda=True)


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


def test_default_loss_key_trains_every_model_of_the_package():
    from dgm.vae import ConvVAE

    x = torch.randn(32, 2)
    tr, _ = train_model(
        VAE2d(2, 2, [8], [8]), DataLoader(x, batch_size=16), DataLoader(x, batch_size=16), 1, 1e-3
    )
    assert len(tr["elbo_loss"]) == 2
    images = torch.rand(8, 3, 32, 32) * 2 - 1
    tr, _ = train_model(
        ConvVAE((3, 32, 32), 4, channels=(4, 4, 4, 4)),
        DataLoader(images, batch_size=8),
        DataLoader(images, batch_size=8),
        1,
        1e-3,
    )
    assert len(tr["elbo_loss"]) == 1


def _data_2d(mode="univariate"):
    return generate_2d_data(2000, mode)  # the smoke profile's count: (1400, 2) train, (600, 2) test


def test_fit_concatenates_the_decay_phase():
    train, test = _data_2d()
    torch.manual_seed(0)
    model = VAE2d(2, 2, [8], [8])
    tr, te = fit(model, train, test, batch_size=100, epochs=3, lr=1e-2, decay_epochs=1, seed=0)
    assert len(te["elbo_loss"]) == 3 + 1  # before training, then one per epoch
    assert len(tr["elbo_loss"]) == 3 * 14  # 1400 training points in batches of 100
    with pytest.raises(ValueError, match="decay_epochs"):
        fit(model, train, test, 100, 2, 1e-2, decay_epochs=3)


def test_fit_is_reproducible_with_a_seed():
    train, test = _data_2d()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = VAE2d(2, 2, [8], [8])
        runs.append(fit(model, train, test, 100, 1, 1e-2, seed=1)[0]["elbo_loss"][:5])
    assert runs[0][:1] != [] and runs[0] == pytest.approx(runs[1])
