"""dgm.tasks: the homework's solve_task trains the model it is given, prints its losses and plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from dgm import solve_task  # noqa: E402
from dgm.data import generate_2d_data  # noqa: E402
from dgm.vae import VAE2d  # noqa: E402


def test_solve_task_trains_prints_and_plots(capsys):
    train, test = generate_2d_data(2000, "multivariate")
    torch.manual_seed(0)
    model = VAE2d(2, 2, [16], [16])
    tr, te = solve_task(train, test, model, batch_size=64, epochs=2, lr=5e-3)
    out = capsys.readouterr().out
    for key in ("elbo_loss", "recon_loss", "kl_loss"):
        assert f"{key}: {te[key][-1]:.4f}" in out
    assert te["elbo_loss"][-1] < te["elbo_loss"][0]
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA"):
            solve_task(train, test, model, 64, 1, 1e-3, use_cuda=True)
