"""Peak resident memory of every chapter as a reader runs it (Binder gives 1-2 GB).

Each chapter's code cells run top to bottom in a fresh Python process (an IPython shell, as in a
kernel), in the given profile (default ``cpu``), with fresh checkpoints, so every model trains.
The CIFAR-10 chapter reads a full-size archive in the real format (60,000 random images, written
here as the tests write their small ones) in place of the download, which this machine cannot make.
Prints one line per chapter: peak RSS, wall time, and whether it is within the budget.

    .venv/bin/python benchmarks/chapter_memory.py [--profile cpu] [--budget-gb 1.5] [CHAPTER ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # fakecifar: the archive writer of the tests


def run_chapter(chapter: Path, archive: Path) -> dict:
    """In this process: the chapter's code cells in an IPython shell; its peak RSS and time."""
    import jupytext
    from IPython.core.interactiveshell import InteractiveShell

    import dgm.cifar10
    import dgm.data
    from dgm.downloads import RemoteFile

    from fakecifar import md5

    # The full-size stand-in archive in place of the published one (same name, its own MD5).
    fake = RemoteFile(
        dgm.cifar10.CIFAR10.filename, md5(archive), ("https://cifar.invalid/",), archive.stat().st_size
    )
    for fn in (dgm.cifar10.load_cifar10, dgm.data.load_image_data):
        fn.__defaults__ = tuple(fake if d is dgm.cifar10.CIFAR10 else d for d in fn.__defaults__)
    os.chdir(chapter.parent)
    shell = InteractiveShell.instance()
    start = time.perf_counter()
    for cell in jupytext.read(chapter).cells:
        if cell.cell_type == "code":
            result = shell.run_cell(cell.source, silent=True)
            if not result.success:
                raise RuntimeError(
                    f"{chapter}: a cell failed: {result.error_in_exec or result.error_before_exec}"
                )
    return {"peak_rss_mb": peak_rss_mb(), "seconds": time.perf_counter() - start}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ``getrusage``: on Linux its ``ru_maxrss``
    keeps the peak of the forked parent from before ``exec``."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (this benchmark needs Linux)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("chapters", nargs="*", type=Path)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--budget-gb", type=float, default=1.5)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--archive", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_chapter(args.child, args.archive)))
        return 0

    from dgm.book.colab import chapter_source, is_notebook, toc_chapters

    from fakecifar import write_fake_cifar

    chapters = args.chapters or [chapter_source(ROOT, d) for d in toc_chapters(ROOT)]
    chapters = [c.resolve() for c in chapters if is_notebook(c)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        data.mkdir()
        archive = data / "cifar-10-python.tar.gz"
        write_fake_cifar(archive, n_per_batch=10_000)
        print(
            f"profile {args.profile}; full-size archive in the real format: "
            f"{archive.stat().st_size / 2**20:.0f} MiB"
        )
        env = {
            **os.environ,
            "DGM_PROFILE": args.profile,
            "DGM_DATA_DIR": str(data),
            "DGM_DATASET": "cifar10",
            "DGM_CHECKPOINT_DIR": str(tmp / "checkpoints"),
            "MPLBACKEND": "Agg",
        }
        worst = 0.0
        print(f"{'chapter':<40} {'peak RSS':>10} {'time':>8}  within {args.budget_gb} GB")
        for chapter in chapters:
            proc = subprocess.run(
                [sys.executable, __file__, "--child", str(chapter), "--archive", str(archive)],
                capture_output=True,
                text=True,
                env=env,
            )
            rel = chapter.relative_to(ROOT).as_posix()
            if proc.returncode != 0:
                print(f"{rel:<40} FAILED\n{proc.stderr[-2000:]}")
                return 1
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            worst = max(worst, r["peak_rss_mb"])
            ok = r["peak_rss_mb"] <= args.budget_gb * 1024
            print(f"{rel:<40} {r['peak_rss_mb']:>7.0f} MB {r['seconds']:>7.1f}s  {'yes' if ok else 'NO'}")
        print(f"largest peak: {worst:.0f} MB of {args.budget_gb * 1024:.0f} MB")
        return 0 if worst <= args.budget_gb * 1024 else 2


if __name__ == "__main__":
    sys.exit(main())
