"""Execution profiles, per-profile experiment settings, and the run card.

A *profile* sizes every experiment in the book:

- ``smoke``: every chapter runs in seconds; the tests build the book with it.
- ``cpu``: meaningful results on a laptop-class CPU in minutes; the default without CUDA.
- ``gpu``: the homework's full settings; the default when CUDA is available.

Choose one with the environment variable ``DGM_PROFILE``. Each experiment keeps its settings
in a frozen dataclass and lists one value per profile in a :class:`ByProfile`, next to the
experiment's code. Chapters call :func:`run_card` to show what actually ran.

A *rehearsal* (``DGM_REHEARSAL=N``, a positive integer) runs a profile's settings unchanged (widths,
batch sizes, data sizes) but cuts every pass of :func:`dgm.training.train_model` over the data to its
first ``N`` batches, and the loops that experiments mark with :func:`rehearsed` (draws, evaluation
sets) to ``N`` steps; other loops (quadrature, EM, chi-square samples) run in full. The ``gpu``
profile then runs on a CPU in minutes, so that a shape, memory or settings error in it fails
the tests instead of the publish. Its numbers mean nothing, and the run card and notice say so.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

from dgm.tables import Table

PROFILES: tuple[str, ...] = ("smoke", "cpu", "gpu")
PROFILE_ENV = "DGM_PROFILE"
REHEARSAL_ENV = "DGM_REHEARSAL"

T = TypeVar("T")


def check_profile(name: str) -> str:
    """Return ``name`` if it is a valid profile, else raise ``ValueError`` listing the valid ones."""
    if name not in PROFILES:
        raise ValueError(
            f"unknown execution profile {name!r} (from {PROFILE_ENV}); valid profiles: {', '.join(PROFILES)}"
        )
    return name


def current_profile(environ: Mapping[str, str] | None = None) -> str:
    """The active profile: ``$DGM_PROFILE`` if set, else ``gpu`` with CUDA and ``cpu`` without."""
    environ = os.environ if environ is None else environ
    name = environ.get(PROFILE_ENV, "").strip()
    if name:
        return check_profile(name)
    return "gpu" if torch.cuda.is_available() else "cpu"


def rehearsal_steps(environ: Mapping[str, str] | None = None) -> int | None:
    """``$DGM_REHEARSAL`` as a number of batches (or steps) per pass; ``None`` when unset (no rehearsal)."""
    environ = os.environ if environ is None else environ
    text = environ.get(REHEARSAL_ENV, "").strip()
    if not text:
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise ValueError(f"{REHEARSAL_ENV} must be a positive number of steps per pass, got {text!r}")
    return n


def rehearsed(n: int, per_step: int = 1) -> int:
    """``n`` unchanged, or in a rehearsal at most ``per_step`` times its steps.

    ``n`` counts what a loop does ``per_step`` of at a time: optimisation steps or draws (``per_step``
    1), or the examples of an evaluation in batches of ``per_step``.
    """
    steps = rehearsal_steps()
    return n if steps is None else min(n, steps * per_step)


def default_device() -> torch.device:
    """CUDA when present, CPU otherwise."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def device_name(device: torch.device | str | None = None) -> str:
    """A human-readable name of ``device``: the GPU's model, or the CPU and its core count."""
    device = torch.device(default_device() if device is None else device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    cpu = platform.processor() or platform.machine() or "unknown"
    return f"cpu ({cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"


@dataclass(frozen=True)
class ByProfile(Generic[T]):
    """One value per execution profile, e.g. one frozen settings dataclass for each."""

    smoke: T
    cpu: T
    gpu: T

    def get(self, profile: str | None = None) -> T:
        """The value for ``profile`` (default: :func:`current_profile`)."""
        name = current_profile() if profile is None else check_profile(profile)
        return getattr(self, name)


@dataclass(frozen=True)
class TrainingRecord:
    """What one training run did: its name, number of epochs and wall-clock seconds.

    ``loaded`` marks weights reused from a checkpoint: the time is that of the original training.
    """

    name: str
    epochs: int
    wall_time_s: float
    loaded: bool = False


@dataclass
class RunLog:
    """Collects the trainings a chapter runs, each timed with :meth:`training`."""

    trainings: list[TrainingRecord] = field(default_factory=list)

    @contextmanager
    def training(self, name: str, epochs: int) -> Iterator[None]:
        """Time the body of the ``with`` block as the training called ``name``."""
        start = time.perf_counter()
        yield
        self.record(name, epochs, time.perf_counter() - start)

    def record(self, name: str, epochs: int, wall_time_s: float, loaded: bool = False) -> TrainingRecord:
        """Add a training that was timed elsewhere, or (``loaded=True``) reused from a checkpoint."""
        if any(t.name == name for t in self.trainings):
            raise ValueError(f"a training called {name!r} is already in this run log")
        if epochs < 0 or wall_time_s < 0:
            raise ValueError(f"epochs and wall time must be >= 0, got {epochs}, {wall_time_s}")
        rec = TrainingRecord(name, int(epochs), float(wall_time_s), bool(loaded))
        self.trainings.append(rec)
        return rec


def _escape_bars(text: str) -> str:
    return text.replace("|", "\\|")


@dataclass(frozen=True)
class RunCard:
    """What a chapter ran: profile, device, torch version, data set and each training's time."""

    profile: str
    device: str
    torch_version: str
    dataset: str
    trainings: tuple[TrainingRecord, ...]
    rehearsal: int | None = None  # steps per pass of a rehearsal; None for a real run

    @property
    def total_time_s(self) -> float:
        """Seconds of training behind the results, checkpoints included."""
        return sum(t.wall_time_s for t in self.trainings)

    @property
    def build_time_s(self) -> float:
        """Seconds spent training in this build (checkpoints reused cost nothing)."""
        return sum(t.wall_time_s for t in self.trainings if not t.loaded)

    def as_dict(self) -> dict[str, object]:
        """Flat values a chapter can glue into its text (``run_profile``, ``run_device``, ...)."""
        out: dict[str, object] = {
            "run_profile": self.profile,
            "run_device": self.device,
            "run_torch": self.torch_version,
            "run_dataset": self.dataset,
            "run_total_time_s": round(self.total_time_s, 1),
            "run_rehearsal": self.rehearsal or 0,
        }
        for t in self.trainings:
            out[f"run_epochs_{t.name}"] = t.epochs
            out[f"run_time_s_{t.name}"] = round(t.wall_time_s, 1)
            out[f"run_loaded_{t.name}"] = t.loaded
        return out

    def to_markdown(self) -> str:
        """The card as a Markdown table."""
        rows: dict[str, tuple[str]] = {
            "profile": (f"`{self.profile}`",)
            if self.rehearsal is None
            else (f"`{self.profile}`, REHEARSAL: every pass cut to {self.rehearsal} steps",),
            "device": (_escape_bars(self.device),),
            "torch": (self.torch_version,),
            "data": (_escape_bars(self.dataset),),  # a stand-in's reason may quote an error
        }
        for t in self.trainings:
            how = "loaded from a checkpoint of a training that took" if t.loaded else "trained in"
            rows[f"training `{t.name}`"] = (f"{t.epochs} epochs, {how} {t.wall_time_s:.1f} s",)
        rows["total training time (this build)"] = (f"{self.build_time_s:.1f} s",)
        return Table(("",), rows).to_markdown()

    def _repr_markdown_(self) -> str:
        return "**Run card**: what this page executed.\n\n" + self.to_markdown()


def run_card(
    dataset: str,
    log: RunLog | None = None,
    profile: str | None = None,
    device: torch.device | str | None = None,
) -> RunCard:
    """The run card of a chapter; display it as a cell's last expression, glue ``as_dict()``."""
    if not dataset:
        raise ValueError("the run card needs the name of the data set the chapter used")
    return RunCard(
        profile=current_profile() if profile is None else check_profile(profile),
        device=device_name(device),
        torch_version=torch.__version__,
        dataset=dataset,
        trainings=tuple(log.trainings) if log is not None else (),
        rehearsal=rehearsal_steps(),
    )


@dataclass(frozen=True)
class SmokeNotice:
    """A warning that a page ran with the ``smoke`` profile, or in a rehearsal; empty otherwise.

    Plain Markdown (a block quote), so that it reads the same on the site, in Jupyter and in Colab.
    """

    profile: str
    what: str = "its models are trained for seconds"
    rehearsal: int | None = None

    def _repr_markdown_(self) -> str:
        if self.rehearsal is not None:
            return (
                f"> **Warning.** This is a rehearsal of the `{self.profile}` execution profile "
                f"({REHEARSAL_ENV}={self.rehearsal}): its settings, with every pass over the data cut "
                f"to {self.rehearsal} steps. It checks that the configuration runs; its numbers mean "
                "nothing."
            )
        if self.profile != "smoke":
            return ""
        return (
            f"> **Warning.** This ran with the `smoke` execution profile: {self.what}, too briefly "
            "for the numbers below to show what the text describes. Run with `DGM_PROFILE=cpu` "
            "(or on a GPU) for the real results."
        )


def smoke_notice(profile: str | None = None, what: str = "its models are trained for seconds") -> SmokeNotice:
    """The smoke-profile warning of a chapter: display it as a cell's last expression."""
    return SmokeNotice(
        current_profile() if profile is None else check_profile(profile), what, rehearsal_steps()
    )
