"""MyST -> plain Markdown: the roles and directives of a chapter's Markdown cells rendered.

:func:`convert_markdown` walks a Markdown cell: directive fences go to :func:`render_directive`
(sphinx-proof's statements and exercises become titled block quotes with their numbers on the site,
proofs end with ∎, solutions sit behind ``<details>``, admonitions are block quotes with their
title, ``literalinclude`` is the code it shows), targets and comments are dropped, and every other
line goes to :func:`render_inline`, whose :func:`render_role` makes citations "(Author, Year)",
cross references links to the published pages and glued values the numbers of the build.
:data:`MYST_LEFTOVERS` finds any MyST the conversion missed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dgm.book.edition.blocks import literal_include, quote
from dgm.book.edition.context import Context
from dgm.book.edition.errors import EditionError
from dgm.book.edition.homework import ANCHOR, END, HIDE
from dgm.book.edition.site import format_glued

#: sphinx-proof's directives that are statements (a titled, numbered block quote).
STATEMENTS = {
    "theorem",
    "lemma",
    "proposition",
    "corollary",
    "definition",
    "remark",
    "assumption",
    "conjecture",
    "axiom",
    "criterion",
    "example",
    "property",
    "observation",
    "algorithm",
}
#: Admonitions: a block quote headed by the title.
ADMONITIONS = {
    "note": "Note",
    "warning": "Warning",
    "tip": "Tip",
    "important": "Important",
    "hint": "Hint",
    "caution": "Caution",
    "attention": "Attention",
    "danger": "Danger",
    "error": "Error",
    "seealso": "See also",
}
FENCE = re.compile(r"^(?P<fence>`{3,}|:{3,})(?P<rest>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")
TARGET = re.compile(r"^\(([^()\s]+)\)=\s*$")
ROLE = re.compile(r"\{(?P<role>[\w:-]+)\}`(?P<body>[^`]*)`")
CODE_SPAN = re.compile(r"(?P<ticks>`+)(?:.+?)(?P=ticks)")
EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
#: What is left of MyST if the conversion missed something: roles, directive fences, targets.
MYST_LEFTOVERS = re.compile(r"\{[\w:-]+\}`|^\s*(?:`{3,}|:{3,})\{|^\s*\([^()\s]+\)=\s*$", re.M)


def _split_explicit(body: str) -> tuple[str | None, str]:
    m = EXPLICIT.match(body)
    return (m.group("text"), m.group("target").strip()) if m else (None, body.strip())


def render_role(role: str, body: str, ctx: Context) -> str:
    """One MyST role -> Markdown."""
    if role in ("cite", "cite:p", "cite:t", "cite:ps", "cite:ts"):
        keys = [k.strip() for k in body.split(",") if k.strip()]
        for k in keys:
            if k not in ctx.cited:
                ctx.cited.append(k)
        labels = [ctx.bib.label(k) for k in keys]
        if role.startswith("cite:t"):
            return "; ".join(re.sub(r", (\S+)$", r" (\1)", lab) for lab in labels)
        return "(" + "; ".join(labels) + ")"
    if role in ("prf:ref", "ref", "numref"):
        text, label = _split_explicit(body)
        target = ctx.target(label, role)
        return f"[{text or target.text}]({ctx.url(target)})"
    if role == "doc":
        text, path = _split_explicit(body)
        page = (Path(ctx.docname).parent / path).as_posix() if not path.startswith("/") else path.lstrip("/")
        page = os.path.normpath(page).replace(os.sep, "/")
        target = ctx.target(f"doc:{page}", role)
        return f"[{text or target.text}]({ctx.url(target)})"
    if role in ("glue:text", "glue", "glue:"):
        name, _, spec = body.rpartition(":") if ":" in body else (body, "", "")
        name = name.strip()
        if name not in ctx.values:
            raise EditionError(
                f"{ctx.where()}: the build glued no value {name!r}; build the book first (make book)"
            )
        return format_glued(ctx.values[name], spec)
    if role == "math":
        return f"${body}$"
    if role in ("code", "literal", "samp", "file", "kbd"):
        return f"`{body}`"
    raise EditionError(f"{ctx.where()}: the notebook edition has no form for the role {{{role}}}")


def render_inline(line: str, ctx: Context) -> str:
    """Roles in one line of prose -> Markdown; code spans are left alone."""
    out, pos = [], 0
    pattern = re.compile(ROLE.pattern + "|" + CODE_SPAN.pattern)
    for m in pattern.finditer(line):
        out.append(line[pos : m.start()])
        out.append(render_role(m.group("role"), m.group("body"), ctx) if m.group("role") else m.group(0))
        pos = m.end()
    out.append(line[pos:])
    return "".join(out)


def _closing(lines: list[str], start: int, fence: str) -> int:
    """The index of the line that closes the fence opened at ``start``."""
    char, n = fence[0], len(fence)
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped and set(stripped) == {char} and len(stripped) >= n:
            return i
    raise EditionError(f"unclosed {fence} fence opened at line {start + 1}")


def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive's ``:key: value`` lines (or ``---`` YAML block) and the content after them."""
    opts: dict[str, str] = {}
    if body and body[0].strip() == "---":
        import yaml

        end = body.index("---", 1) if "---" in body[1:] else None
        if end is None:
            raise EditionError("unclosed --- options block in a directive")
        opts = {str(k): str(v) for k, v in (yaml.safe_load("\n".join(body[1:end])) or {}).items()}
        return opts, body[end + 1 :]
    i = 0
    while i < len(body):
        m = re.match(r"^:([\w-]+):\s*(.*)$", body[i])
        if not m:
            break
        opts[m.group(1)] = m.group(2).strip()
        i += 1
    return opts, body[i:]


def convert_markdown(text: str, ctx: Context) -> str:
    """The Markdown of a chapter cell with every MyST construct rendered (macros not yet expanded)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line.strip()) if not line.startswith("    ") else None
        if m:
            end = _closing(lines, i, m.group("fence"))
            body = lines[i + 1 : end]
            d = DIRECTIVE.match(m.group("rest").strip())
            if d:
                out.append(render_directive(d.group("name"), d.group("arg"), body, ctx))
            else:  # an ordinary code block: verbatim
                out.extend(lines[i : end + 1])
            i = end + 1
            continue
        if TARGET.match(line):
            i += 1
            continue
        if ctx.homework is not None and line.strip().startswith(HIDE):  # prose that answers a problem
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(END)), None)
            if end is None:
                raise EditionError(f"{ctx.where()}: '{HIDE}' without '{END}' in the same Markdown cell")
            i = end + 1
            continue
        if line.lstrip().startswith("%"):  # a MyST comment; the homework edition's anchors are comments
            anchor = ANCHOR.match(line.strip())
            if anchor and ctx.homework is not None:
                out.append(ctx.homework.anchor(anchor.group(1)))
            i += 1
            continue
        out.append(render_inline(line, ctx))
        i += 1
    return "\n".join(out)


def render_directive(name: str, arg: str, body: list[str], ctx: Context) -> str:
    """One MyST directive -> Markdown."""
    opts, content = _options(body)
    inner = convert_markdown("\n".join(content), ctx).strip("\n")
    title = render_inline(arg.strip(), ctx) if arg.strip() else ""
    if name.startswith("prf:"):
        kind = name[4:]
        if kind == "proof":
            replaced = ctx.homework.proof() if ctx.homework is not None else None
            if replaced is not None:
                return replaced
            if inner.rstrip().endswith("$$") or inner.rstrip().endswith("```"):
                return f"*Proof.*{' ' + title if title else ''}\n\n{inner}\n\n∎"
            return f"*Proof.*{' ' + title if title else ''} {inner} ∎"
        if kind in STATEMENTS:
            if ctx.homework is not None:
                ctx.homework.last_label = opts.get("label")
            return quote(_numbered_head(kind.capitalize(), opts, title, ctx) + "\n\n" + inner)
        raise EditionError(f"{ctx.where()}: the notebook edition has no form for {{{name}}}")
    if name == "exercise":
        return quote(_numbered_head("Exercise", opts, title, ctx) + "\n\n" + inner)
    if name == "solution":
        label = arg.strip()
        head = f"Solution to {ctx.target(label, 'solution').text}" if label else "Solution"
        return f"<details>\n<summary><b>{head}</b></summary>\n\n{inner}\n\n</details>"
    if name in ADMONITIONS or name == "admonition":
        head = title if name == "admonition" else ADMONITIONS[name] + (f": {title}" if title else "")
        return quote(f"**{head}**\n\n{inner}")
    if name == "literalinclude":
        task = None
        if ctx.homework is not None and "pyobject" in opts:
            path = (ctx.chapter.parent / arg.strip()).resolve()
            task = ctx.homework.literal_include(opts["pyobject"], path.read_text() if path.is_file() else "")
        return task if task is not None else literal_include(arg.strip(), opts, ctx)
    if name in ("math",):
        return "$$\n" + "\n".join(content).strip("\n") + "\n$$"
    if name in ("code-block", "code", "sourcecode"):
        return f"```{arg.strip()}\n" + "\n".join(content).strip("\n") + "\n```"
    raise EditionError(f"{ctx.where()}: the notebook edition has no form for the directive {{{name}}}")


def _numbered_head(kind: str, opts: dict[str, str], title: str, ctx: Context) -> str:
    """``**Theorem 7** (Title).`` with the number the block has on the site."""
    label = opts.get("label")
    if not label:
        raise EditionError(f"{ctx.where()}: a {kind.lower()} without :label: has no number to show")
    number = ctx.target(label, kind.lower()).text
    link = f"[{number}]({ctx.url(ctx.target(label, kind.lower()))})"
    return f"**{link}**" + (f" ({title})." if title else ".")
