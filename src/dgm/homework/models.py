"""The checks of the two VAEs, ``VAE2d`` and ``ConvVAE``: each method, by what it must compute.

The trick that makes the checks exact (:mod:`dgm.homework.probes`): the last dense layer of the
encoder (and, for ``VAE2d``, of the decoder) is set to output fixed numbers, so that mu_z,
log_std_z (mu_x, log_std_x) are known. Then the noise the model adds to mu_z can be measured (its
scale names the variance-for-std mistakes), the KL term has one right value, and so has the
reconstruction term (``VAE2d``) or its value given the decoded batch (``ConvVAE``, read by a hook),
and each term must send a gradient to every one of the fixed outputs (the reparameterisation).
Each VAE is checked with the book's networks and Gaussian functions lent in place of the student's,
so that a mistake there is reported by its own check only; a model whose ``__init__`` does not
accept the book's networks (its own signature) is checked with its own.
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
    check_gradients,
    check_noise_scale,
    check_prior,
    check_standard_normal,
    check_terms,
    fix_output,
    loss_terms,
    only,
    recording,
)

GAUSSIANS = {"get_normal_KL": gaussians.get_normal_KL, "get_normal_nll": gaussians.get_normal_nll}
NETWORKS = {
    "FullyConnectedMLP": nets.FullyConnectedMLP,
    "ConvEncoder": nets.ConvEncoder,
    "ConvDecoder": nets.ConvDecoder,
}


def _lent(name: str, cls, args: tuple, run) -> None:
    """``run(model)`` with the book's networks and Gaussian functions lent, or with its own networks
    when the model cannot be built on the book's (its networks take other arguments)."""
    failure = None
    for references in ({**GAUSSIANS, **NETWORKS}, GAUSSIANS):
        with with_references(cls, references):
            try:
                with seeded(0):
                    model = instantiate(name, cls, *args)
            except AssertionError as exc:
                failure = failure or exc
                continue
            run(call(name, "copy.deepcopy(model)", copy.deepcopy, model), model)
            return
    raise failure


def _fixed_forward(name: str, fixed: nn.Module, x: torch.Tensor, decoder_in: nn.Module, seed: int):
    """``fixed(x)`` and what its decoder received."""
    with recording(decoder_in, pre=True) as seen, seeded(seed):
        out = call(name, "forward(x)", fixed, x)
    if not seen:
        fail(name, "forward never calls the decoder")
    return out, seen[0]


def _expect_outputs(name: str, out: tuple, values: tuple, parts: tuple, b: int) -> None:
    """forward's outputs against the fixed values, naming outputs given in the wrong order."""
    for i, (part, t, want) in enumerate(zip(parts, out, values)):
        other = values[i + 1] if i % 2 == 0 else values[i - 1]  # mu <-> log_std of the same network
        expect_shape(name, f"forward(x): {part}", as_tensor(name, part, t), (b, len(want)))
        compare(
            name,
            f"forward(x): {part}",
            t,
            torch.tensor(want).expand(b, len(want)),
            {
                f"forward's {part} holds what belongs in another output: return mu_z, log_std_z, "
                "mu_x, log_std_x in this order, each network's output split with .chunk(2, dim=1), "
                "means first": torch.tensor(other).expand(b, len(want))
            },
        )


def check_VAE2d(cls) -> None:
    """``VAE2d(n_in, n_latent, enc_hidden_sizes, dec_hidden_sizes)``: prior, forward, loss, sample."""
    _lent("VAE2d", cls, (2, 3, [16, 8], [12]), _check_vae2d)


def _check_vae2d(fixed: nn.Module, model: nn.Module) -> None:
    name, n_in, n_latent, b = "VAE2d", 2, 3, 4000
    check_prior(name, model, n_latent)
    layers = {(m.in_features, m.out_features) for m in linears(model)}
    if layers != {(2, 16), (16, 8), (8, 6), (3, 12), (12, 4)}:
        fail(
            name,
            f"VAE2d(2, 3, [16, 8], [12]) has the dense layers {sorted(layers)}, expected an encoder 2x16 -> "
            "16x8 -> 8x6 (n_in, enc_hidden_sizes, 2 * n_latent) and a decoder 3x12 -> 12x4 (n_latent, "
            "dec_hidden_sizes, 2 * n_in)",
        )
    enc_out = only(
        name, [m for m in linears(fixed) if m.out_features == 2 * n_latent], "encoder output layer"
    )
    dec_in = only(name, [m for m in linears(fixed) if m.in_features == n_latent], "decoder input layer")
    dec_out = only(name, [m for m in linears(fixed) if m.out_features == 2 * n_in], "decoder output layer")
    fix_output(name, enc_out, MU_Z + LOG_STD_Z)
    x = torch.randn(b, n_in, generator=torch.Generator().manual_seed(2)) * 3
    out, z = _fixed_forward(name, fixed, x, dec_in, 2)
    if not isinstance(out, tuple) or len(out) != 4:
        fail(name, "forward should return (mu_z, log_std_z, mu_x, log_std_x)")
    _expect_outputs(name, out[:2], (MU_Z, LOG_STD_Z), ("mu_z", "log_std_z"), b)
    check_noise_scale(name, z, MU_Z, LOG_STD_Z)
    with seeded(1):  # the decoder as it is: the reconstruction term depends on z
        check_gradients(name, loss_terms(name, fixed, x[:256]), enc_out, list(dec_out.parameters()), n_latent)
    fix_output(name, dec_out, MU_X + LOG_STD_X)
    out, _ = _fixed_forward(name, fixed, x, dec_in, 2)
    _expect_outputs(
        name, out, (MU_Z, LOG_STD_Z, MU_X, LOG_STD_X), ("mu_z", "log_std_z", "mu_x", "log_std_x"), b
    )
    recon = gaussians.get_normal_nll(
        x, torch.tensor(MU_X).expand(b, n_in), torch.tensor(LOG_STD_X).expand(b, n_in)
    )
    with seeded(3):
        terms = loss_terms(name, fixed, x)
    mu_z, ls_z = torch.tensor(MU_Z).expand(b, n_latent), torch.tensor(LOG_STD_Z).expand(b, n_latent)
    check_terms(name, terms, recon.sum(1).mean(), mu_z, ls_z, 1.0, n_in)
    (g,) = torch.autograd.grad(terms["recon_loss"], [dec_out.bias], allow_unused=True)
    g = torch.zeros_like(dec_out.bias) if g is None else g
    for part, half in (("mu_x", g[:n_in]), ("log_std_x", g[n_in:])):
        if bool(torch.any(half == 0)):
            fail(
                name,
                f"recon_loss sends no gradient to {part}: use the decoder's {part} in get_normal_nll "
                "(not detached)",
            )
    with seeded(4):
        one = call(name, "forward on a batch of one", fixed, x[:1])
        loss_terms(name, fixed, x[:1])
    expect_shape(name, "forward on a batch of one: mu_x", as_tensor(name, "mu_x", one[2]), (1, n_in))
    for noise in (False, True):
        what = f"sample(5000, sample_from_decoder={noise})"
        with recording(dec_in, pre=True) as codes, seeded(5):
            s = call(name, what, fixed.sample, 5000, sample_from_decoder=noise)
        if not isinstance(s, np.ndarray):
            fail(name, f"{what} returned a {type(s).__name__}; the homework returns numpy (.cpu().numpy())")
        expect_shape(name, what, torch.as_tensor(s), (5000, n_in))
        if not codes:
            fail(name, f"{what} never calls the decoder: decode z = self.prior(n)")
        check_standard_normal(name, codes[-1], f"the codes {what} decodes")
        if noise:
            check_noise_scale(name, torch.as_tensor(s), MU_X, LOG_STD_X, v="x")
        elif float(np.abs(s - np.asarray(MU_X)).max()) > 1e-4:
            fail(
                name,
                f"{what} should return the decoder's means mu_x; "
                + ("noise was added" if float(s.std(0).max()) > 0.01 else "it returns other numbers"),
            )


def check_ConvVAE(cls) -> None:
    """``ConvVAE(input_shape, n_latent, beta=1)``: encoder, decoder, prior, forward, loss, sample."""
    _lent("ConvVAE", cls, ((3, 32, 32), 3, 2.5), lambda fixed, model: _check_conv_vae(cls, fixed, model))


def _check_conv_vae(cls, fixed: nn.Module, model: nn.Module) -> None:
    name, shape, n_latent, beta = "ConvVAE", (3, 32, 32), 3, 2.5
    for part in ("encoder", "decoder"):
        if not isinstance(getattr(model, part, None), nn.Module):
            fail(name, f"self.{part} is not a network: the cells after training call model.{part}")
    check_prior(name, model, n_latent)
    enc_out = only(
        name,
        [m for m in linears(fixed.encoder) if m.out_features == 2 * n_latent],
        "encoder output layer of 2 * n_latent numbers (the check fixes its outputs)",
    )
    fix_output(name, enc_out, MU_Z + LOG_STD_Z)
    big = torch.rand(1000, *shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        out, z = _fixed_forward(name, fixed, big, fixed.decoder, 2)
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
    check_noise_scale(name, z, MU_Z, LOG_STD_Z)
    x = torch.rand(32, *shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with recording(fixed.decoder, pre=False) as decoded, seeded(3):
        terms = loss_terms(name, fixed, x)
    if not decoded:
        fail(name, "loss never calls self.decoder")
    check_gradients(name, terms, enc_out, list(fixed.decoder.parameters()), n_latent)
    mu_z, ls_z = torch.tensor(MU_Z).expand(len(x), n_latent), torch.tensor(LOG_STD_Z).expand(len(x), n_latent)
    recon = gaussians.get_normal_nll(x, decoded[-1].detach(), torch.zeros_like(x)).sum((1, 2, 3)).mean()
    check_terms(name, terms, recon, mu_z, ls_z, beta, math.prod(shape))
    with seeded(4):
        plain = instantiate(name, cls, shape, n_latent)
        terms = loss_terms(name, plain, x)
    compare(
        name,
        "elbo_loss with the default beta = 1",
        terms["elbo_loss"],
        terms["recon_loss"] + terms["kl_loss"],
    )
    with recording(fixed.decoder, pre=False) as decoded, recording(fixed.decoder, pre=True) as codes:
        with seeded(5), torch.no_grad():
            s = call(name, "sample(1000)", fixed.sample, 1000)
    if not isinstance(s, np.ndarray):
        fail(name, f"sample(1000) returned a {type(s).__name__}; the homework returns numpy")
    expect_shape(name, "sample(1000)", torch.as_tensor(s), (1000, *shape))
    if not decoded:
        fail(name, "sample never calls self.decoder: decode prior samples")
    check_standard_normal(name, codes[-1], "the codes sample(n) decodes")
    if s.min() < 0 or s.max() > 1:
        fail(
            name,
            "sample returns values outside [0, 1]: keep the homework's last two lines (clamp, * 0.5 + 0.5)",
        )
    compare(
        name,
        "sample(1000)",
        s,
        torch.clamp(decoded[-1], -1, 1) * 0.5 + 0.5,
        {
            "sample is not the decoder's output mapped to [0, 1]: clamp to [-1, "
            "1], then * 0.5 + 0.5": decoded[-1].clamp(0, 1)
        },
    )
