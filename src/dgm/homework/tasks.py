"""The homework's tasks: what a student writes, where, and how it is checked; and its theory problems.

A :class:`Task` is one gap of the homework: a function or class (its stub, the check of
:func:`dgm.homework.check`, the book's reference to carry on with) or a choice of settings (the
names it sets, and the training cells that follow it). The homework edition puts a code task where
its home chapter includes the book's object (``literalinclude`` with ``:pyobject:``), and a
settings task where the chapter has the comment ``% homework: <name>``. A :class:`Problem` is a
theory problem: the statement whose label it has keeps its place, its proof gives way to the
homework's hints and a cell for the student's answer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dgm
from dgm.homework import gaussians, models, nets, settings, stubs_2d, stubs_cifar10
from dgm.homework.diagnose import not_the_book
from dgm.tables import Table


@dataclass(frozen=True)
class Task:
    """One gap of the homework; ``needs`` are the tasks its code calls (checked with the book's)."""

    name: str
    chapter: str
    stub: str
    check: Callable[[object], None]
    needs: tuple[str, ...] = ()
    kind: str = "code"  # "code": a function or class; "settings": names set in a cell
    follow: str = ""  # the homework's cells that use the result (a settings task's training)

    def reference(self):
        """The book's object (code) or a copy of settings within the limits (settings)."""
        if self.kind == "settings":
            return dict(SETTINGS_REFERENCE[self.name])
        return getattr(dgm, self.name)


@dataclass(frozen=True)
class Problem:
    """A theory problem of the homework: the statement it proves (by its label), what the homework asks,
    the homework's own hints (empty if it gives none) and, marked as such, one of the book's."""

    label: str
    chapter: str
    title: str
    ask: str
    hints: str = ""
    book_hint: str = ""


SETTINGS_REFERENCE = {"settings_2d": settings.REFERENCE_2D, "settings_cifar10": settings.REFERENCE_CIFAR10}
VAE_2D, CIFAR = "book/vae/vae_2d", "book/vae/vae_cifar10"

TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("get_normal_nll", VAE_2D, stubs_2d.GET_NORMAL_NLL, gaussians.check_get_normal_nll),
        Task("get_normal_KL", VAE_2D, stubs_2d.GET_NORMAL_KL, gaussians.check_get_normal_KL),
        Task("FullyConnectedMLP", VAE_2D, stubs_2d.FULLY_CONNECTED_MLP, nets.check_FullyConnectedMLP),
        Task(
            "VAE2d",
            VAE_2D,
            stubs_2d.VAE2D,
            models.check_VAE2d,
            needs=("FullyConnectedMLP", "get_normal_nll", "get_normal_KL"),
        ),
        Task(
            "settings_2d",
            VAE_2D,
            stubs_2d.SETTINGS_2D,
            settings.check_settings_2d,
            needs=("VAE2d",),
            kind="settings",
            follow=stubs_2d.TRAIN_2D,
        ),
        Task("ConvEncoder", CIFAR, stubs_cifar10.CONV_ENCODER, nets.check_ConvEncoder),
        Task("ConvDecoder", CIFAR, stubs_cifar10.CONV_DECODER, nets.check_ConvDecoder),
        Task(
            "ConvVAE",
            CIFAR,
            stubs_cifar10.CONV_VAE,
            models.check_ConvVAE,
            needs=("ConvEncoder", "ConvDecoder"),
        ),
        Task(
            "settings_cifar10",
            CIFAR,
            stubs_cifar10.SETTINGS_CIFAR10,
            settings.check_settings_cifar10,
            needs=("ConvVAE",),
            kind="settings",
            follow=stubs_cifar10.TRAIN_CIFAR10,
        ),
    ]
}

LOG_DERIVATIVE, IWAE, EM = "book/theory/log_derivative_trick", "book/vae/iwae_bound", "book/theory/em_gmm"
#: The theory problems, in the order of the book's chapters.
PROBLEMS: dict[str, Problem] = {
    p.label: p
    for p in [
        Problem(
            "thm-weights",
            EM,
            "Subproblem 3.1",
            "Prove the statement above",
            "",
            "a Lagrange multiplier for the constraint $\\sum_k \\pi_k = 1$.",
        ),
        Problem(
            "lem-det-derivative",
            EM,
            "Subproblem 3.3*",
            "Prove the statement above",
            "recall the notion of a cofactor (adjunct) from linear algebra courses.",
            "expand $\\det \\mathbf{A}$ along a row.",
        ),
        Problem(
            "thm-covariance",
            EM,
            "Subproblem 3.2",
            "Prove the statement above",
            "Hint 1: $\\frac{\\partial}{\\partial \\mathbf{A}} \\det \\mathbf{A} = (\\det \\mathbf{A}) "
            "(\\mathbf{A}^{-1})^T$. Hint 2: $\\frac{\\partial}{\\partial \\mathbf{A}} \\mathbf{x}^T "
            "\\mathbf{A}^{-1} \\mathbf{y} = -(\\mathbf{A}^{-1})^T \\mathbf{x} \\mathbf{y}^T "
            "(\\mathbf{A}^{-1})^T$. General hint: the Matrix Cookbook helps in working with matrices.",
        ),
        Problem(
            "thm-score-function",
            LOG_DERIVATIVE,
            "Problem 1.1",
            "Get the Monte Carlo estimate of the gradient using the formula for "
            "the derivative of the logarithm: "
            "prove the statement above",
            "the log-derivative trick, $\\nabla_\\xi \\log q(\\eta \\mid \\xi) = "
            "\\nabla_\\xi q(\\eta \\mid \\xi) / "
            "q(\\eta \\mid \\xi)$.",
        ),
        Problem(
            "prop-offset-variance",
            LOG_DERIVATIVE,
            "Problem 1.2",
            "Describe the intuition why the estimate has a huge variance (the "
            "book's explanation is left out of "
            "this edition), then prove the statement above",
            "think about what order and sign the terms in the expression will have.",
        ),
        Problem(
            "thm-iwae-monotone",
            IWAE,
            "Problem 2, part 1",
            "Prove the statement above",
            "(a) Use the following equation inside the logarithm of $\\mathcal{L}_K$: "
            "$\\frac{a_1 + \\dots + a_K}{K} = \\mathbb{E}_{k_1, \\dots, k_M} \\frac{a_{k_1} + \\dots + "
            "a_{k_M}}{M}$, $k_1, \\dots, k_M \\sim U[1, K]$. (b) Apply Jensen's inequality.",
            "read (a) with $k_1, \\dots, k_M$ a random set of $M$ distinct indices (drawn without "
            "replacement): the identity holds either way, but only distinct indices pick $M$ independent "
            "weights, as in $\\mathcal{L}_M$, and the remark below says why the proof needs that.",
        ),
        Problem(
            "thm-iwae-limit",
            IWAE,
            "Problem 2, part 2",
            "Prove the statement above",
            "use the Law of large numbers.",
            "the law of large numbers makes the average converge almost surely; to pass to the expectation "
            "of its logarithm you need a convergence theorem too (dominated convergence, using the bound).",
        ),
    ]
}


def check(name: str, candidate) -> None:
    """``None`` if ``candidate`` does what the homework's ``name`` must, else ``AssertionError`` (a hint).

    The book's own code (imported from ``dgm``, or a subclass of it) is refused: it is no answer. An
    error of the check itself (not an ``AssertionError``) comes back as an ``AssertionError`` that
    names it, so that a notebook's check cell never stops with a raw traceback.
    """
    t = task(name)
    if t.kind == "code":
        not_the_book(name, candidate, t.reference())
    try:
        t.check(candidate)
    except AssertionError:
        raise
    except Exception as exc:  # a check that could not handle the student's code: say so, do not crash
        raise AssertionError(
            f"{name}: the check could not run your code ({type(exc).__name__}: "
            f"{exc}); if your code looks right, "
            "tell your instructor"
        ) from exc


def task(name: str) -> Task:
    """The task called ``name``, or a ``KeyError`` that lists the tasks."""
    if name not in TASKS:
        raise KeyError(f"no homework task {name!r}; the tasks are {', '.join(TASKS)}")
    return TASKS[name]


def tasks_table() -> Table:
    """The homework's tasks: their chapter, what the student writes and what the check asks of it."""
    rows = {}
    for t in TASKS.values():
        doc = (t.check.__doc__ or "").strip().split("\n")[0].replace("``", "`").replace("|", "\\|")
        rows[f"`{t.name}`"] = (Path(t.chapter).name, "settings" if t.kind == "settings" else "code", doc)
    return Table(("chapter", "the student writes", "what the check asks"), rows)


def _sentence(text: str) -> str | None:
    return text[:1].upper() + text[1:] if text else None


def problems_table() -> Table:
    """The homework's theory problems: their chapter, the statement they prove, and the homework's hints."""
    return Table(
        ("chapter", "the statement (its label)", "the homework's hints", "a hint from the book"),
        {
            p.title: (Path(p.chapter).name, f"`{p.label}`", _sentence(p.hints), _sentence(p.book_hint))
            for p in PROBLEMS.values()
        },
    )
