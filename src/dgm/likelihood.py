"""Exact log-likelihood, the true posterior and the ELBO of a VAE with a two-dimensional latent.

With d = 2 latent dimensions the marginal likelihood

    log p(x) = log ∫ p(x | z) p(z) dz

is a two-dimensional integral, and a rectangle rule on a fine grid of latent points computes it to
the accuracy one asks for: the integrand is continuous (smooth between the decoder's ReLU kinks)
and decays like the prior N(0, I). Every estimate is checked against the same rule on every other
grid point; where the two differ by more than ``tol`` the step is halved, where the integrand has
not decayed at the grid's edge the grid is widened (tested against probabilistic PCA, where p(x)
is Gaussian in closed form).

The functions work with any model that has ``decode(z) -> (mu_x, log_std_x)`` (and, for the ELBO
and q(z | x), ``encode(x) -> (mu_z, log_std_z)``), as every VAE of :mod:`dgm.vae` does, with the
prior N(0, I). Results are float64 tensors on the model's device.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from dgm.gaussians import LOG_2PI


@dataclass(frozen=True)
class LatentGrid:
    """A square grid of latent points: ``axis`` (n,) in each dimension, spacing ``step``."""

    axis: torch.Tensor
    step: float

    @property
    def points(self) -> torch.Tensor:
        """All grid points, row-major: (n * n, 2); point ``i * n + j`` is ``(axis[i], axis[j])``."""
        z1, z2 = torch.meshgrid(self.axis, self.axis, indexing="ij")
        return torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)


def latent_grid(extent: float = 6.0, step: float = 0.1, device: torch.device | str = "cpu") -> LatentGrid:
    """The grid ``[-extent, extent]^2`` with an odd number of points per axis and spacing <= ``step``."""
    if not (extent > 0 and 0 < step < extent):
        raise ValueError(f"need 0 < step < extent, got step={step}, extent={extent}")
    half = math.ceil(extent / step - 1e-9)
    axis = torch.linspace(-extent, extent, 2 * half + 1, dtype=torch.float64, device=device)
    return LatentGrid(axis, extent / half)


def check_inputs(model: nn.Module, x: torch.Tensor, max_latent: int = 2) -> torch.device:
    if not (
        callable(getattr(model, "decode", None))
        and isinstance(getattr(model, "n_latent", None), int)
        and isinstance(getattr(model, "n_in", None), int)
    ):
        raise TypeError(
            f"{type(model).__name__} is not a VAE on vectors: the latent-space integrals need a model "
            "with n_in, n_latent and decode(z) -> (mu_x, log_std_x), such as VAE2d"
        )
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch of shape (B, D), got {tuple(x.shape)}")
    device = next(model.parameters()).device
    if x.device != device:
        raise ValueError(f"x is on {x.device} but the model is on {device}; move one of them")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values")
    n_latent = getattr(model, "n_latent", None)
    if max_latent == 2 and n_latent is not None and n_latent != 2:
        raise ValueError(f"grid integration needs a 2d latent space, the model has n_latent={n_latent}")
    if n_latent is not None and n_latent > max_latent:
        raise ValueError(f"quadrature costs n_nodes^n_latent; n_latent={n_latent} > {max_latent} is too many")
    return device


def eval_mode(model: nn.Module, fn: Callable, *args):
    """``fn(*args)`` without gradients and in eval mode, restoring the model's mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return fn(*args)
    finally:
        model.train(was_training)


def _decode(model: nn.Module, z: torch.Tensor, batch_size: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder parameters at latent points z (N, 2), as float64: mu_x, log_std_x, each (N, D)."""
    dtype = next(model.parameters()).dtype
    outs = eval_mode(model, lambda: [model.decode(zb.to(dtype)) for zb in z.split(batch_size)])
    mu_x = torch.cat([o[0] for o in outs]).double()
    log_std_x = torch.cat([o[1] for o in outs]).double()
    if not (torch.isfinite(mu_x).all() and torch.isfinite(log_std_x).all()):
        raise ValueError("the decoder returned NaN or infinite values on the latent grid")
    return mu_x, log_std_x


class _GridJoint:
    """log p(x, z) = log p(x | z) + log p(z) on a grid, for batches of x: (b, D) -> (b, n, n)."""

    def __init__(self, model: nn.Module, grid: LatentGrid, device: torch.device) -> None:
        self.n = grid.axis.numel()
        z = grid.points.to(device)  # (G, 2), G = n^2
        mu_x, log_std_x = _decode(model, z)  # (G, D) each
        self.d = mu_x.shape[1]
        a = torch.exp(-2 * log_std_x)  # 1 / std^2, (G, D)
        log_prior = -0.5 * (z**2).sum(dim=1) - LOG_2PI  # log N(z | 0, I) in 2d
        const = log_prior - log_std_x.sum(dim=1) - 0.5 * self.d * LOG_2PI - 0.5 * (mu_x**2 * a).sum(dim=1)
        # -(x - mu)^2 a / 2 = -x^2 a / 2 + x mu a - mu^2 a / 2: one matmul of [x^2, x, 1] with (2D + 1, G)
        self.coef = torch.cat([-0.5 * a, mu_x * a, const[:, None]], dim=1).T.contiguous()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.d:
            raise ValueError(f"x has {x.shape[1]} dimensions, the decoder's output {self.d}")
        x = x.double()
        feats = torch.cat([x**2, x, torch.ones_like(x[:, :1])], dim=1)  # (b, 2D + 1)
        return (feats @ self.coef).view(-1, self.n, self.n)  # float64 keeps the expansion exact enough


def _edge_log_fraction(lj: torch.Tensor) -> torch.Tensor:
    """log of the fraction of exp(lj) on the grid's outermost ring: (b, n, n) -> (b,)."""
    ring = torch.cat([lj[:, 0, :], lj[:, -1, :], lj[:, 1:-1, 0], lj[:, 1:-1, -1]], dim=1)
    return torch.logsumexp(ring, dim=1) - torch.logsumexp(lj.flatten(1), dim=1)


def _grid_axis(n: int, step: float, device: torch.device) -> torch.Tensor:
    """The symmetric axis of n points with spacing ``step``: (n,)."""
    return (torch.arange(n, dtype=torch.float64, device=device) - (n - 1) / 2) * step


#: quantity(log_joint (b, n, n), step, indices of the b examples) -> value (b,) and, or None, the
#: log of the fraction of another density's mass on the grid's outermost ring (b,)
Quantity = Callable[[torch.Tensor, float, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


def _adaptive_grid(
    model: nn.Module,
    x: torch.Tensor,
    quantity: Quantity,
    extent: float,
    step: float,
    tol: float,
    max_refinements: int,
    max_elements: int,
) -> torch.Tensor:
    """``quantity`` per example on grids refined until the step-halving check passes: (B, D) -> (B,)."""
    device = check_inputs(model, x)
    if not tol > 0:
        raise ValueError(f"tol must be positive, got {tol}")
    if isinstance(max_refinements, bool) or not isinstance(max_refinements, int) or max_refinements < 0:
        raise ValueError(f"max_refinements must be an integer >= 0, got {max_refinements!r}")
    if not (extent > 0 and step > 0 and step < extent):
        raise ValueError(f"need 0 < step < extent, got step={step}, extent={extent}")
    out = torch.full((x.shape[0],), float("nan"), dtype=torch.float64, device=device)
    todo = torch.arange(x.shape[0], device=device)
    for _ in range(max_refinements + 1):
        grid = latent_grid(extent, step, device)
        joint = _GridJoint(model, grid, device)
        too_coarse = too_narrow = False
        for idx in todo.split(max(1, max_elements // joint.n**2)):
            lj = joint(x[idx])  # (b, n, n)
            fine, other_edge = quantity(lj, grid.step, idx)
            coarse, _ = quantity(lj[:, ::2, ::2], 2 * grid.step, idx)  # the same rule on every other point
            edge = (
                _edge_log_fraction(lj)
                if other_edge is None
                else torch.maximum(_edge_log_fraction(lj), other_edge)
            )
            edge_ok = edge <= math.log(tol / 100)
            step_ok = (fine - coarse).abs() <= tol
            ok = edge_ok & step_ok
            out[idx[ok]] = fine[ok]
            too_narrow |= bool((~edge_ok).any())
            too_coarse |= bool((edge_ok & ~step_ok).any())
        todo = todo[torch.isnan(out[todo])]
        if todo.numel() == 0:
            return out
        reason = "posterior mass at the grid's edge" if too_narrow else "step too coarse"
        extent = extent * 1.5 if too_narrow else extent
        step = step / 2 if too_coarse else step
    raise ValueError(
        f"{todo.numel()} examples (first: index {int(todo[0])}) did not converge to tol={tol} nats "
        f"({reason}) on the grid [-{grid.axis[-1]:.3g}, {grid.axis[-1]:.3g}]^2 with step {grid.step:.3g}; "
        "raise max_refinements"
    )


def exact_log_likelihood(
    model: nn.Module,
    x: torch.Tensor,
    extent: float = 6.0,
    step: float = 0.1,
    tol: float = 1e-3,
    max_refinements: int = 4,
    max_elements: int = 2**23,
) -> torch.Tensor:
    """log p(x) = log ∫ p(x | z) N(z | 0, I) dz per example, by quadrature on a 2d latent grid:
    (B, D) -> (B,).

    The rectangle rule on ``[-extent, extent]^2`` with spacing ``step`` is compared with the rule
    on every other point (spacing ``2 step``). Its error shrinks at least like the step squared,
    so their difference bounds the error of the finer one: examples where it exceeds ``tol`` nats
    are recomputed with half the step, examples with more than ``tol / 100`` of the integrand on
    the grid's outermost ring on a grid 1.5 times wider. After ``max_refinements`` such rounds a
    ``ValueError`` says how many examples did not converge. Examples are processed in chunks of at
    most ``max_elements`` (example, grid point) pairs. float64, on the model's device.

    Works for any model with ``decode(z) -> (mu_x, log_std_x)`` (z: (N, 2)) and prior N(0, I):
    ``VAE2d`` with its learned decoder variance, or a fixed-variance decoder.
    """

    def log_integral(lj: torch.Tensor, step: float, idx: torch.Tensor) -> tuple[torch.Tensor, None]:
        return torch.logsumexp(lj.flatten(1), dim=1) + 2 * math.log(step), None

    return _adaptive_grid(model, x, log_integral, extent, step, tol, max_refinements, max_elements)


def _encode(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mu_z, log_std_z = eval_mode(model, model.encode, x)
    return mu_z.double(), log_std_z.double()


def posterior_kl(
    model: nn.Module,
    x: torch.Tensor,
    extent: float = 6.0,
    step: float = 0.1,
    tol: float = 1e-3,
    max_refinements: int = 4,
    max_elements: int = 2**23,
) -> torch.Tensor:
    """KL(q(z | x) || p(z | x)) per example, both densities on a 2d latent grid: (B, D) -> (B,).

    The true posterior p(z | x) = p(x | z) p(z) / p(x) and the encoder's q(z | x) are evaluated on
    the grid and normalised there; KL = sum_g q_g (log q_g - log p_g). Accuracy control as in
    :func:`exact_log_likelihood`, the grid also widened until q(z | x) has decayed at its edge. The
    model needs ``encode(x) -> (mu_z, log_std_z)`` as well.
    """
    check_inputs(model, x)
    mu_z, log_std_z = _encode(model, x)  # (B, 2) each

    def kl(lj: torch.Tensor, step: float, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        axis = _grid_axis(lj.shape[1], step, lj.device)  # (n,)
        m, ls = mu_z[idx][:, :, None], log_std_z[idx][:, :, None]  # (b, 2, 1)
        log_q1d = -0.5 * ((axis[None, None, :] - m) * torch.exp(-ls)) ** 2  # (b, 2, n); q factorises
        log_q1d = log_q1d - torch.logsumexp(log_q1d, dim=2, keepdim=True)  # normalised on the grid
        log_q = log_q1d[:, 0, :, None] + log_q1d[:, 1, None, :]  # (b, n, n)
        log_p = lj - torch.logsumexp(lj.flatten(1), dim=1)[:, None, None]
        log_ratio = log_q - log_p
        # q's mass on the ring, weighted by the size of log q - log p there (what the tail adds to KL)
        q_edge = torch.logsumexp(log_q1d[:, :, [0, -1]].flatten(1), dim=1)
        ring = torch.cat([log_ratio[:, [0, -1], :].flatten(1), log_ratio[:, :, [0, -1]].flatten(1)], dim=1)
        q_edge = q_edge + torch.log(ring.abs().amax(dim=1).clamp(min=1.0))
        return (log_q.exp() * log_ratio).flatten(1).sum(dim=1), q_edge

    return _adaptive_grid(model, x, kl, extent, step, tol, max_refinements, max_elements)


@dataclass(frozen=True)
class GridPosterior:
    """The true posterior p(z | x) on a grid: ``log_density`` (B, n, n) over ``axis`` x ``axis``."""

    axis: torch.Tensor
    step: float
    log_density: torch.Tensor
    log_px: torch.Tensor  # (B,): log p(x) by the same rule


def true_posterior(
    model: nn.Module, x: torch.Tensor, extent: float = 4.0, step: float = 0.05
) -> GridPosterior:
    """p(z | x) = p(x | z) p(z) / p(x) on the grid ``[-extent, extent]^2``: (B, D) -> log density (B, n, n).

    For plotting a few examples (memory grows as B n^2); the density sums to 1 / step^2 on the grid.
    """
    device = check_inputs(model, x)
    grid = latent_grid(extent, step, device)
    lj = _GridJoint(model, grid, device)(x)
    log_px = torch.logsumexp(lj.flatten(1), dim=1) + 2 * math.log(grid.step)
    return GridPosterior(grid.axis, grid.step, lj - log_px[:, None, None], log_px)
