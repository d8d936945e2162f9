"""Probes of a student's VAE: fixed outputs, the scale of the sampled noise, the loss's terms, gradients.

What the checks of :mod:`dgm.homework.models` are made of. :func:`fix_output` sets a dense layer to
output fixed numbers, so that mu_z, log_std_z (or mu_x, log_std_x) are known; then
:func:`check_noise_scale` measures the noise a model adds to them (its scale names the
variance-for-std mistakes), :func:`check_terms` compares the loss's terms with their right values
and the values the usual mistakes give, and :func:`check_reparameterised` asks whether the
reconstruction term sends gradients to the encoder. :func:`hooked` records a module's inputs or
outputs.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from dgm.homework.diagnose import as_tensor, call, compare, expect_shape, fail, gradient_reaches

MU_Z, LOG_STD_Z = [1.0, -2.0, 0.5], [math.log(3.0), math.log(0.5), math.log(2.0)]
MU_X, LOG_STD_X = [2.0, -1.0], [math.log(2.0), math.log(0.25)]


def fix_output(layer: nn.Linear, values: list[float]) -> None:
    """Make a dense layer output ``values`` whatever its input (weights 0, bias ``values``)."""
    with torch.no_grad():
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor(values))


def only(name: str, layers: list[nn.Linear], what: str) -> nn.Linear:
    if len(layers) != 1:
        fail(name, f"expected one {what}, found {len(layers)}")
    return layers[0]


def check_prior(name: str, model: nn.Module, n_latent: int) -> None:
    z = as_tensor(name, "prior(20000)", call(name, "prior(20000)", model.prior, 20000))
    expect_shape(name, "prior(20000)", z, (20000, n_latent), " (n samples of the n_latent-dimensional prior)")
    if z.device != next(model.parameters()).device:
        fail(name, f"prior returns samples on {z.device}, the model is on {next(model.parameters()).device}")
    if not z.is_floating_point():
        fail(name, f"prior returns {z.dtype} samples; use torch.randn")
    if abs(float(z.mean())) > 0.05 or abs(float(z.std()) - 1) > 0.05:
        fail(
            name,
            f"prior samples have mean {float(z.mean()):.3f} and std {float(z.std()):.3f}: the prior is the "
            "standard normal N(0, I) (torch.randn)",
        )
    if torch.equal(z[:10], call(name, "prior(10)", model.prior, 10)):
        fail(name, "prior returns the same numbers at every call: draw them (torch.randn)")


def check_noise_scale(
    name: str, z: torch.Tensor, mu: list[float], log_std: list[float], v: str = "z"
) -> None:
    """The sampled ``v`` against mu + exp(log_std) * eps: which scale the noise really has."""
    mu_t, ls = torch.tensor(mu), torch.tensor(log_std)
    d = z.detach() - mu_t
    m, s_ = f"mu_{v}", f"exp(log_std_{v})"
    if torch.allclose(d, torch.zeros_like(d)):
        fail(name, f"{v} is {m}: no noise is drawn; {v} = {m} + {s_} * eps with eps ~ N(0, I)")
    if float(d.mean(0).abs().max()) > 0.15 * float(ls.exp().max()):
        fail(name, f"the sampled {v} is not centred at {m}: {v} = {m} + {s_} * eps")
    s = d.std(0)
    hints = {
        f"the noise is scaled by exp(2 * log_std_{v}), the variance; scale it by the "
        f"standard deviation {s_}": ls.mul(2).exp(),
        f"the noise is scaled by log_std_{v} itself; the standard deviation is {s_}": ls.abs(),
        f"the noise is not scaled: {v} = {m} + {s_} * eps": torch.ones_like(ls),
        f"the noise is scaled by exp(log_std_{v} / 2), as if log_std_{v} were a "
        f"log-variance; it is {s_}": ls.div(2).exp(),
    }
    if torch.all((s / ls.exp() - 1).abs() < 0.1):
        return
    for hint, scale in hints.items():
        if torch.all((s / scale - 1).abs() < 0.1):
            fail(name, hint)
    fail(name, f"the noise in {v} has standard deviations {s.tolist()}, expected {s_} = {ls.exp().tolist()}")


def loss_terms(name: str, model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
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
    kl: torch.Tensor,
    beta: float,
    batch: int,
    dims: int,
    n_latent: int,
    kl_swapped: torch.Tensor,
    log_2pi_term: float,
) -> None:
    """``out``'s terms against the right recon and kl, naming the usual mistakes."""
    compare(
        name,
        "recon_loss",
        out["recon_loss"],
        recon,
        {
            "recon_loss is summed over the batch; average it over the batch (and sum over dimensions)": recon
            * batch,
            "recon_loss is averaged over the data's dimensions; sum over them (the "
            "log-density of a vector is the "
            "sum over its coordinates) and average over the batch": recon / dims,
            "recon_loss is the log-likelihood; the loss is the negative log-likelihood "
            "(get_normal_nll)": -recon,
            "recon_loss lacks the constant 1/2 log(2 pi) per dimension: use get_normal_nll": recon
            - log_2pi_term,
            "recon_loss is the sum of squared errors; the Gaussian NLL is half of it "
            "plus 1/2 log(2 pi) per dimension "
            "(get_normal_nll)": 2 * (recon - log_2pi_term),
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
            "kl_loss is KL(p(z) || q(z | x)): the arguments are swapped, the ELBO has "
            "KL(q(z | x) || p(z))": kl_swapped,
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
    if not out["elbo_loss"].requires_grad:
        fail(
            name, "elbo_loss carries no gradient: compute it with torch operations (no .item() or .detach())"
        )


def check_reparameterised(name: str, model: nn.Module, x: torch.Tensor, encoder: list, decoder: list) -> None:
    out = loss_terms(name, model, x)
    if not gradient_reaches(out["recon_loss"], encoder):
        fail(
            name,
            "the reconstruction term sends no gradient to the encoder: compute z = mu_z "
            "+ exp(log_std_z) * eps "
            "from the encoder's outputs (the reparameterisation trick; no torch.normal, "
            ".sample() or .detach())",
        )
    if not gradient_reaches(out["elbo_loss"], decoder):
        fail(
            name,
            "elbo_loss sends no gradient to the decoder: decode z in forward and use its output in the loss",
        )


def hooked(module: nn.Module, pre: bool):
    """A list that collects the inputs (``pre``) or outputs of ``module``'s calls, and the hook's handle."""
    seen: list[torch.Tensor] = []
    if pre:
        handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    else:
        handle = module.register_forward_hook(lambda m, args, out: seen.append(out))
    return seen, handle
