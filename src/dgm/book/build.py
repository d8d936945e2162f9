"""Build the book so that stale outputs are impossible.

Jupyter Book's execution cache keys each chapter on its own code cells only. A chapter that
calls ``dgm`` would keep its old outputs after ``src/dgm`` changed. :func:`guard_cache` keeps a
fingerprint of everything else a chapter's outputs depend on (the package source, the pinned
requirements, the execution profile and data set) beside the cache, and empties the cache
when that fingerprint changed. When nothing changed, the cache is kept and nothing re-executes.

The fingerprint covers the ``dgm`` that the kernels import (the installed package, which may be
another checkout's) as well as this checkout's ``src/dgm``, Python files only (no editor swap
files), and whether the CIFAR-10 archive is in the data folder (so that a build made offline with
the stand-in re-executes once the archive is there). Settings are checked before anything is
wiped; one build at a time runs per output folder (a lock); a damaged execution cache is dropped
with a message; and a signal to the build (SIGTERM, SIGINT, SIGHUP) is passed on to Jupyter Book
and its kernels, so that nothing goes on writing ``_build`` after the build was stopped.

Command line (what ``make book`` runs)::

    python -m dgm.book.build build ROOT [--output DIR] [--builder html]
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from dgm.fingerprint import hash_source

FINGERPRINT_NAME = ".jupyter_cache.fingerprint"
#: What holds executed outputs under ``_build``: emptied together when the inputs changed.
STALE_DIRS = (".jupyter_cache", ".doctrees", "jupyter_execute")


def check_settings(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The build's settings, validated (a ValueError naming the bad one): profile, data set, rehearsal."""
    from dgm.data import DATASET_ENV, IMAGE_DATASETS
    from dgm.profiles import current_profile, rehearsal_steps

    environ = dict(os.environ if environ is None else environ)
    dataset = environ.get(DATASET_ENV, "").strip()
    if dataset and dataset not in IMAGE_DATASETS:
        raise ValueError(
            f"{DATASET_ENV}={environ[DATASET_ENV]!r} is not a data set; valid: {', '.join(IMAGE_DATASETS)}"
        )
    rehearsal = rehearsal_steps(environ)
    return {"profile": current_profile(environ), "dataset": dataset, "rehearsal": str(rehearsal or "")}


def imported_package() -> Path:
    """The folder of the ``dgm`` that this Python (and so the build's kernels) imports."""
    spec = importlib.util.find_spec("dgm")
    if spec is None or not spec.origin:
        raise RuntimeError("dgm is not importable by this Python: run `make env`")
    return Path(spec.origin).resolve().parent


def cifar10_present(environ: dict[str, str]) -> bool:
    """Whether the CIFAR-10 archive of the published size lies in the data folder (no MD5: cheap)."""
    from dgm.cifar10 import CIFAR10
    from dgm.downloads import DATA_DIR_ENV

    folder = Path(environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "dgm")
    path = folder / CIFAR10.filename
    return path.is_file() and path.stat().st_size == CIFAR10.size


def fingerprint(root: Path, environ: dict[str, str] | None = None) -> str:
    """SHA-256 over the package source (the checkout's and the imported one), the requirements and
    their lock, and the settings."""
    root = Path(root)
    environ = dict(os.environ if environ is None else environ)
    settings = check_settings(environ)
    h = hashlib.sha256()
    src = root / "src" / "dgm"
    if not src.is_dir():
        raise FileNotFoundError(f"no package source at {src}")
    hash_source(h, src, "src/dgm")
    installed = imported_package()
    if installed != src.resolve():  # the kernels run this code: it decides the outputs
        hash_source(h, installed, "imported dgm")
    for name in ("requirements.txt", "requirements.lock"):  # what the environment is made of
        req = root / name
        h.update(name.encode() + b"\0" + (req.read_bytes() if req.exists() else b"<missing>") + b"\0")
    h.update(f"profile={settings['profile']}\0dataset={settings['dataset']}\0".encode())
    h.update(f"rehearsal={settings['rehearsal']}\0".encode())  # a rehearsal's outputs are never reused
    h.update(f"cifar10_present={cifar10_present(environ)}\0".encode())
    return h.hexdigest()


def drop_damaged_cache(build_dir: Path) -> bool:
    """Empty the execution cache if one of its notebooks cannot be read; return True if it did."""
    import nbformat

    executed = Path(build_dir) / ".jupyter_cache" / "executed"
    for nb in sorted(executed.glob("*/base.ipynb")) if executed.is_dir() else []:
        try:
            nbformat.read(nb, as_version=4)
        except Exception as e:  # NotJSONError, truncation, a foreign file
            print(
                f"[dgm.book.build] damaged cache entry {nb} ({type(e).__name__}); dropping the execution "
                "cache, every chapter re-executes"
            )
            for name in STALE_DIRS:
                if (Path(build_dir) / name).exists():
                    shutil.rmtree(Path(build_dir) / name)
            return True
    return False


def guard_cache(root: Path, build_dir: Path, environ: dict[str, str] | None = None) -> bool:
    """Empty the execution cache if the fingerprint changed; return True if it did.

    Sphinx re-reads (and so re-executes) only sources whose text changed, so its saved
    environment (``.doctrees``) and the executed notebooks go with the cache.
    """
    build_dir = Path(build_dir)
    stamp = build_dir / FINGERPRINT_NAME
    current = fingerprint(root, environ)
    stored = stamp.read_text().strip() if stamp.exists() else None
    if stored == current:
        return False
    # A cache of unknown provenance (no stamp) is not trusted either.
    for name in STALE_DIRS:
        if (build_dir / name).exists():
            shutil.rmtree(build_dir / name)
    build_dir.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_suffix(".tmp")
    tmp.write_text(current + "\n")
    tmp.replace(stamp)
    return True


def write_build_info(build_dir: Path, environ: dict[str, str] | None = None) -> Path:
    """``build_dir/build-info.json``: this build's profile, data set and rehearsal (the notebook edition
    quotes the profile)."""
    import json

    from dgm.profiles import current_profile, rehearsal_steps

    environ = dict(os.environ if environ is None else environ)
    info = {
        "profile": current_profile(environ),
        "dataset": environ.get("DGM_DATASET", "").strip(),
        "rehearsal": rehearsal_steps(environ) or 0,  # steps per pass of a rehearsal; 0 for a real build
    }
    path = Path(build_dir) / "build-info.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    tmp.replace(path)
    return path


class BuildLocked(RuntimeError):
    """Another build holds the lock of this output folder."""


def _lock(build_dir: Path):
    """An exclusive lock on ``build_dir/.build.lock`` (released when the returned file closes)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    f = open(build_dir / ".build.lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise BuildLocked(
            f"another build is running in {build_dir} ({holder}); wait for it or stop it"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()}\n")
    f.flush()
    return f


def _run_forwarding_signals(cmd: list[str]) -> int:
    """Run ``cmd`` in a process group of its own; SIGTERM, SIGINT and SIGHUP go to the whole group."""
    child = subprocess.Popen(cmd, start_new_session=True)
    signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    received: list[int] = []

    def forward(signum, frame):
        received.append(signum)
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass

    previous = {s: signal.signal(s, forward) for s in signals}
    try:
        code = child.wait()
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if child.poll() is None:  # something went wrong here: leave no build behind
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    if received:
        try:  # the group's stragglers (kernels) too
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return 128 + received[0]
    return code


def build(root: Path, output: Path | None = None, builder: str = "html") -> int:
    """Check the settings, lock, guard the cache, then ``jupyter-book build ROOT -W -n --keep-going``."""
    root = Path(root).resolve()
    out = root if output is None else Path(output).resolve()
    try:
        check_settings()
        lock = _lock(out / "_build")
    except (ValueError, BuildLocked) as e:
        print(f"[dgm.book.build] {e}", file=sys.stderr)
        return 2
    with lock:
        damaged = drop_damaged_cache(out / "_build")
        stale = guard_cache(root, out / "_build")
        write_build_info(out / "_build")
        state = "reset: damaged" if damaged else "reset: inputs changed" if stale else "reused"
        print(f"[dgm.book.build] execution cache {state}")
        cmd = [
            str(Path(sys.executable).with_name("jupyter-book")),
            "build",
            str(root),
            "--builder",
            builder,
            "-W",
            "-n",
            "--keep-going",
        ]
        if output is not None:
            cmd += ["--path-output", str(out)]
        return _run_forwarding_signals(cmd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgm.book.build", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="guard the execution cache and build the book")
    b.add_argument("root", type=Path)
    b.add_argument("--output", type=Path, default=None, help="folder to hold _build (default: ROOT)")
    b.add_argument("--builder", default="html")
    f = sub.add_parser("fingerprint", help="print the fingerprint of the inputs")
    f.add_argument("root", type=Path)
    args = parser.parse_args(argv)
    if args.command == "fingerprint":
        print(fingerprint(args.root))
        return 0
    return build(args.root, args.output, args.builder)


if __name__ == "__main__":
    sys.exit(main())
