"""Rehearse one chapter with a profile's settings, in its own process, and print what it took.

    python tests/rehearse.py book/vae/vae_cifar10.md [--profile gpu] [--steps 2] [--archive PATH]

executes every code cell of the chapter, in order, in an IPython shell of this process, with
``DGM_PROFILE=<profile>`` and ``DGM_REHEARSAL=<steps>``: the profile's settings unchanged, every pass
over the data cut to its first batches (:mod:`dgm.profiles`). It prints one JSON line: the chapter,
the wall time, the process's peak resident memory, the trainings of the chapter's
experiment and the images it used. A cell that fails
stops it with exit code 1 and the cell's source and traceback.

``--archive`` names an archive in the real format of ``cifar-10-python.tar.gz`` (the tests write one,
full size): :func:`dgm.data.load_image_data` then loads it as CIFAR-10, verified against the
archive's own MD5 in place of the published one.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import os
import resource
import sys
import time
from pathlib import Path


def _peak_rss_mib() -> int:
    """This process's peak resident memory (Linux's VmHWM: unlike ru_maxrss, not the parent's at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _use_archive(archive: Path) -> None:
    """Make ``dgm.data.load_image_data`` (and every module that imported it) load ``archive``."""
    import dgm.data
    from dgm.cifar10 import CIFAR10
    from dgm.downloads import RemoteFile, md5_of

    archive = archive.resolve()
    source = RemoteFile(CIFAR10.filename, md5_of(archive), (archive.as_uri(),), archive.stat().st_size)
    original = dgm.data.load_image_data
    patched = functools.partial(original, dataset="cifar10", source=source, root=archive.parent)
    dgm.data.load_image_data = patched
    for module in list(sys.modules.values()):
        if getattr(module, "load_image_data", None) is original:
            module.load_image_data = patched


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", type=Path)
    parser.add_argument("--profile", default="gpu")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--archive", type=Path)
    args = parser.parse_args(argv)
    os.environ["DGM_REHEARSAL"] = str(args.steps)
    os.environ["DGM_PROFILE"] = args.profile
    os.environ.setdefault("MPLBACKEND", "Agg")

    import jupytext
    from IPython.core.interactiveshell import InteractiveShell

    import dgm.data

    cells = [c.source for c in jupytext.read(args.chapter).cells if c.cell_type == "code"]
    os.chdir(args.chapter.resolve().parent)  # where myst-nb runs a chapter's cells
    shell = InteractiveShell.instance(colors="NoColor")
    shell.run_cell("import dgm.experiments, dgm.data", store_history=False)
    if args.archive is not None:
        _use_archive(args.archive)
    start = time.perf_counter()
    cell_s = []
    for i, source in enumerate(cells, start=1):
        cell_start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as printed:  # the cells' output, the traceback
            outcome = shell.run_cell(source, store_history=False)  # displays its last expression, as a build
        # a display whose formatting fails prints a traceback but leaves the cell a success
        if not outcome.success or "Traceback (most recent call last)" in printed.getvalue():
            print(f"{args.chapter}: cell {i} of {len(cells)} failed:\n{source}\n", file=sys.stderr)
            print(printed.getvalue()[-5000:], file=sys.stderr)
            return 1
        cell_s.append(time.perf_counter() - cell_start)
        if args.archive is not None:
            _use_archive(args.archive)  # modules that a cell imported now
    seconds = time.perf_counter() - start
    log = getattr(shell.user_ns.get("result"), "log", None)  # the chapter's experiment's RunLog
    data = shell.user_ns.get("data")  # the image chapter's ImageData
    print(
        json.dumps(
            {
                "chapter": str(args.chapter),
                "profile": args.profile,
                "steps": args.steps,
                "cells": len(cells),
                "seconds": round(seconds, 1),
                "slowest_cells": {
                    i + 1: round(cell_s[i], 1) for i in sorted(range(len(cells)), key=cell_s.__getitem__)[-3:]
                },
                "peak_rss_mib": _peak_rss_mib(),
                "trainings": [t.name for t in log.trainings] if log is not None else [],
                "images": data.description if isinstance(data, dgm.data.ImageData) else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
