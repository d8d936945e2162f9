"""The homework's command line: ``python -m dgm.homework COMMAND``.

``grade NOTEBOOK.ipynb [--timeout SECONDS]`` runs a homework notebook's solution cells in a child
process and checks each task (:mod:`dgm.homework.grade`): it prints a ``PASS`` or ``FAIL`` line for
each and exits 0 when all passed, 1 when one failed, 2 when the notebook is not a homework notebook.
"""

from __future__ import annotations

import argparse
import sys

from dgm.homework import grade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dgm.homework", description="The homework's command line."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    g = sub.add_parser(
        "grade",
        help="run a homework notebook's solution cells and check each task",
        description=grade.__doc__.split("\n")[0],
    )
    grade.add_arguments(g)
    g.set_defaults(func=grade.run)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
