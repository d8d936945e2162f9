"""The weekly report on the newest releases: what would change, and what would break, if the lock were raised.

The weekly workflow installs the newest release of every direct dependency (``requirements.txt``
without its pins) into a fresh environment, runs the tests there with a JUnit report, and then

    python src/dgm/book/newest.py --lock requirements.lock --freeze newest-versions.txt \\
        --junit newest-report.xml --log newest-test.log --out newest-report.md

(any Python: the script needs only the standard library, so it reports even when installing failed)

writes one Markdown page: every package whose version differs from the lock (locked -> newest),
those that appeared or went away, the tests' counts, and each failing test with the first line of
its message. It exits 1 when a test failed or the tests did not run, so the weekly run shows red,
and 0 when the newest releases pass: the evidence for ``make lock`` either way.
"""

from __future__ import annotations

import argparse
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

try:
    from dgm.book.lock import drop_local_label, parse_pins
except ImportError:  # run as a script by a Python without the book's environment (lock.py is stdlib only)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from lock import drop_local_label, parse_pins  # type: ignore[no-redef]


@dataclass(frozen=True)
class VersionChanges:
    """How an environment differs from the lock: (name, locked, installed) and names only."""

    changed: list[tuple[str, str, str]]
    added: list[tuple[str, str]]  # (name, installed version): not in the lock
    removed: list[tuple[str, str]]  # (name, locked version): no longer installed


def version_changes(locked: dict[str, str], installed: dict[str, str]) -> VersionChanges:
    """Compare two {canonical name: version} maps (local labels such as ``+cpu`` ignored)."""
    locked = {n: drop_local_label(v) for n, v in locked.items()}
    installed = {n: drop_local_label(v) for n, v in installed.items()}
    return VersionChanges(
        changed=[
            (n, locked[n], installed[n])
            for n in sorted(locked.keys() & installed.keys())
            if locked[n] != installed[n]
        ],
        added=[(n, installed[n]) for n in sorted(installed.keys() - locked.keys())],
        removed=[(n, locked[n]) for n in sorted(locked.keys() - installed.keys())],
    )


@dataclass(frozen=True)
class Outcomes:
    """What a JUnit XML report says: counts, and (test, first line of its message) per failure."""

    tests: int
    failures: list[tuple[str, str]] = field(default_factory=list)  # failed or errored
    skipped: int = 0

    @property
    def passed(self) -> int:
        return self.tests - len(self.failures) - self.skipped


def read_junit(junit: Path) -> Outcomes:
    """Read pytest's ``--junitxml`` report; a ValueError names a file that is not one."""
    try:
        root = ET.parse(junit).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{junit}: not a JUnit XML report ({e})") from e
    cases = root.iter("testcase")
    tests, skipped, failures = 0, 0, []
    for case in cases:
        tests += 1
        name = f"{case.get('classname', '')}::{case.get('name', '')}".lstrip(":")
        for tag in ("failure", "error"):
            bad = case.find(tag)
            if bad is not None:
                text = (bad.get("message") or bad.text or tag).strip()
                failures.append((name, text.splitlines()[0][:300] if text else tag))
                break
        else:
            if case.find("skipped") is not None:
                skipped += 1
    if root.tag not in ("testsuites", "testsuite"):
        raise ValueError(f"{junit}: not a JUnit XML report (root element <{root.tag}>)")
    return Outcomes(tests, failures, skipped)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def report_markdown(changes: VersionChanges | None, outcomes: Outcomes | None, log_tail: str = "") -> str:
    """The report: the verdict first, then the tests' failures, then the version changes."""
    lines = ["# The newest releases against the lock", ""]
    if outcomes is None:
        lines += ["**The tests did not run** (no JUnit report): installing or an earlier step failed.", ""]
        if log_tail:
            lines += ["The end of the log:", "", "```", log_tail.rstrip(), "```", ""]
    elif outcomes.failures:
        lines += [
            f"**{len(outcomes.failures)} of {outcomes.tests} tests fail** with the newest releases "
            f"({outcomes.passed} passed, {outcomes.skipped} skipped): raising the lock would break them.",
            "",
            "| test | first line of the message |",
            "|---|---|",
        ]
        lines += [f"| `{_cell(name)}` | {_cell(message)} |" for name, message in outcomes.failures]
        lines.append("")
    else:
        lines += [
            f"**All {outcomes.tests} tests pass** with the newest releases ({outcomes.skipped} skipped): "
            "`make lock` would raise the lock to the versions below.",
            "",
        ]
    if changes is None:
        lines += ["No list of installed packages (`pip freeze` wrote nothing): installing failed.", ""]
        return "\n".join(lines)
    if changes.changed:
        lines += [
            f"{len(changes.changed)} packages differ from the lock:",
            "",
            "| package | lock | newest |",
            "|---|---|---|",
        ]
        lines += [f"| {n} | {old} | {new} |" for n, old, new in changes.changed]
        lines.append("")
    else:
        lines += ["Every locked package is at its newest release.", ""]
    for title, items in (
        ("New packages (not in the lock)", changes.added),
        ("Gone (locked, no longer installed)", changes.removed),
    ):
        if items:
            lines += [f"{title}: " + ", ".join(f"{n} {v}" for n, v in items) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgm.book.newest", description=__doc__.split("\n")[0])
    parser.add_argument("--lock", type=Path, required=True, help="requirements.lock")
    parser.add_argument(
        "--freeze", type=Path, required=True, help="pip freeze of the newest environment (may be empty)"
    )
    parser.add_argument(
        "--junit", type=Path, required=True, help="pytest's --junitxml report (may be missing)"
    )
    parser.add_argument("--log", type=Path, help="the tests' log, whose end is shown if they did not run")
    parser.add_argument("--out", type=Path, help="write the report here too (default: only print it)")
    args = parser.parse_args(argv)
    if not args.lock.is_file():
        parser.error(f"{args.lock}: no such file")
    frozen = args.freeze.read_text() if args.freeze.is_file() else ""
    installed = {n: v for n, v in parse_pins(frozen).items() if n not in ("pip", "wheel")}
    changes = version_changes(parse_pins(args.lock.read_text()), installed) if installed else None
    outcomes = read_junit(args.junit) if args.junit.is_file() else None
    tail = ""
    if outcomes is None and args.log is not None and args.log.is_file():
        tail = "\n".join(args.log.read_text(errors="replace").splitlines()[-40:])
    text = report_markdown(changes, outcomes, tail)
    if args.out is not None:
        args.out.write_text(text)
    print(text)
    return 0 if outcomes is not None and not outcomes.failures else 1


if __name__ == "__main__":
    sys.exit(main())
