"""The checks of the two VAEs, ``VAE2d`` and ``ConvVAE``: each method, by what it must compute.

The trick that makes the checks exact (:mod:`dgm.homework.probes`): the last dense layer of the
encoder (and, for ``VAE2d``, of the decoder) is set to output fixed numbers, so that mu_z,
log_std_z (mu_x, log_std_x) are known. Then the noise the model adds to mu_z can be measured (its
scale names the variance-for-std mistakes), the KL term has one right value, and so has the
reconstruction term (``VAE2d``) or its value given the decoded batch (``ConvVAE``, read by a hook).
A fresh model shows whether the reconstruction term sends gradients to the encoder (the
reparameterisation). Each VAE is checked
with the book's networks and Gaussian functions in place of the student's, so that a mistake
there is reported by its own check only.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn as nn

from dgm import gaussians, nets
from dgm.homework.diagnose import (
    as_tensor,
    call,
    compare,
    expect_shape,
    fail,
    instantiate,
    linears,
    seeded,
    with_references,
)
from dgm.homework.probes import (
    LOG_STD_X,
    LOG_STD_Z,
    MU_X,
    MU_Z,
    check_noise_scale,
    check_prior,
    check_reparameterised,
    check_terms,
    fix_output,
    hooked,
    loss_terms,
    only,
)

REFERENCES = {
    "get_normal_KL": gaussians.get_normal_KL,
    "get_normal_nll": gaussians.get_normal_nll,
    "FullyConnectedMLP": nets.FullyConnectedMLP,
    "ConvEncoder": nets.ConvEncoder,
    "ConvDecoder": nets.ConvDecoder,
}


def check_VAE2d(cls) -> None:
    """``VAE2d(n_in, n_latent, enc_hidden_sizes, dec_hidden_sizes)``: prior, forward, loss, sample."""
    with with_references(cls, REFERENCES):
        _check_vae2d(cls)


def _check_vae2d(cls) -> None:
    name, n_in, n_latent = "VAE2d", 2, 3
    with seeded(0):
        model = instantiate(name, cls, n_in, n_latent, [16, 8], [12])
    check_prior(name, model, n_latent)
    layers = linears(model)
    first_enc = [m for m in layers if m.in_features == n_in]
    first_dec = only(
        name,
        [m for m in layers if m.in_features == n_latent],
        f"decoder input layer taking n_latent = {n_latent} numbers",
    )
    only(name, first_enc, f"encoder input layer taking n_in = {n_in} numbers")
    x = torch.randn(64, n_in, generator=torch.Generator().manual_seed(1))
    with seeded(1):
        check_reparameterised(name, model, x, list(first_enc[0].parameters()), list(first_dec.parameters()))
    fixed = copy.deepcopy(model)
    fl = linears(fixed)
    fix_output(
        only(
            name,
            [m for m in fl if m.out_features == 2 * n_latent],
            f"encoder output layer of 2 * n_latent = {2 * n_latent} numbers",
        ),
        MU_Z + LOG_STD_Z,
    )
    fix_output(
        only(
            name,
            [m for m in fl if m.out_features == 2 * n_in],
            f"decoder output layer of 2 * n_in = {2 * n_in} numbers",
        ),
        MU_X + LOG_STD_X,
    )
    x = torch.randn(4000, n_in, generator=torch.Generator().manual_seed(2)) * 3
    seen, handle = hooked([m for m in linears(fixed) if m.in_features == n_latent][0], pre=True)
    try:
        with seeded(2):
            out = call(name, "forward(x)", fixed, x)
    finally:
        handle.remove()
    if not isinstance(out, tuple) or len(out) != 4:
        fail(name, "forward should return (mu_z, log_std_z, mu_x, log_std_x)")
    for part, t, size, want, other in zip(
        ("mu_z", "log_std_z", "mu_x", "log_std_x"),
        out,
        (n_latent, n_latent, n_in, n_in),
        (MU_Z, LOG_STD_Z, MU_X, LOG_STD_X),
        (LOG_STD_Z, MU_Z, LOG_STD_X, MU_X),
    ):
        expect_shape(name, f"forward(x): {part}", as_tensor(name, part, t), (len(x), size))
        compare(
            name,
            f"forward(x): {part}",
            t,
            torch.tensor(want).expand(len(x), size),
            {
                f"forward returns the values of another output where {part} belongs: mu_z, log_std_z, mu_x, "
                "log_std_x, in this order, each network's output split with .chunk(2, "
                "dim=1) (means first)": torch.tensor(other).expand(len(x), size)
            },
        )
    if not seen:
        fail(name, "forward never calls the decoder")
    check_noise_scale(name, seen[0], MU_Z, LOG_STD_Z)
    mu_x, ls_x = torch.tensor(MU_X).expand(len(x), n_in), torch.tensor(LOG_STD_X).expand(len(x), n_in)
    mu_z, ls_z = torch.tensor(MU_Z).expand(len(x), n_latent), torch.tensor(LOG_STD_Z).expand(len(x), n_latent)
    recon = gaussians.get_normal_nll(x, mu_x, ls_x).sum(1).mean()
    kl = gaussians.get_normal_KL(mu_z, ls_z).sum(1).mean()
    swapped = (
        gaussians.get_normal_KL(torch.zeros_like(mu_z), torch.zeros_like(ls_z), mu_z, ls_z).sum(1).mean()
    )
    with seeded(3):
        terms = loss_terms(name, fixed, x)
    check_terms(
        name, terms, recon, kl, 1.0, len(x), n_in, n_latent, swapped, 0.5 * math.log(2 * math.pi) * n_in
    )
    with seeded(4):
        one = call(name, "forward on a batch of one", fixed, x[:1])
        loss_terms(name, fixed, x[:1])
    expect_shape(name, "forward on a batch of one: mu_x", as_tensor(name, "mu_x", one[2]), (1, n_in))
    for noise in (False, True):
        what = f"sample(5000, sample_from_decoder={noise})"
        with seeded(5):
            s = call(name, what, fixed.sample, 5000, sample_from_decoder=noise)
        if not isinstance(s, np.ndarray):
            fail(name, f"{what} returned a {type(s).__name__}; the homework returns numpy (.cpu().numpy())")
        expect_shape(name, what, torch.as_tensor(s), (5000, n_in))
        if noise:
            check_noise_scale(name, torch.as_tensor(s, dtype=torch.float32), MU_X, LOG_STD_X, v="x")
        elif float(np.abs(s - np.asarray(MU_X)).max()) > 1e-4:
            fail(
                name,
                f"{what} should return the decoder's means mu_x; "
                + ("noise was added" if float(s.std(0).max()) > 0.01 else "it returns other numbers"),
            )
    with seeded(6):
        a = call(name, "sample(10, sample_from_decoder=False)", model.sample, 10, sample_from_decoder=False)
    with seeded(7):
        b = model.sample(10, sample_from_decoder=False)
    if np.allclose(a, b):
        fail(name, "sample gives the same means for different draws: decode z = self.prior(n)")


def check_ConvVAE(cls) -> None:
    """``ConvVAE(input_shape, n_latent, beta=1)``: encoder, decoder, prior, forward, loss, sample."""
    with with_references(cls, REFERENCES):
        _check_conv_vae(cls)


def _check_conv_vae(cls) -> None:
    name, shape, n_latent, beta = "ConvVAE", (3, 32, 32), 3, 2.5
    with seeded(0):
        model = instantiate(name, cls, shape, n_latent, beta)
    for part in ("encoder", "decoder"):
        if not isinstance(getattr(model, part, None), nn.Module):
            fail(name, f"self.{part} is not a network: the cells after training call model.{part}")
    check_prior(name, model, n_latent)
    x = torch.rand(32, *shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with seeded(1):
        check_reparameterised(
            name, model, x, list(model.encoder.parameters()), list(model.decoder.parameters())
        )
    fixed = copy.deepcopy(model)
    fix_output(
        only(
            name,
            [m for m in linears(fixed.encoder) if m.out_features == 2 * n_latent],
            f"encoder output layer of 2 * n_latent = {2 * n_latent} numbers",
        ),
        MU_Z + LOG_STD_Z,
    )
    big = torch.rand(600, *shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    seen, handle = hooked(fixed.decoder, pre=True)
    try:
        with seeded(2):
            out = call(name, "forward(x)", fixed, big)
    finally:
        handle.remove()
    if not isinstance(out, tuple) or len(out) != 3:
        fail(name, "forward should return (mu_z, log_std_z, x_recon)")
    for part, t, size in zip(("mu_z", "log_std_z", "x_recon"), out, ((n_latent,), (n_latent,), shape)):
        expect_shape(name, f"forward(x): {part}", as_tensor(name, part, t), (len(big), *size))
    compare(
        name,
        "forward(x): mu_z",
        out[0],
        torch.tensor(MU_Z).expand(len(big), n_latent),
        {
            "forward returns log_std_z where mu_z belongs: the order is mu_z, "
            "log_std_z, x_recon": torch.tensor(LOG_STD_Z).expand(len(big), n_latent)
        },
    )
    if not seen:
        fail(name, "forward never calls self.decoder")
    check_noise_scale(name, seen[0], MU_Z, LOG_STD_Z)
    decoded, handle = hooked(fixed.decoder, pre=False)
    try:
        with seeded(3):
            terms = loss_terms(name, fixed, x)
    finally:
        handle.remove()
    if not decoded:
        fail(name, "loss never calls self.decoder")
    mu_z, ls_z = torch.tensor(MU_Z).expand(len(x), n_latent), torch.tensor(LOG_STD_Z).expand(len(x), n_latent)
    recon = gaussians.get_normal_nll(x, decoded[-1].detach(), torch.zeros_like(x)).sum((1, 2, 3)).mean()
    kl = gaussians.get_normal_KL(mu_z, ls_z).sum(1).mean()
    swapped = (
        gaussians.get_normal_KL(torch.zeros_like(mu_z), torch.zeros_like(ls_z), mu_z, ls_z).sum(1).mean()
    )
    dims = math.prod(shape)
    check_terms(
        name, terms, recon, kl, beta, len(x), dims, n_latent, swapped, 0.5 * math.log(2 * math.pi) * dims
    )
    with seeded(4):
        plain = instantiate(name, cls, shape, n_latent)
        terms = loss_terms(name, plain, x)
    compare(
        name,
        "elbo_loss with the default beta = 1",
        terms["elbo_loss"],
        terms["recon_loss"] + terms["kl_loss"],
    )
    decoded, handle = hooked(fixed.decoder, pre=False)
    codes, pre = hooked(fixed.decoder, pre=True)
    try:
        with seeded(5):
            s = call(name, "sample(16)", fixed.sample, 16)
    finally:
        handle.remove()
        pre.remove()
    if not isinstance(s, np.ndarray):
        fail(name, f"sample(16) returned a {type(s).__name__}; the homework returns numpy")
    expect_shape(name, "sample(16)", torch.as_tensor(s), (16, *shape))
    if not decoded:
        fail(name, "sample never calls self.decoder: decode prior samples")
    if not 0.5 < float(codes[-1].std()) < 1.5:
        fail(name, "sample does not decode different draws of the prior: decode z = self.prior(n)")
    if s.min() < 0 or s.max() > 1:
        fail(
            name,
            "sample returns values outside [0, 1]: keep the homework's last two lines (clamp, * 0.5 + 0.5)",
        )
    compare(
        name,
        "sample(16)",
        s,
        torch.clamp(decoded[-1], -1, 1) * 0.5 + 0.5,
        {
            "sample is not the decoder's output mapped to [0, 1]: clamp to [-1, 1], "
            "then * 0.5 + 0.5": decoded[-1].clamp(0, 1)
        },
    )
