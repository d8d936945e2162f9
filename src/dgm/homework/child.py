"""The grader's child process: run a submission's solution cells, check each task, report on a pipe.

Started by :mod:`dgm.homework.grade` as ``python -I -c <boot> FD PAYLOAD``: :func:`main` reads the
cells (task, source) from the JSON file ``PAYLOAD`` (and deletes it), runs each task's cells in one
namespace, as a notebook does, then checks the task, and writes one JSON object a line to the pipe
``FD``: ``ready``, ``cell`` and ``check`` (with the task), ``result`` (task, passed, message) and
``done``. The pipe is its own, so the submission's prints cannot pass for results.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from dgm.homework.tasks import TASKS

#: Added to a NameError: the names a cell uses must come from the cells the grader runs.
NAME_HINT = (
    " (the grader runs only the homework's cells and code cells added right after one: define it there)"
)


def _python_source(source: str) -> str:
    """``source``, with IPython's magics and shell lines (``%time``, ``!pip``) commented out if they keep it
    from compiling."""
    try:
        compile(source, "<cell>", "exec")
    except SyntaxError:
        lines = source.splitlines()
        magic = [line.lstrip().startswith(("%", "!")) for line in lines]
        if any(magic):
            return "\n".join("# " + line if m else line for line, m in zip(lines, magic))
    return source


def _describe(exc: BaseException, filename: str) -> str:
    """``Type: message``, with the line of the cell it came from."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == filename]
    line = lines[-1] if lines else None
    return text if line is None or isinstance(exc, SyntaxError) else f"{text} (line {line} of the cell)"


def main() -> None:
    """The child process: run the cells of ``argv[2]`` (a JSON file) and report on the pipe ``argv[1]``."""
    import faulthandler
    import resource

    out = open(int(sys.argv[1]), "w", encoding="utf-8", buffering=1)
    os.set_inheritable(out.fileno(), False)  # what the submission starts does not hold the pipe
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    faulthandler.enable()  # a crash shows where it happened, on stderr

    def send(**event) -> None:
        out.write(json.dumps(event) + "\n")
        out.flush()

    payload = Path(sys.argv[2])
    cells = json.loads(payload.read_text(encoding="utf-8"))
    payload.unlink()
    del sys.argv[1:]
    from dgm.homework import check

    send(event="ready")
    ns: dict = {"__name__": "__main__"}
    errors: dict[str, str] = {}
    # each task's cells, then its check, as the notebook runs them: a later cell that hangs or
    # crashes leaves the verdicts on the tasks before it
    groups: list[tuple[str, list[str | None]]] = []
    for name, source in cells:
        if groups and groups[-1][0] == name:
            groups[-1][1].append(source)
        else:
            groups.append((name, [source]))
    for name, sources in groups:
        errors.pop(name, None)  # a task handed in twice: its last cells count
        for source in sources:
            send(event="cell", task=name)
            if source is None:
                errors.setdefault(name, "the solution cell is not a code cell: make it a Code cell again")
                continue
            filename = f"<solution cell of {name}>"
            try:
                exec(compile(_python_source(source), filename, "exec"), ns)
            except BaseException as exc:  # the student's code: whatever it raises is a finding
                hint = NAME_HINT if isinstance(exc, NameError) else ""
                errors.setdefault(name, "your cell raised " + _describe(exc, filename) + hint)
        kind = TASKS[name].kind
        send(event="check", task=name)
        message = errors.get(name)
        if message is None and kind == "code" and name not in ns:
            message = f"the cell does not define {name}"
        if message is None:
            try:
                check(name, ns[name] if kind == "code" else ns)
            except AssertionError as exc:
                message = str(exc).removeprefix(f"{name}: ") or "the check failed"
            except BaseException as exc:  # the student's code, called by the check
                message = f"the check raised {type(exc).__name__}: {exc}"
        send(event="result", task=name, passed=message is None, message=message or "")
    send(event="done")
    os._exit(0)  # not the submission's atexit handlers or threads
