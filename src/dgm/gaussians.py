"""Diagonal Gaussians: KL divergence, negative log-likelihood and reparameterised sampling.

Every function works elementwise: a diagonal Gaussian in D dimensions is D independent scalar
Gaussians, so a caller sums over the last dimension to get the D-dimensional quantity. Standard
deviations are passed as their logarithm (``log_std``), as in the homework, so that any real
network output is a valid parameter.
"""

from __future__ import annotations

import math

import torch

LOG_2PI = math.log(2 * math.pi)


def _as_float(name: str, t: torch.Tensor) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())


def check_broadcast(**tensors: torch.Tensor) -> torch.Size:
    """The common shape of ``tensors``, refusing broadcasts that would silently enlarge them.

    Torch would broadcast shapes ``(B,)`` and ``(B, 1)`` to ``(B, B)``: an outer product that is
    almost never meant. Here the result must equal the shape of one of the inputs (the others
    broadcast into it), and all tensors must live on one device.
    """
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        desc = ", ".join(f"{k} on {t.device}" for k, t in tensors.items())
        raise ValueError(f"tensors are on different devices: {desc}")
    shapes = {k: tuple(t.shape) for k, t in tensors.items()}
    try:
        shape = torch.broadcast_shapes(*shapes.values())
    except RuntimeError as e:
        raise ValueError(f"shapes do not broadcast: {shapes}") from e
    if tuple(shape) not in shapes.values():
        raise ValueError(
            f"shapes {shapes} would broadcast to {tuple(shape)}, larger than every input; "
            "reshape explicitly if that is intended"
        )
    return shape


def scaled_square(diff: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """``(diff / exp(log_scale))^2`` without ``0 * inf``, values and gradients: (...) -> (...).

    The direct ``diff**2 * exp(-2 log_scale)`` is ``nan`` where ``diff = 0`` and ``exp`` overflows
    (``log_scale < -44`` in float32), and overflows where the true value is finite. Computed as
    ``exp(2 (log|diff| - log_scale))``, with ``diff = 0`` (exactly 0, gradient 0) kept out of the
    logarithm by substituting safe values inside (the "double where" that keeps gradients finite).
    """
    zero = diff == 0
    safe_diff = torch.where(zero, torch.ones_like(diff), diff)
    safe_scale = torch.where(zero, torch.zeros_like(log_scale), log_scale)
    square = torch.exp(2 * (torch.log(torch.abs(safe_diff)) - safe_scale))
    return torch.where(zero, torch.zeros_like(square), square)


def get_normal_KL(
    mean_1: torch.Tensor,
    log_std_1: torch.Tensor,
    mean_2: torch.Tensor | None = None,
    log_std_2: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(N(mean_1, exp(log_std_1)^2) || N(mean_2, exp(log_std_2)^2)), elementwise: (...) -> (...).

    ``None`` for ``mean_2``/``log_std_2`` means the standard normal. Closed form:
    ``log s2 - log s1 + (s1^2 + (m1 - m2)^2) / (2 s2^2) - 1/2``.
    """
    mean_1, log_std_1 = _as_float("mean_1", mean_1), _as_float("log_std_1", log_std_1)
    mean_2 = torch.zeros_like(mean_1) if mean_2 is None else _as_float("mean_2", mean_2)
    log_std_2 = torch.zeros_like(log_std_1) if log_std_2 is None else _as_float("log_std_2", log_std_2)
    check_broadcast(mean_1=mean_1, log_std_1=log_std_1, mean_2=mean_2, log_std_2=log_std_2)
    var_ratio = torch.exp(2 * (log_std_1 - log_std_2))
    mean_term = scaled_square(mean_1 - mean_2, log_std_2)
    return log_std_2 - log_std_1 + 0.5 * (var_ratio + mean_term) - 0.5


def get_normal_nll(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """-log N(x | mean, exp(log_std)^2), elementwise: (...) -> (...).

    Closed form: ``log_std + log(2 pi) / 2 + (x - mean)^2 / (2 exp(2 log_std))``.
    """
    x, mean, log_std = _as_float("x", x), _as_float("mean", mean), _as_float("log_std", log_std)
    check_broadcast(x=x, mean=mean, log_std=log_std)
    return log_std + 0.5 * LOG_2PI + 0.5 * scaled_square(x - mean, log_std)


def sample_normal(mean: torch.Tensor, log_std: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """Reparameterised sample ``mean + exp(log_std) * eps``, eps ~ N(0, I): (...) -> (...).

    Gradients flow to ``mean`` and ``log_std`` (the reparameterisation trick, Kingma & Welling
    2014). Pass ``eps`` to reuse noise.
    """
    mean, log_std = _as_float("mean", mean), _as_float("log_std", log_std)
    check_broadcast(mean=mean, log_std=log_std)
    if eps is None:
        eps = torch.randn_like(mean + log_std)
    else:
        check_broadcast(mean=mean, log_std=log_std, eps=eps)
    return mean + torch.exp(log_std) * eps


def monte_carlo_kl(
    mean: torch.Tensor,
    log_std: torch.Tensor,
    mean_2: torch.Tensor | None = None,
    log_std_2: torch.Tensor | None = None,
    n_samples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    """Monte Carlo KL(q || p) of diagonal Gaussians, summed over dimensions, and its standard error:
    (d,) -> 2 floats.

    The average of ``log q(z) - log p(z)`` over ``n_samples`` reparameterised samples ``z`` of q
    (``None`` for ``mean_2``/``log_std_2``: the standard normal p). It estimates :func:`get_normal_KL`
    without bias, from log-densities (:func:`get_normal_nll`) instead of the closed form.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer >= 2, got {n_samples!r}")
    mean, log_std = _as_float("mean", mean), _as_float("log_std", log_std)
    if mean.dim() != 1:
        raise ValueError(f"mean and log_std are vectors (d,), got shape {tuple(mean.shape)}")
    mean_2 = torch.zeros_like(mean) if mean_2 is None else _as_float("mean_2", mean_2)
    log_std_2 = torch.zeros_like(log_std) if log_std_2 is None else _as_float("log_std_2", log_std_2)
    check_broadcast(mean=mean, log_std=log_std, mean_2=mean_2, log_std_2=log_std_2)
    generator = torch.Generator(device=mean.device).manual_seed(seed)
    eps = torch.randn(n_samples, mean.shape[0], generator=generator, dtype=mean.dtype, device=mean.device)
    z = sample_normal(mean, log_std, eps)  # (n, d)
    log_ratio = (get_normal_nll(z, mean_2, log_std_2) - get_normal_nll(z, mean, log_std)).sum(dim=1)  # (n,)
    return float(log_ratio.mean()), float(log_ratio.std() / math.sqrt(n_samples))
