"""Markdown blocks that directives turn into: block quotes and included source code.

:func:`quote` makes a titled block (theorem, exercise, admonition) a Markdown block quote, with
display math joined into single lines so that no ``>`` lands inside an equation;
:func:`literal_include` is a ``literalinclude`` as the fenced code it shows, read from this
checkout (a whole file, some lines, or one class or function found by :func:`python_object_source`).
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

from dgm.book.edition.context import Context
from dgm.book.edition.errors import EditionError


def _one_line_math(text: str) -> str:
    """Display math on one line each, so that a block quote's ``>`` never lands inside an equation."""
    lines, out, buf = text.split("\n"), [], None
    for line in lines:
        s = line.strip()
        if buf is None and (s == "$$" or (s.startswith("$$") and not (len(s) > 2 and s.endswith("$$")))):
            buf = [s]
            continue
        if buf is None and re.match(r"^\\begin\{(\w+\*?)\}", s) and not re.search(r"\\end\{\w+\*?\}\s*$", s):
            buf = [s]
            continue
        if buf is not None:
            buf.append(s)
            if s.endswith("$$") or re.match(r"^\\end\{\w+\*?\}", s):
                out.append(" ".join(buf))
                buf = None
            continue
        out.append(line)
    if buf is not None:
        out.append(" ".join(buf))
    return "\n".join(out)


def quote(text: str) -> str:
    """``text`` as a Markdown block quote (display math joined into single lines first)."""
    return "\n".join(("> " + line).rstrip() for line in _one_line_math(text.strip("\n")).split("\n"))


def literal_include(arg: str, opts: dict[str, str], ctx: Context) -> str:
    """The code a ``literalinclude`` shows, as a fenced code block."""
    path = (ctx.chapter.parent / arg).resolve()
    if not path.is_file():
        raise EditionError(f"{ctx.where()}: literalinclude of a missing file {arg}")
    allowed = {"pyobject", "language", "caption", "lines", "dedent", "class", "name"}
    unknown = set(opts) - allowed
    if unknown:
        raise EditionError(
            f"{ctx.where()}: literalinclude options the edition cannot follow: {sorted(unknown)}"
        )
    source = path.read_text()
    if "pyobject" in opts:
        source = python_object_source(source, opts["pyobject"], path)
    if "lines" in opts:
        all_lines = source.split("\n")
        picked: list[str] = []
        for part in opts["lines"].split(","):
            a, _, b = part.strip().partition("-")
            lo, hi = int(a), int(b) if b else int(a)
            picked += all_lines[lo - 1 : hi]
        source = "\n".join(picked)
    language = opts.get("language", "python" if path.suffix == ".py" else "")
    where = (
        path.relative_to(ctx.root.resolve()).as_posix()
        if path.is_relative_to(ctx.root.resolve())
        else path.name
    )
    caption = opts.get("caption") or f"`{where}`" + (f": `{opts['pyobject']}`" if "pyobject" in opts else "")
    return f"*{caption}*\n\n```{language}\n{textwrap.dedent(source).strip(chr(10))}\n```"


def python_object_source(source: str, dotted: str, path: Path) -> str:
    """The source lines (decorators included) of the class or function ``dotted`` in ``source``."""
    nodes: list[ast.AST] = ast.parse(source).body
    node = None
    for part in dotted.split("."):
        node = next(
            (
                n
                for n in nodes
                if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == part
            ),
            None,
        )
        if node is None:
            raise EditionError(f"{path}: no object {dotted!r} to include")
        nodes = node.body
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "\n".join(source.split("\n")[start - 1 : node.end_lineno])
