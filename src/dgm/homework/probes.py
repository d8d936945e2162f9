"""Probes of a student's VAE: fixed outputs, the sampled noise, the loss's terms, where gradients go.

What the checks of :mod:`dgm.homework.models` are made of. :func:`fix_output` sets a dense layer to
output fixed numbers, so that mu_z, log_std_z (or mu_x, log_std_x) are known; then
:func:`check_noise_scale` measures the noise a model adds to them (its scale names the
variance-for-std mistakes, its correlations noise shared between dimensions), :func:`check_terms`
compares the loss's terms with their right values and with the values the usual mistakes give, and
:func:`check_gradients` asks whether each term sends a gradient to every output of the encoder (the
reparameterisation: through mu_z and log_std_z both). :func:`recording` records a module's inputs or
outputs.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn as nn

from dgm import gaussians
from dgm.homework.diagnose import as_tensor, call, compare, expect_shape, fail, seeded

MU_Z, LOG_STD_Z = [1.0, -2.0, 0.5], [math.log(3.0), math.log(0.5), math.log(2.0)]
MU_X, LOG_STD_X = [2.0, -1.0], [math.log(2.0), math.log(0.25)]
#: How far a measured standard deviation may be from the one it is compared with (a ratio); with at
#: least 1800 draws per dimension a right model stays within it at more than 6 standard errors.
TOLERANCE = 0.2


def fix_output(name: str, layer: nn.Linear, values: list[float]) -> None:
    """Make a dense layer output ``values`` whatever its input (weights 0, bias ``values``)."""
    if layer.bias is None:
        fail(
            name,
            "the output layer has no bias (bias=False): the check sets it to known values; keep the bias",
        )
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor(values))


def only(name: str, layers: list[nn.Linear], what: str) -> nn.Linear:
    """The one layer of ``layers``, or a failure that says what the homework's architecture has."""
    if len(layers) != 1:
        fail(name, f"the homework's model has one {what}; this one has {len(layers)}")
    return layers[0]


def check_standard_normal(name: str, z: torch.Tensor, what: str) -> None:
    """Fail unless the rows of ``z`` look like draws of N(0, I): mean 0, std 1, no correlations."""
    z = z.detach().double()
    mean, std = z.mean(0), z.std(0)
    se = 1 / math.sqrt(len(z))
    corr = torch.corrcoef(z.T) - torch.eye(z.shape[1], dtype=z.dtype) if z.shape[1] > 1 else torch.zeros(1)
    if mean.abs().max() > 8 * se or (std - 1).abs().max() > 8 * se or corr.abs().max() > 8 * se:
        fail(
            name,
            f"{what} are not draws of the standard normal N(0, I): their means are {mean.tolist()}, their "
            f"standard deviations {std.tolist()}; draw them with self.prior(n) (torch.randn)",
        )


def check_prior(name: str, model: nn.Module, n_latent: int) -> None:
    """``model.prior(n)``: n draws of N(0, I) on the model's device, new ones at every call."""
    with seeded(11):
        z = as_tensor(name, "prior(20000)", call(name, "prior(20000)", model.prior, 20000))
        again = call(name, "prior(10)", model.prior, 10)
    expect_shape(name, "prior(20000)", z, (20000, n_latent), " (n samples of the n_latent-dimensional prior)")
    if z.device != next(model.parameters()).device:
        fail(name, f"prior returns samples on {z.device}, the model is on {next(model.parameters()).device}")
    if not z.is_floating_point():
        fail(name, f"prior returns {z.dtype} samples; use torch.randn")
    check_standard_normal(name, z, "prior samples")
    if torch.equal(z[:10], again):
        fail(name, "prior returns the same numbers at every call: draw them (torch.randn)")


def check_noise_scale(
    name: str, z: torch.Tensor, mu: list[float], log_std: list[float], v: str = "z"
) -> None:
    """The sampled ``v`` (rows) against mu + exp(log_std) * eps: which scale the noise really has."""
    mu_t, ls = torch.tensor(mu), torch.tensor(log_std)
    d = z.detach().float() - mu_t
    m, s_ = f"mu_{v}", f"exp(log_std_{v})"
    if torch.allclose(d, torch.zeros_like(d)):
        fail(name, f"{v} is {m}: no noise is drawn; {v} = {m} + {s_} * eps with eps ~ N(0, I)")
    if float(d.mean(0).abs().max()) > 0.15 * float(ls.exp().max()):
        fail(name, f"the sampled {v} is not centred at {m}: {v} = {m} + {s_} * eps")
    if len(mu) > 1 and float((torch.corrcoef(d.T) - torch.eye(len(mu))).abs().max()) > 0.5:
        fail(name, f"the noise is the same in every dimension of {v}: eps must have the shape of {m}")
    s = d.std(0)
    hints = {
        f"the noise is scaled by exp(2 * log_std_{v}), the variance; scale it "
        f"by the standard deviation {s_}": (ls.mul(2).exp()),
        f"the noise is scaled by log_std_{v} itself; the standard deviation is {s_}": ls.abs(),
        f"the noise is not scaled: {v} = {m} + {s_} * eps": torch.ones_like(ls),
        f"the noise is scaled by exp(log_std_{v} / 2), as if log_std_{v} were a log-variance; it is {s_}": (
            ls.div(2).exp()
        ),
    }
    if torch.all((s / ls.exp() - 1).abs() < TOLERANCE):
        return
    for hint, scale in hints.items():
        if torch.all((s / scale - 1).abs() < TOLERANCE):
            fail(name, hint)
    fail(name, f"the noise in {v} has standard deviations {s.tolist()}, expected {s_} = {ls.exp().tolist()}")


def loss_terms(name: str, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """``model.loss(x)``, checked to be the homework's dict of three numbers."""
    out = call(name, "loss(x)", model.loss, x)
    if not isinstance(out, dict):
        fail(name, f"loss(x) returned a {type(out).__name__}, expected the homework's dict")
    missing = {"elbo_loss", "recon_loss", "kl_loss"} - set(out)
    if missing:
        fail(name, f"loss(x) has no {sorted(missing)}: return elbo_loss, recon_loss and kl_loss")
    for key in ("elbo_loss", "recon_loss", "kl_loss"):
        value = as_tensor(name, f"loss(x)['{key}']", out[key])
        if value.dim() != 0:
            fail(
                name,
                f"loss(x)['{key}'] has shape {tuple(value.shape)}: it is one number, summed over "
                "dimensions and averaged over the batch",
            )
    return out


def check_terms(
    name: str,
    out: dict,
    recon: torch.Tensor,
    mu_z: torch.Tensor,
    log_std_z: torch.Tensor,
    beta: float,
    dims: int,
) -> None:
    """``out``'s terms against the right ``recon`` and the KL of N(mu_z, exp(log_std_z)^2) to N(0, I)
    (both (B, n_latent)), naming the usual mistakes; ``dims`` is the data's dimension."""
    batch, n_latent = mu_z.shape
    kl = gaussians.get_normal_KL(mu_z, log_std_z).sum(1).mean()
    constant = 0.5 * math.log(2 * math.pi) * dims  # the NLL's 1/2 log(2 pi) per data dimension
    compare(
        name,
        "recon_loss",
        out["recon_loss"],
        recon,
        {
            "recon_loss is summed over the batch; average it over the batch (and sum over dimensions)": recon
            * batch,
            "recon_loss is averaged over the data's dimensions; sum over them (the "
            "log-density of a vector is the sum "
            "over its coordinates) and average over the batch": recon / dims,
            "recon_loss is the log-likelihood; the loss is the negative "
            "log-likelihood (get_normal_nll)": -recon,
            "recon_loss lacks the constant 1/2 log(2 pi) per dimension: use get_normal_nll": recon - constant,
            "recon_loss is the sum of squared errors; the Gaussian NLL is half of it plus 1/2 log(2 pi) per "
            "dimension (get_normal_nll)": 2 * (recon - constant),
            "recon_loss is the mean squared error (F.mse_loss averages over every "
            "pixel); use get_normal_nll, "
            "summed over dimensions and averaged over the batch": 2 * (recon - constant) / dims,
        },
    )
    compare(
        name,
        "kl_loss",
        out["kl_loss"],
        kl,
        {
            "kl_loss includes beta: return the KL itself, beta multiplies it in elbo_loss only": beta * kl,
            "kl_loss is summed over the batch; average it over the batch (and sum over latent dimensions)": kl
            * batch,
            "kl_loss is averaged over the latent dimensions; sum over them": kl / n_latent,
            "kl_loss is KL(p(z) || q(z | x)): the arguments are swapped, the ELBO has KL(q(z | x) || p(z))": (
                gaussians.get_normal_KL(torch.zeros_like(mu_z), torch.zeros_like(log_std_z), mu_z, log_std_z)
                .sum(1)
                .mean()
            ),
            "kl_loss reads log_std_z as a log-variance (the -1/2 (1 + log var - mu^2 - var) formula with "
            "log var = log_std_z); the variance is exp(2 * log_std_z)": (
                gaussians.get_normal_KL(mu_z, log_std_z / 2).sum(1).mean()
            ),
            "kl_loss is negative: it is KL(q || p) >= 0, added in the loss": -kl,
        },
    )
    r, k = out["recon_loss"], out["kl_loss"]
    compare(
        name,
        "elbo_loss",
        out["elbo_loss"],
        r + beta * k,
        {
            "beta is not applied: elbo_loss = recon_loss + beta * kl_loss": r + k,
            "elbo_loss subtracts the KL; the loss (negative ELBO) is recon_loss + beta * kl_loss": r
            - beta * k,
            "elbo_loss is the ELBO; the loss to minimise is its negative, recon_loss + beta * kl_loss": -(
                r + beta * k
            ),
        },
    )


def _zero_parts(loss: torch.Tensor, bias: torch.Tensor, k: int) -> list[str]:
    """Which halves (means, log-stds) of the ``2 k`` outputs behind ``bias`` get no gradient from ``loss``."""
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        return ["mu", "log_std"]
    (g,) = torch.autograd.grad(loss, [bias], allow_unused=True, retain_graph=True)
    g = torch.zeros_like(bias) if g is None else g
    return [part for part, half in zip(("mu", "log_std"), (g[:k], g[k:])) if bool(torch.any(half == 0))]


def check_gradients(name: str, out: dict, encoder_out: nn.Linear, decoder: list, n_latent: int) -> None:
    """Each term of ``out`` sends a gradient to every output of the encoder's last layer, and the
    loss to the decoder's parameters: the reparameterisation goes through mu_z and log_std_z."""
    zero = _zero_parts(out["recon_loss"], encoder_out.bias, n_latent)
    if zero == ["mu", "log_std"]:
        fail(
            name,
            "the reconstruction term sends no gradient to the encoder: compute z = mu_z + exp(log_std_z) * "
            "eps from the encoder's outputs (the reparameterisation trick; no "
            "torch.normal, .sample() or .detach())",
        )
    if zero:
        fail(
            name,
            f"the reconstruction term sends no gradient to {zero[0]}_z: z = mu_z + exp(log_std_z) * eps "
            f"must keep both in the graph (is {zero[0]}_z detached?)",
        )
    zero = _zero_parts(out["kl_loss"], encoder_out.bias, n_latent)
    if zero:
        fail(
            name,
            f"kl_loss sends no gradient to {' and '.join(p + '_z' for p in zero)}: compute it from the "
            "encoder's outputs (no .detach())",
        )
    if not out["elbo_loss"].requires_grad or not any(
        g is not None and bool(torch.any(g != 0))
        for g in torch.autograd.grad(out["elbo_loss"], decoder, allow_unused=True, retain_graph=True)
    ):
        fail(
            name,
            "elbo_loss sends no gradient to the decoder: decode z in forward and use its output in the loss",
        )


@contextlib.contextmanager
def recording(module: nn.Module, pre: bool) -> Iterator[list[torch.Tensor]]:
    """Within the block, a list of the first input (``pre``) or the output of each call of ``module``."""
    seen: list[torch.Tensor] = []
    if pre:

        def keep(m, args, kwargs):
            seen.append(args[0] if args else next(iter(kwargs.values())))

        handle = module.register_forward_pre_hook(keep, with_kwargs=True)
    else:
        handle = module.register_forward_hook(lambda m, args, out: seen.append(out))
    try:
        yield seen
    finally:
        handle.remove()
