"""Print the book's build times on this machine, all measured in one run.

    .venv/bin/python benchmarks/build_time.py [--skip-cpu]

Builds a copy of the repository (so the working tree is never modified) with
``python -m dgm.book.build build`` (what ``make book`` runs) and prints (each cold build trains
every model: checkpoints go to a fresh folder):

1. the cold build time in the smoke profile;
2. the cold build time in the cpu profile (target: under 20 minutes on 2 cores);
3. the no-change rebuild time (target: under 30 s);
4. the rebuild time after changing one file in src/dgm (everything re-executes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".venv", "_build", ".git", "test-output", "__pycache__", ".pytest_cache")


def timed_build(root: Path, out: Path, profile: str) -> float:
    # Trained weights are kept beside the build, so a cold build trains every model.
    env = {**os.environ, "DGM_PROFILE": profile, "DGM_CHECKPOINT_DIR": str(out / "checkpoints")}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "dgm.book.build", "build", str(root), "--output", str(out)],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"build failed ({profile}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-cpu", action="store_true", help="skip the cold cpu-profile build")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        shutil.copytree(ROOT, root, ignore=IGNORE)
        rows = []
        smoke_out = Path(tmp) / "smoke"
        rows.append(("cold build, smoke profile", timed_build(root, smoke_out, "smoke"), None))
        if not args.skip_cpu:
            rows.append(("cold build, cpu profile", timed_build(root, Path(tmp) / "cpu", "cpu"), 20 * 60))
        rows.append(("no-change rebuild (smoke)", timed_build(root, smoke_out, "smoke"), 30))
        target = root / "src" / "dgm" / "profiles.py"
        target.write_text(target.read_text() + "\n# benchmark edit\n")
        rows.append(
            ("rebuild after editing src/dgm/profiles.py (smoke)", timed_build(root, smoke_out, "smoke"), None)
        )
    print(f"{'measurement':<52} {'seconds':>9}  target")
    for name, seconds, limit in rows:
        verdict = "" if limit is None else (f"< {limit} s: " + ("met" if seconds < limit else "MISSED"))
        print(f"{name:<52} {seconds:9.1f}  {verdict}")
    nochange = rows[-2][1]
    print(f"ratio cold smoke / no-change rebuild: {rows[0][1] / nochange:.1f}x")


if __name__ == "__main__":
    main()
