"""Build the book so that stale outputs are impossible.

Jupyter Book's execution cache keys each chapter on its own code cells only. A chapter that
calls ``dgm`` would keep its old outputs after ``src/dgm`` changed. :func:`guard_cache` keeps a
fingerprint of everything else a chapter's outputs depend on (the package source, the pinned
requirements, the execution profile and data set) beside the cache, and empties the cache
when that fingerprint changed. When nothing changed, the cache is kept and nothing re-executes.

Command line (what ``make book`` runs)::

    python -m dgm.bookbuild build ROOT [--output DIR] [--builder html]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

FINGERPRINT_NAME = ".jupyter_cache.fingerprint"
#: What holds executed outputs under ``_build``: emptied together when the inputs changed.
STALE_DIRS = (".jupyter_cache", ".doctrees", "jupyter_execute")
#: Environment variables that change what a chapter computes.
ENV_KEYS = ("DGM_PROFILE", "DGM_DATASET")


def fingerprint(root: Path, environ: dict[str, str] | None = None) -> str:
    """SHA-256 over ``src/dgm`` (every file but caches), ``requirements.txt`` and the profile."""
    from dgm.profiles import current_profile

    root = Path(root)
    environ = dict(os.environ if environ is None else environ)
    h = hashlib.sha256()
    src = root / "src" / "dgm"
    if not src.is_dir():
        raise FileNotFoundError(f"no package source at {src}")
    files = sorted(p for p in src.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for p in files + [root / "requirements.txt"]:
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() if p.exists() else b"<missing>")
        h.update(b"\0")
    h.update(f"profile={current_profile(environ)}\0".encode())
    for key in ENV_KEYS[1:]:
        h.update(f"{key}={environ.get(key, '')}\0".encode())
    return h.hexdigest()


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
    """``build_dir/build-info.json``: the profile and data set of this build (the notebook edition quotes it)."""
    import json

    from dgm.profiles import current_profile

    environ = dict(os.environ if environ is None else environ)
    info = {"profile": current_profile(environ), "dataset": environ.get("DGM_DATASET", "")}
    path = Path(build_dir) / "build-info.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=1) + "\n")
    tmp.replace(path)
    return path


def build(root: Path, output: Path | None = None, builder: str = "html") -> int:
    """Guard the cache, then ``jupyter-book build ROOT -W -n --keep-going``; return its exit code."""
    root = Path(root).resolve()
    out = root if output is None else Path(output).resolve()
    stale = guard_cache(root, out / "_build")
    write_build_info(out / "_build")
    print(f"[dgm.bookbuild] execution cache {'reset: inputs changed' if stale else 'reused'}")
    cmd = [
        str(Path(sys.executable).with_name("jupyter-book")),
        "build", str(root), "--builder", builder, "-W", "-n", "--keep-going",
    ]
    if output is not None:
        cmd += ["--path-output", str(out)]
    return subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgm.bookbuild", description=__doc__.split("\n")[0])
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
