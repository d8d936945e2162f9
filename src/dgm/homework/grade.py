"""Grade a homework notebook: run its solution cells in a child process and check each task.

``python -m dgm.homework grade NOTEBOOK.ipynb [--timeout SECONDS]`` runs only the solution cells (code
cells whose metadata has ``"homework": {"task": NAME, "role": "solution"}``, and code cells the student
added right after one, before the next homework cell), in order and in one namespace as a notebook
does, and checks each task with :func:`dgm.homework.check` right after its cells; the book's cells and
the check, carry-on and answer cells are not run. The book's own code handed in is refused by the
check. It prints ``PASS  name`` or ``FAIL  name: message`` for each task, in the order of
:data:`~dgm.homework.TASKS`, and ``total: K/N tasks passed``, and exits 0 when all passed, 1 when one
failed, 2 when its input is no homework notebook (:class:`GradeError`).

The child is ``python -I`` (the working directory is not on ``sys.path``: a ``dgm.py`` or ``torch.py``
the submission writes shadows nothing), runs in a fresh temporary directory, removed afterwards, that
is also its ``HOME`` and ``TMPDIR``, in a session of its own (it and all it started are killed
together), without core dumps. It reports on a pipe of its own, a JSON object a line, so the
submission's prints cannot pass for results; its stdout is discarded, the end of its stderr kept for
the report. ``timeout`` limits the cells and checks (starting the child has a limit of its own): a
submission that hangs or crashes the interpreter fails the task it was at, the tasks after are not run.

This isolates a student's *mistakes* (an endless loop, a crash, an exception, files written where it
runs), not a *malicious* submission: the child has the grader's user rights, can read and write what
that user can and reach the network. To grade untrusted notebooks, run the grader in a container or a
virtual machine. Unix only (sessions, ``resource``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import dgm
from dgm.homework.tasks import PROBLEMS, TASKS

#: Seconds the child may take to start (import torch and the checks) before the grader gives up.
START_TIMEOUT = 120.0
#: The child: found where the parent's ``dgm`` is if ``python -I`` does not find it (a ``PYTHONPATH``).
_BOOT = "import sys; sys.path.append({root!r}); from dgm.homework.child import main; main()"


class GradeError(Exception):
    """The grader's input is not a homework notebook, or the grader itself could not run."""


@dataclass(frozen=True)
class TaskResult:
    """The verdict on one task: ``message`` says what is wrong (empty when it passed). For a theory
    problem (``kind`` ``"answer"``, graded by hand) ``passed`` says that an answer is written."""

    name: str
    passed: bool
    message: str = ""
    kind: str = "code"


def _answers(nb: dict) -> list[TaskResult]:
    """The theory problems' answer cells: written or not (graded by hand)."""
    out = []
    for cell in nb["cells"]:
        mark = (cell.get("metadata") or {}).get("homework") if isinstance(cell, dict) else None
        if not isinstance(mark, dict) or mark.get("role") != "answer" or mark.get("task") not in PROBLEMS:
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        lines = text.strip().split("\n")
        words = len(" ".join(lines[1:] if lines[0].startswith("*Your answer") else lines).split())
        problem = PROBLEMS[mark["task"]]
        name = f"{problem.title} ({problem.label})"
        out.append(
            TaskResult(
                name,
                words > 0,
                f"written, {words} words: graded by hand" if words else "no answer written",
                kind="answer",
            )
        )
    return out


def _homework_cells(path: str | os.PathLike) -> tuple[list[tuple[str, str | None]], list[TaskResult]]:
    """The solution cells (task, source) and the answers of the notebook at ``path``."""
    p = Path(path)
    if not p.is_file():
        raise GradeError(f"{p}: no such file")
    try:
        nb = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise GradeError(f"{p}: not a notebook ({type(exc).__name__}: {exc})") from None
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        raise GradeError(f"{p}: not a notebook in nbformat 4 (a JSON object with 'nbformat': 4 and 'cells')")
    cells: list[tuple[str, str | None]] = []
    open_task = None  # the task whose solution cell came last, until the next homework cell
    for i, cell in enumerate(nb["cells"], 1):
        meta = cell.get("metadata") if isinstance(cell, dict) else None
        mark = meta.get("homework") if isinstance(meta, dict) else None
        if not isinstance(mark, dict):  # a cell the student added after a stub belongs to its task
            if open_task and isinstance(cell, dict) and cell.get("cell_type") == "code":
                source = cell.get("source", "")
                cells.append((open_task, "".join(source) if isinstance(source, list) else str(source)))
            continue
        if mark.get("role") != "solution":
            open_task = None
            continue
        name = mark.get("task")
        open_task = name
        if name not in TASKS:
            raise GradeError(
                f"{p}: cell {i} is marked as the solution of {name!r}, which is no homework task"
            )
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        cells.append((name, source if cell.get("cell_type") == "code" else None))
    return cells, _answers(nb)


def grade(path: str | os.PathLike, timeout: float = 300) -> list[TaskResult]:
    """The verdict on each task that ``path`` has a solution cell for, in the order of ``TASKS``.

    Runs the solution cells and the checks in a child process (see the module's docstring), for at most
    ``timeout`` seconds once it started. Raises :class:`GradeError` for an input that is no homework
    notebook."""
    cells, answers = _homework_cells(path)
    if not cells and not answers:
        raise GradeError(
            f"{path}: no homework cells (code or answers); grade a notebook of the homework edition"
        )
    if not cells:
        return answers
    names = [n for n in TASKS if n in {task for task, _ in cells}]
    with tempfile.TemporaryDirectory(prefix="dgm-grade-", ignore_cleanup_errors=True) as tmp:
        results, current, ending = _run(cells, Path(tmp), timeout)
    if ending is None or all(n in results for n in names):  # (a crash after the last result changes none)
        return [results[n] for n in names] + answers
    culprit = current if current in names and current not in results else None
    culprit = culprit or next(n for n in names if n not in results)
    return [
        results.get(n)
        or TaskResult(n, False, ending if n == culprit else f"not run (the grader stopped at {culprit})")
        for n in names
    ] + answers


def format_results(results: list[TaskResult]) -> str:
    """The report: a line for each task, ``total: K/N tasks passed``, and the theory answers written."""
    code = [r for r in results if r.kind == "code"]
    answers = [r for r in results if r.kind == "answer"]
    lines = [f"PASS  {r.name}" if r.passed else f"FAIL  {r.name}: {r.message}" for r in code]
    lines += [
        f"ANSWER  {r.name}: {r.message}" if r.passed else f"FAIL  {r.name}: {r.message}" for r in answers
    ]
    if code:
        lines.append(f"total: {sum(r.passed for r in code)}/{len(code)} tasks passed")
    if answers:
        lines.append(f"answers: {sum(r.passed for r in answers)}/{len(answers)} written (graded by hand)")
    return "\n".join(lines)


def _run(cells, tmp: Path, timeout: float) -> tuple[dict[str, TaskResult], str | None, str | None]:
    """Run the child in ``tmp``: (the results it reported, the task it was at, how it ended early or None)."""
    work, home = tmp / "work", tmp / "home"
    for d in (work, home, home / "tmp"):
        d.mkdir()
    payload = tmp / "cells.json"
    payload.write_text(json.dumps(cells), encoding="utf-8")
    tmpdir = str(home / "tmp")  # XDG_* left out: they default to folders in HOME
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), TMPDIR=tmpdir, TMP=tmpdir, TEMP=tmpdir, MPLBACKEND="Agg")
    root = str(Path(dgm.__file__).resolve().parent.parent)
    read_fd, write_fd = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT.format(root=root), str(write_fd), str(payload)],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    tail = bytearray()
    drain = threading.Thread(target=_keep_tail, args=(proc.stderr, tail), daemon=True)
    drain.start()
    results: dict[str, TaskResult] = {}
    current, ready, done, timed_out, buffer = None, False, False, False, b""
    limit = time.monotonic() + START_TIMEOUT
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(read_fd, selectors.EVENT_READ)
            while not done:
                ended = proc.poll() is not None  # then all it wrote is in the pipe: read it, and stop
                left = limit - time.monotonic()
                if not sel.select(0 if ended else max(min(left, 0.2), 0)):
                    if ended or left <= 0:
                        timed_out = not ended
                        break
                    continue
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:  # every writer has closed the pipe: the child ends
                    try:
                        proc.wait(timeout=max(limit - time.monotonic(), 0))
                    except subprocess.TimeoutExpired:
                        timed_out = True
                    break
                *lines, buffer = (buffer + chunk).split(b"\n")
                for event in map(json.loads, lines):
                    if event["event"] == "ready":
                        ready, limit = True, time.monotonic() + timeout
                    elif event["event"] in ("cell", "check"):
                        current = event["task"]
                    elif event["event"] == "result":
                        results[event["task"]] = TaskResult(event["task"], event["passed"], event["message"])
                    done = event["event"] == "done"
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the child if it still runs, and whatever it started
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
        os.close(read_fd)
        drain.join(timeout=2)
    stderr = _last_lines(bytes(tail))
    stderr = f"; its stderr ends with:\n{stderr}" if stderr else ""
    rc = proc.returncode
    how = f"exit code {rc}" if rc >= 0 else f"killed by signal {-rc}, {signal.strsignal(-rc) or 'unknown'}"
    if not ready:
        why = f"did not start within {START_TIMEOUT:g} s" if timed_out else f"ended ({how})"
        raise GradeError(f"the grader's child process {why} before running the notebook{stderr}")
    if done:
        return results, current, None
    if timed_out:
        return results, current, f"did not finish within {timeout:g} s (an endless loop, or too slow)"
    return results, current, f"the submission crashed the Python process ({how}){stderr}"


def _keep_tail(stream, tail: bytearray, keep: int = 1 << 14) -> None:
    """Read ``stream`` to its end, keeping its last ``keep`` bytes in ``tail``."""
    while chunk := stream.read1(1 << 16):
        tail += chunk
        del tail[:-keep]


def _last_lines(data: bytes, n: int = 12, width: int = 300) -> str:
    lines = data.decode("utf-8", errors="replace").rstrip().splitlines()
    lines = [line for line in lines if not line.startswith("Extension modules:")][-n:]  # the faulthandler's
    return "\n".join("      " + (line if len(line) <= width else line[:width] + " ...") for line in lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``grade``: the notebook and ``--timeout``."""
    parser.add_argument("notebook", type=Path, help="the homework notebook (.ipynb) to grade")
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=300.0,
        metavar="SECONDS",
        help="time limit for the cells and checks (default: 300)",
    )


def run(args: argparse.Namespace) -> int:
    """Grade ``args.notebook`` and print the report: 0 all passed, 1 one failed, 2 not a homework notebook."""
    try:
        results = grade(args.notebook, timeout=args.timeout)
    except GradeError as exc:
        print(f"python -m dgm.homework grade: {exc}", file=sys.stderr)
        return 2
    print(format_results(results))
    return 0 if all(r.passed for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    """``grade`` on its own: ``main(["NOTEBOOK.ipynb", "--timeout", "60"])``."""
    parser = argparse.ArgumentParser(prog="python -m dgm.homework grade", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def seconds(text: str) -> float:
    """The value of ``--timeout``: a positive number of seconds."""
    if not 0 < (value := float(text)) < math.inf:
        raise argparse.ArgumentTypeError(f"{text}: the time limit must be a positive number of seconds")
    return value
