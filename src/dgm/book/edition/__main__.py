"""The edition's command line: write the notebook edition of a book from its finished build.

What ``make notebooks`` and the publish workflow run, ``python -m dgm.book.edition ROOT OUT
[--build ROOT/_build] [--ref REF] [--homework]``: :func:`main` prints the path of every notebook it wrote, or
one line saying what is missing (an :class:`EditionError`) and returns 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dgm.book.edition as edition
from dgm.book.edition.errors import EditionError
from dgm.book.edition.writer import write_edition


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dgm.book.edition", description=edition.__doc__.split("\n")[0]
    )
    parser.add_argument("root", type=Path, help="the book's root (holds _config.yml and _toc.yml)")
    parser.add_argument("out", type=Path, help="folder to write the edition into")
    parser.add_argument(
        "--build", type=Path, default=None, help="the finished build to quote (default ROOT/_build)"
    )
    parser.add_argument(
        "--ref", default=None, help="the commit the notebooks install dgm from (default: repository.branch)"
    )
    parser.add_argument(
        "--homework", action="store_true", help="write the homework edition (the chapters that hold homework)"
    )
    args = parser.parse_args(argv)
    try:
        for path in write_edition(args.root, args.out, args.build, args.ref, homework=args.homework):
            print(path)
    except EditionError as exc:
        print(f"python -m dgm.book.edition: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
