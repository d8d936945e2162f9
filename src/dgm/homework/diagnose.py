"""What every check needs: run the student's code, compare with the reference, name the mistake.

A check fails with :func:`fail` (an ``AssertionError`` whose message starts with the task's name
and says what to change). :func:`call` runs the student's code and turns an exception into such a
message; :func:`compare` compares a result with the reference's and, where it differs, with each
known wrong formula (:data:`Variants`), so that the message names the mistake instead of a number.
No message shows the reference's code: at most a value it computes.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import torch

#: Known wrong results: hint -> the value a formula with that mistake would give.
Variants = Mapping[str, Any]


def fail(name: str, message: str) -> None:
    """Fail the check of ``name`` with a message a student can act on."""
    raise AssertionError(f"{name}: {message}")


def call(name: str, what: str, fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``, or a failure naming ``what`` (for example ``"VAE2d.forward(x)"``)."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        fail(name, f"{what} is not written yet: it still raises NotImplementedError (replace that line)")
    except AssertionError:
        raise
    except Exception as exc:  # the student's code: any error is a finding to report
        fail(name, f"{what} raised {type(exc).__name__}: {exc}")


def not_the_book(name: str, candidate, reference) -> None:
    """Fail if ``candidate`` is the book's ``reference`` (imported from ``dgm``) or built on it."""
    module = getattr(candidate, "__module__", "") or ""
    derived = isinstance(candidate, type) and isinstance(reference, type) and issubclass(candidate, reference)
    if candidate is reference or derived or module == "dgm" or module.startswith("dgm."):
        fail(name, f"this is the book's {name} (from the package dgm), not yours: write {name} in its cell")


def as_tensor(name: str, what: str, out) -> torch.Tensor:
    """``out`` if it is a tensor, else a failure that says what it is instead."""
    if out is None:
        fail(name, f"{what} returned None: a `return` is missing")
    if not isinstance(out, torch.Tensor):
        fail(name, f"{what} returned a {type(out).__name__}, not a torch.Tensor")
    return out


def expect_shape(
    name: str, what: str, out: torch.Tensor, shape: tuple[int, ...], why: str = "", elementwise: bool = False
) -> None:
    """Fail unless ``out`` has ``shape``; for an ``elementwise`` function a smaller result is reported as
    a sum or mean taken too early."""
    got = tuple(out.shape)
    if got == tuple(shape):
        return
    hint = ""
    if elementwise and out.numel() < int(np.prod(shape)):
        hint = " It looks summed or averaged over some dimension: the homework means an elementwise result."
    fail(name, f"{what} has shape {got}, expected {tuple(shape)}{why}.{hint}")


def close(a, b, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Whether two results agree (tensors or arrays of one shape, all finite where either is)."""
    a = np.asarray(a.detach().cpu() if isinstance(a, torch.Tensor) else a, dtype=np.float64)
    b = np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=False))


def compare(name: str, what: str, got, expected, variants: Variants = {}, inputs: str = "") -> None:
    """Fail unless ``got`` matches ``expected``; name the mistake if it matches one of ``variants``."""
    if close(got, expected):
        return
    for hint, value in variants.items():
        if close(got, value):
            fail(name, f"{hint}." if hint.startswith(what) else f"{what}: {hint}.")
    g = np.asarray(got.detach().cpu() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
    e = np.asarray(
        expected.detach().cpu() if isinstance(expected, torch.Tensor) else expected, dtype=np.float64
    )
    if g.shape != e.shape:
        fail(name, f"{what} has shape {g.shape}, expected {e.shape}.")
    where = np.unravel_index(int(np.argmax(np.abs(g - e) / (1 + np.abs(e)))), e.shape) if e.ndim else ()
    at = f" at index {tuple(int(i) for i in where)}" if e.ndim else ""
    fail(name, f"{what} is wrong{at}: got {g[where]:.6g}, expected {e[where]:.6g}{inputs}.")


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global generator seeded, and restore the student's state after."""
    with torch.random.fork_rng(devices=[]):  # the CPU generator only: CUDA's is not touched at all
        torch.default_generator.manual_seed(seed)
        yield


@contextlib.contextmanager
def with_references(candidate: Any, references: Mapping[str, Any]) -> Iterator[None]:
    """Run the block with the names in ``references`` bound to the book's objects where ``candidate``'s
    code looks them up (its module's or notebook's globals), so that a check tests one task only.

    A ``VAE2d`` is checked with the book's ``get_normal_KL`` even if the student's is wrong: that
    mistake is reported once, by its own check.
    """
    spaces: list[dict] = []
    own = getattr(candidate, "__module__", None)  # the student's classes, not torch's or numpy's
    classes = [c for c in getattr(candidate, "__mro__", ()) if c.__module__ == own]
    functions = (
        [candidate]
        if inspect.isfunction(candidate)
        else [v for c in classes for v in vars(c).values() if inspect.isfunction(v)]
    )
    for fn in functions:
        g = fn.__globals__
        if all(g is not s for s in spaces):
            spaces.append(g)
    saved = [{k: g[k] for k in references if k in g} for g in spaces]
    try:
        for g in spaces:  # a name not defined yet (a cell further down) is lent for the check too
            g.update(references)
        yield
    finally:
        for g, old in zip(spaces, saved):
            for k in references:
                g.pop(k, None)
            g.update(old)


def instantiate(name: str, cls: Any, *args) -> torch.nn.Module:
    """``cls(*args)`` as an ``nn.Module``, or a failure that says why not."""
    if not isinstance(cls, type):
        fail(name, f"expected a class, got {type(cls).__name__}")
    what = f"{name}({', '.join(map(repr, args))})"
    module = call(name, what, cls, *args)
    if not isinstance(module, torch.nn.Module):
        fail(name, f"{what} is not a torch.nn.Module (does the class derive from nn.Module?)")
    if not list(module.parameters()):
        fail(name, f"{what} has no parameters: no layers were created")
    return module


def linears(module: torch.nn.Module) -> list[torch.nn.Linear]:
    """The module's ``nn.Linear`` layers in registration order."""
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
