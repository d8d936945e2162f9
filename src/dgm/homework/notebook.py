"""The two cells after each gap of the homework edition: the check, and how to carry on.

``report(name, candidate)`` is the check cell: it prints that the task passes, or the check's
message, and never raises, so that running all cells goes on. ``carry_on(name, candidate)`` is the
cell after it: it returns the student's code when it passed, and otherwise says so and returns the
book's (settings: sets the book's values in the mapping it was given), so that one mistake does not
block the rest of the notebook.
"""

from __future__ import annotations

import sys
from collections.abc import MutableMapping

from dgm.homework.tasks import check, task

#: name -> (the candidate last checked, the failure message or None).
_RESULTS: dict[str, tuple[object, str | None]] = {}


def _run_check(name: str, candidate) -> str | None:
    try:
        check(name, candidate)
    except AssertionError as exc:
        message = str(exc)
    else:
        message = None
    _RESULTS[name] = (candidate, message)
    return message


def report(name: str, candidate) -> None:
    """Check ``candidate`` and print the verdict (a failure on stderr, with what to do next)."""
    message = _run_check(name, candidate)
    if message is None:
        print(f"✓ {name} passes every check.")
        return
    t = task(name)
    print(f"✗ {message}", file=sys.stderr)
    if t.kind == "code" and t.needs:
        print(
            f"  (This check uses the book's {', '.join(t.needs)}, so the mistake is in {name} itself.)",
            file=sys.stderr,
        )
    print(
        f"  Fix the cell above, run it and this check again. The next cell carries on with the book's {name} "
        "meanwhile.",
        file=sys.stderr,
    )


def carry_on(name: str, candidate):
    """The student's ``candidate`` if it passes its check, else the book's (with a note that says so).

    For a settings task ``candidate`` is the notebook's ``globals()``: the book's values are set in
    it when the choice failed, and nothing is returned.
    """
    t = task(name)
    last = _RESULTS.get(name)
    message = (
        last[1]
        if last is not None and last[0] is candidate and t.kind == "code"
        else _run_check(name, candidate)
    )
    if t.kind == "settings":
        if message is not None:
            values = t.reference()
            assert isinstance(candidate, MutableMapping), "pass the notebook's globals()"
            candidate.update(values)
            print(
                f"Your settings did not pass their check, so the cells below use the book's: "
                f"{', '.join(f'{k} = {v!r}' for k, v in values.items())}. Fix them and run the two cells "
                "above and this one again to use yours."
            )
        else:
            print("Using your settings.")
        return None
    if message is None:
        print(f"Using your {name}.")
        return candidate
    print(
        f"Your {name} did not pass its check, so the cells below use the book's instead (`from dgm import "
        f"{name}`). When yours passes, run its cell, the check and this cell again to use it."
    )
    return t.reference()
