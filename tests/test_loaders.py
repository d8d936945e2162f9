from __future__ import annotations

import pytest
import torch

from dgm.loaders import TensorLoader
from dgm.training import train_model


def test_each_pass_visits_every_example_once_in_a_new_order():
    data = torch.arange(10).float().unsqueeze(1)
    loader = TensorLoader(data, batch_size=3, shuffle=True, seed=1)
    assert len(loader) == 4
    passes = [torch.cat(list(loader)).squeeze(1) for _ in range(3)]
    for p in passes:
        assert sorted(p.tolist()) == list(range(10))
    assert not torch.equal(passes[0], passes[1])
    again = TensorLoader(data, batch_size=3, shuffle=True, seed=1)
    assert torch.equal(torch.cat(list(again)).squeeze(1), passes[0])  # seeded


def test_in_order_batches_are_views_and_drop_last():
    data = torch.randn(10, 2)
    batches = list(TensorLoader(data, batch_size=4))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert batches[0].data_ptr() == data.data_ptr()  # no copy
    assert [len(b) for b in TensorLoader(data, batch_size=4, drop_last=True)] == [4, 4]
    assert len(TensorLoader(data, batch_size=4, drop_last=True)) == 2


def test_bad_arguments():
    with pytest.raises(ValueError, match="non-empty"):
        TensorLoader(torch.zeros(0, 3), 2)
    with pytest.raises(ValueError, match="batch_size"):
        TensorLoader(torch.zeros(4, 3), 0)


def test_train_model_accepts_it():
    class Mean(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def loss(self, x):
            return {"elbo_loss": ((x - self.w) ** 2).mean()}

    data = torch.full((32, 1), 2.0)
    tr, te = train_model(
        Mean(), TensorLoader(data, 8, shuffle=True), TensorLoader(data, 16), epochs=2, lr=0.1
    )
    assert len(tr["elbo_loss"]) == 8 and te["elbo_loss"][-1] < te["elbo_loss"][0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_stay_on_the_device():
    data = torch.randn(20, 3, device="cuda")
    for batch in TensorLoader(data, 8, shuffle=True):
        assert batch.device == data.device


def test_seed_none_follows_torch_global_stream():
    data = torch.arange(12).float().unsqueeze(1)
    torch.manual_seed(3)
    first = torch.cat(list(TensorLoader(data, 5, shuffle=True, seed=None)))
    torch.manual_seed(3)
    assert torch.equal(torch.cat(list(TensorLoader(data, 5, shuffle=True, seed=None))), first)
    assert sorted(first.squeeze(1).tolist()) == list(range(12))
