"""The checks of ``get_normal_KL`` and ``get_normal_nll``: against the reference, and the homework's asserts.

Each check first compares the student's function with :mod:`dgm.gaussians` on random inputs, and where
they differ, with the formulas the common mistakes give (log-variance read as log-std, a factor 1/2
or the log 2 pi term missing, the KL's arguments swapped, the sign of a log-likelihood), so that
the message names the mistake (a named mistake is more use than a failed assert). Then: the
homework's own asserts (integer tensors), a batch of one, float64, broadcasting, extreme values, the
gradients and, for the KL, the default standard normal.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from dgm import gaussians
from dgm.homework.diagnose import as_tensor, call, close, compare, expect_shape, fail

LOG_2PI = math.log(2 * math.pi)
#: The homework's asserts: arguments and expected values (rtol 1e-3).
HOMEWORK_KL = [
    ((torch.tensor(2), torch.tensor(3), torch.tensor(0), torch.tensor(0)), 200.2144),
    ((torch.tensor(2), torch.tensor(3), torch.tensor(4), torch.tensor(5)), 1.50925),
    ((torch.tensor((10, 10)), torch.tensor((2, 4)), torch.tensor((3, 5))), [49.2990, 1498.479]),
]
HOMEWORK_NLL = [
    ((torch.tensor(2), torch.tensor(2), torch.tensor(3)), 3.9189),
    ((torch.tensor(5), torch.tensor(-3), torch.tensor(6)), 6.9191),
    ((torch.tensor((10, 10)), torch.tensor((2, 4)), torch.tensor((3, 5))), [3.9982, 5.9197]),
]


def _kl(m1, l1, m2, l2, var=lambda ls: torch.exp(2 * ls), half=0.5, const=-0.5, log_term=None):
    """KL(N(m1, s1^2) || N(m2, s2^2)) with pieces replaceable, to write the wrong formulas."""
    log_term = l2 - l1 if log_term is None else log_term
    return log_term + half * (var(l1) + (m1 - m2) ** 2) / var(l2) + const


def kl_variants(m1, l1, m2, l2) -> dict[str, torch.Tensor]:
    """What the common mistakes in the KL give, by the hint that names them."""
    ref = gaussians.get_normal_KL
    return {
        "this is KL(p2 || p1): the arguments are swapped; KL(p1 || p2) is the expectation under p1": ref(
            m2, l2, m1, l1
        ),
        "log_std is read as the log of the variance; the standard deviation is exp(log_std), the variance "
        "exp(2 * log_std)": ref(m1, l1 / 2, m2, l2 / 2),
        "the standard deviation is used where the formula has the variance sigma^2 = exp(2 * log_std)": _kl(
            m1, l1, m2, l2, var=torch.exp
        ),
        "a factor 1/2 is missing: (sigma_1^2 + (mu_1 - mu_2)^2) is divided by 2 sigma_2^2": _kl(
            m1, l1, m2, l2, half=1.0
        ),
        "the constant -1/2 is missing": ref(m1, l1, m2, l2) + 0.5,
        "(mu_1 - mu_2)^2 is divided by 2 sigma_2, the standard deviation; it is divided by 2 sigma_2^2 = "
        "2 exp(2 * log_std_2)": (
            l2 - l1 + 0.5 * torch.exp(2 * (l1 - l2)) + (m1 - m2) ** 2 / (2 * torch.exp(l2)) - 0.5
        ),
        "sigma_1^2 / sigma_2^2 is written as sigma_1 / sigma_2; the variances are exp(2 * log_std)": (
            l2 - l1 + 0.5 * torch.exp(l1 - l2) + (m1 - m2) ** 2 / (2 * torch.exp(2 * l2)) - 0.5
        ),
        "log(sigma_2 / sigma_1) has the wrong sign: it is log_std_2 - log_std_1": _kl(
            m1, l1, m2, l2, log_term=l1 - l2
        ),
        "log(sigma_2 / sigma_1) is log_std_2 - log_std_1, not twice that (that is "
        "the log-variance ratio)": _kl(m1, l1, m2, l2, log_term=2 * (l2 - l1)),
        "the sign is wrong: a KL divergence is never negative": -ref(m1, l1, m2, l2),
    }


def nll_variants(x, m, ls) -> dict[str, torch.Tensor]:
    """What the common mistakes in the Gaussian NLL give, by the hint that names them."""
    ref = gaussians.get_normal_nll(x, m, ls)
    sq = (x - m) ** 2
    return {
        "the constant 1/2 log(2 pi) is missing": ref - 0.5 * LOG_2PI,
        "log(2 pi) needs the factor 1/2: the normalising constant is (2 pi sigma^2)^(-1/2)": ref
        + 0.5 * LOG_2PI,
        "log_std is read as the log of the variance; the standard deviation is exp(log_std)": (
            gaussians.get_normal_nll(x, m, ls / 2)
        ),
        "(x - mu)^2 is divided by the standard deviation; it is divided by 2 sigma^2 = 2 exp(2 * log_std)": (
            ls + 0.5 * LOG_2PI + sq / (2 * torch.exp(ls))
        ),
        "a factor 1/2 is missing: (x - mu)^2 is divided by 2 sigma^2": ls
        + 0.5 * LOG_2PI
        + sq / torch.exp(2 * ls),
        "this is the log-likelihood; the homework asks for the negative log-likelihood": -ref,
        "the log(sigma) term is missing": ref - ls,
        "log(sigma) appears twice; the normalising constant contributes log(sigma) once": ref + ls,
    }


def _random(shape, seed: int, dtype=torch.float32) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=dtype) for _ in range(4)]


def _check_common(
    name: str,
    f: Callable,
    ref: Callable,
    variants: Callable,
    arg_names: tuple[str, ...],
    homework: list,
    extreme_log_std: dict[int, float],
) -> None:
    """Everything both checks ask, on functions of ``len(arg_names)`` tensors."""
    n = len(arg_names)
    args = _random((6, 3), 0)[:n]
    if n == 4:
        args[1], args[3] = args[1] * 0.7, args[3] * 0.7
    what = f"{name}({', '.join(arg_names)}) on tensors of shape (6, 3)"
    out = as_tensor(name, what, call(name, what, f, *args))
    expect_shape(name, what, out, (6, 3), " (one value per element)", elementwise=True)
    compare(name, what, out, ref(*args), variants(*args))
    for hw_args, value in homework:
        text = f"{name}({', '.join(f'torch.tensor({a.tolist()})' for a in hw_args)})"
        got = as_tensor(name, text, call(name, text, f, *hw_args))
        if not close(got, torch.tensor(value, dtype=torch.float64), rtol=1e-3, atol=0):
            fail(
                name,
                f"the homework's assert fails: {text} should be about {value}, got {got.tolist()} "
                "(these are integer tensors: compute in floating point, for example with .float())",
            )
    small = [a[:1] for a in args]  # a batch of one
    compare(
        name, f"{name} on a batch of one (shape (1, 3))", call(name, "a batch of one", f, *small), ref(*small)
    )
    wide = [a.double() for a in args]
    got = as_tensor(name, f"{name} on float64 tensors", call(name, "float64 inputs", f, *wide))
    if not got.is_floating_point():  # float32 is fine (a .float() cast): what matters is the value
        fail(name, f"float64 inputs give a {got.dtype} result: compute in floating point")
    compare(name, f"{name} on float64 tensors", got, ref(*wide))
    # broadcasting: one row of parameters for a batch, as a decoder with shared parameters would give
    bro = [args[0]] + [a[:1] for a in args[1:]]
    compare(
        name,
        f"{name} with arguments of shapes (6, 3) and (1, 3) (broadcasting)",
        call(name, "broadcast inputs", f, *bro),
        ref(*bro),
    )
    # extreme but representable values: large means, very small and very large standard deviations
    ext = [
        torch.full_like(a, extreme_log_std[i]) if i in extreme_log_std else a * 1e3
        for i, a in enumerate(args)
    ]
    got = as_tensor(name, "extreme inputs", call(name, "extreme inputs", f, *ext))
    values = " or ".join(f"{v:g}" for v in extreme_log_std.values())
    if not torch.all(torch.isfinite(got)):
        fail(
            name,
            f"means of about 1000 with log_std of {values} give inf or nan: divide by exp(2 * log_std) "
            "once instead of multiplying by large and small factors",
        )
    compare(name, f"extreme inputs (means of about 1000, log_std of {values})", got, ref(*ext))
    leaves = [a.clone().requires_grad_(True) for a in args]
    out = call(name, "with inputs that require gradients", f, *leaves)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        fail(
            name,
            "the result carries no gradient: compute with torch operations on the inputs "
            "(no .item(), .detach(), .numpy() or math.* on tensors)",
        )
    grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
    ref_leaves = [a.clone().requires_grad_(True) for a in args]
    expected = torch.autograd.grad(ref(*ref_leaves).sum(), ref_leaves)
    for arg, g, e in zip(arg_names, grads, expected):
        if g is None or not close(g, e):
            fail(name, f"the gradient with respect to {arg} is wrong or missing")


def check_get_normal_KL(f: Callable) -> None:
    """``get_normal_KL(mean_1, log_std_1, mean_2=None, log_std_2=None)``: elementwise KL(p1 || p2)."""
    name = "get_normal_KL"
    if not callable(f):
        fail(name, f"expected a function, got {type(f).__name__}")
    _check_common(
        name,
        f,
        gaussians.get_normal_KL,
        kl_variants,
        ("mean_1", "log_std_1", "mean_2", "log_std_2"),
        HOMEWORK_KL,
        {1: -10.0, 3: 8.0},
    )
    m1, l1 = _random((6, 3), 1)[:2]
    what = f"{name}(mean_1, log_std_1) (mean_2 and log_std_2 None: the standard normal)"
    out = as_tensor(name, what, call(name, what, f, m1, l1))
    compare(
        name,
        what,
        out,
        gaussians.get_normal_KL(m1, l1),
        kl_variants(m1, l1, torch.zeros_like(m1), torch.zeros_like(l1)),
    )


def check_get_normal_nll(f: Callable) -> None:
    """``get_normal_nll(x, mean, log_std)``: elementwise -log N(x | mean, exp(log_std)^2)."""
    name = "get_normal_nll"
    if not callable(f):
        fail(name, f"expected a function, got {type(f).__name__}")
    _check_common(
        name, f, gaussians.get_normal_nll, nll_variants, ("x", "mean", "log_std"), HOMEWORK_NLL, {2: -10.0}
    )
