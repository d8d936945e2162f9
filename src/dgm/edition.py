"""The notebook edition: every chapter as a plain ``.ipynb`` that reads like its page and runs anywhere.

The chapters are MyST Markdown notebooks; Colab, JupyterLab and Binder know neither MyST's roles and
directives nor the book's math macros. :func:`edition_notebook` turns one chapter into a notebook
whose Markdown cells hold only CommonMark with HTML (``<details>``) and math, where

- theorems, lemmas, definitions, remarks and exercises are titled blocks (block quotes) with the
  numbers they have on the site, proofs end with ∎, solutions sit behind ``<details>``, and
  admonitions are block quotes with their title;
- ``literalinclude`` is the code it shows, read from the package source of this checkout;
- citations are "(Author, Year)" with the chapter's references listed at its end, and cross
  references are links to the published pages;
- the book's math macros (``_config.yml``) are expanded, so every equation renders without them;
- a number the page glues into its text is the value of the build that produced the site, and one
  line at the top says which profile and device made it and that running the cells gives your own.

Numbers, titles and glued values are read from a finished build (``_build/html`` and
``_build/jupyter_execute``): the edition is made after ``make book``, from the same commit.
Every code cell is kept as it is; a setup cell that installs ``dgm`` only where it is missing (Colab)
comes first. :func:`write_edition` writes one notebook per notebook chapter of ``_toc.yml``, with
the repository's layout, plus the Binder environment of the ``notebooks`` branch.

Command line (what ``make notebooks`` and the publish workflow run)::

    python -m dgm.edition ROOT OUT [--build ROOT/_build] [--ref REF]
"""

from __future__ import annotations

import argparse
import ast
import html
import json
import os
import re
import shutil
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dgm.colab import SETUP_CELL_ID, chapter_source, is_notebook, read_config, repository, setup_cell_source, toc_chapters

#: sphinx-proof's directives that are statements (a titled, numbered block quote).
STATEMENTS = {
    "theorem", "lemma", "proposition", "corollary", "definition", "remark", "assumption",
    "conjecture", "axiom", "criterion", "example", "property", "observation", "algorithm",
}
#: Admonitions: a block quote headed by the title.
ADMONITIONS = {
    "note": "Note", "warning": "Warning", "tip": "Tip", "important": "Important", "hint": "Hint",
    "caution": "Caution", "attention": "Attention", "danger": "Danger", "error": "Error",
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


class EditionError(ValueError):
    """A chapter uses something the notebook edition cannot render, or the build lacks a value."""


# --------------------------------------------------------------------------------------------
# What the build knows: numbers and titles of labels, glued values


@dataclass(frozen=True)
class Target:
    """A label of the site: the page it is on (``book/vae/vae_2d``), its anchor and its text."""

    page: str
    anchor: str
    text: str


def _plain(fragment: str) -> str:
    """HTML of a title -> Markdown text: tags dropped, MathJax's ``\\( \\)`` back to ``$``."""
    text = re.sub(r"<[^>]+>", "", fragment)
    text = html.unescape(text).replace("\\(", "$").replace("\\)", "$")
    return re.sub(r"\s+", " ", text).strip()


def site_index(html_dir: Path) -> dict[str, Target]:
    """Every label of the built site: numbered blocks ("Theorem 7"), sections and pages by title."""
    html_dir = Path(html_dir)
    if not html_dir.is_dir():
        raise EditionError(f"no built site at {html_dir}: build the book first (make book)")
    index: dict[str, Target] = {}
    numbered = re.compile(
        r'<div class="(?:proof \w+|exercise)[^"]*"[^>]*\bid="([^"]+)"[^>]*>\s*<p class="admonition-title">'
        r'\s*<span class="caption-number">([^<]+)</span>', re.S)
    section = re.compile(r'<span id="([^"]+)"></span>\s*<h[1-6][^>]*>(.*?)<a class="headerlink"', re.S)
    for path in sorted(html_dir.rglob("*.html")):
        page = path.relative_to(html_dir).with_suffix("").as_posix()
        if page.startswith(("_", "genindex", "search")):
            continue
        text = path.read_text(errors="replace")
        h1 = re.search(r"<h1[^>]*>(.*?)(?:<a class=\"headerlink\"|</h1>)", text, re.S)
        if h1:
            index[f"doc:{page}"] = Target(page, "", _plain(h1.group(1)))
        for m in section.finditer(text):
            index[m.group(1)] = Target(page, m.group(1), _plain(m.group(2)))
        for m in numbered.finditer(text):
            index[m.group(1)] = Target(page, m.group(1), _plain(m.group(2)))
    return index


def glued_values(executed: Path, docname: str) -> dict[str, str]:
    """The ``text/plain`` of every value the chapter glued in the build (``<doc>.glue.json`` or outputs)."""
    notebook = Path(executed) / f"{docname}.ipynb"
    values: dict[str, str] = {}
    sidecar = notebook.with_suffix(".glue.json")
    if sidecar.is_file():
        for name, output in json.loads(sidecar.read_text()).items():
            values[name] = output.get("data", {}).get("text/plain", "")
    if notebook.is_file():
        for cell in json.loads(notebook.read_text()).get("cells", []):
            for output in cell.get("outputs", []):
                name = output.get("metadata", {}).get("scrapbook", {}).get("name")
                if name:
                    values[name] = output.get("data", {}).get("text/plain", "")
    return values


def format_glued(text: str, spec: str) -> str:
    """A glued ``text/plain`` formatted by myst-nb's own ``{glue:text}`` formatter (``name:spec``)."""
    from myst_nb.core.variables import format_plain_text

    return format_plain_text(text, spec)


# --------------------------------------------------------------------------------------------
# Citations


def _latex_text(value: str) -> str:
    """BibTeX field text -> Unicode without braces (``Ga{\\"e}l`` -> ``Gaël``)."""
    import latexcodec  # noqa: F401  (registers the codec)
    import codecs

    return codecs.decode(value, "ulatex").replace("{", "").replace("}", "")


@dataclass
class Bibliography:
    """The book's ``references.bib``: "(Author, Year)" labels and reference-list entries."""

    entries: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> Bibliography:
        from pybtex.database import parse_file

        return cls(dict(parse_file(str(path)).entries))

    def entry(self, key: str):
        if key not in self.entries:
            raise EditionError(f"citation {key!r} is not in references.bib")
        return self.entries[key]

    def label(self, key: str) -> str:
        """``Burda et al., 2016`` (one, two or three and more authors), as the site's author-year style."""
        e = self.entry(key)
        people = e.persons.get("author") or e.persons.get("editor") or []
        last = [_latex_text(" ".join(p.prelast_names + p.last_names)) for p in people]
        if not last:
            names = _latex_text(e.fields.get("organization", e.fields.get("title", key)))
        elif len(last) == 1:
            names = last[0]
        elif len(last) == 2:
            names = f"{last[0]} and {last[1]}"
        else:
            names = f"{last[0]} et al."
        return f"{names}, {e.fields.get('year', 'n.d.')}"

    def reference(self, key: str) -> str:
        """One entry of the reference list, in Markdown."""
        e = self.entry(key)
        people = e.persons.get("author") or e.persons.get("editor") or []
        authors = ", ".join(
            _latex_text(" ".join(p.first_names + p.middle_names + p.prelast_names + p.last_names)) for p in people
        )
        title = _latex_text(e.fields.get("title", key))
        venue = next((e.fields[k] for k in ("journal", "booktitle", "publisher", "howpublished", "school")
                      if k in e.fields), "")
        parts = [f"{authors} ({e.fields.get('year', 'n.d.')}). *{title}*."]
        if venue:
            parts.append(_latex_text(venue) + ".")
        link = e.fields.get("url") or (f"https://doi.org/{e.fields['doi']}" if "doi" in e.fields else "")
        if link:
            parts.append(f"<{link}>")
        return " ".join(parts)


# --------------------------------------------------------------------------------------------
# MyST -> Markdown


@dataclass
class Context:
    """What converting one chapter needs, and what it collects (the keys it cited)."""

    root: Path
    chapter: Path
    docname: str
    base_url: str
    index: dict[str, Target]
    values: dict[str, str]
    bib: Bibliography
    macros: dict[str, str]
    cited: list[str] = field(default_factory=list)

    def where(self) -> str:
        return str(self.chapter.relative_to(self.root))

    def url(self, target: Target) -> str:
        return f"{self.base_url}{target.page}.html" + (f"#{target.anchor}" if target.anchor else "")

    def target(self, label: str, role: str) -> Target:
        if label not in self.index:
            raise EditionError(f"{self.where()}: {{{role}}}`{label}` names no label of the built site")
        return self.index[label]


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
            raise EditionError(f"{ctx.where()}: the build glued no value {name!r}; build the book first (make book)")
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
        out.append(line[pos:m.start()])
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
        return opts, body[end + 1:]
    i = 0
    while i < len(body):
        m = re.match(r"^:([\w-]+):\s*(.*)$", body[i])
        if not m:
            break
        opts[m.group(1)] = m.group(2).strip()
        i += 1
    return opts, body[i:]


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
        raise EditionError(f"{ctx.where()}: literalinclude options the edition cannot follow: {sorted(unknown)}")
    source = path.read_text()
    if "pyobject" in opts:
        source = python_object_source(source, opts["pyobject"], path)
    if "lines" in opts:
        all_lines = source.split("\n")
        picked: list[str] = []
        for part in opts["lines"].split(","):
            a, _, b = part.strip().partition("-")
            lo, hi = int(a), int(b) if b else int(a)
            picked += all_lines[lo - 1:hi]
        source = "\n".join(picked)
    language = opts.get("language", "python" if path.suffix == ".py" else "")
    where = path.relative_to(ctx.root.resolve()).as_posix() if path.is_relative_to(ctx.root.resolve()) else path.name
    caption = opts.get("caption") or f"`{where}`" + (f": `{opts['pyobject']}`" if "pyobject" in opts else "")
    return f"*{caption}*\n\n```{language}\n{textwrap.dedent(source).strip(chr(10))}\n```"


def python_object_source(source: str, dotted: str, path: Path) -> str:
    """The source lines (decorators included) of the class or function ``dotted`` in ``source``."""
    nodes: list[ast.AST] = ast.parse(source).body
    node = None
    for part in dotted.split("."):
        node = next((n for n in nodes if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.name == part), None)
        if node is None:
            raise EditionError(f"{path}: no object {dotted!r} to include")
        nodes = node.body
    start = min([node.lineno] + [d.lineno for d in node.decorator_list])
    return "\n".join(source.split("\n")[start - 1:node.end_lineno])


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
            body = lines[i + 1:end]
            d = DIRECTIVE.match(m.group("rest").strip())
            if d:
                out.append(render_directive(d.group("name"), d.group("arg"), body, ctx))
            else:  # an ordinary code block: verbatim
                out.extend(lines[i:end + 1])
            i = end + 1
            continue
        if TARGET.match(line):
            i += 1
            continue
        if line.lstrip().startswith("%"):  # a MyST comment
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
            if inner.rstrip().endswith("$$") or inner.rstrip().endswith("```"):
                return f"*Proof.*{' ' + title if title else ''}\n\n{inner}\n\n∎"
            return f"*Proof.*{' ' + title if title else ''} {inner} ∎"
        if kind in STATEMENTS:
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
        return literal_include(arg.strip(), opts, ctx)
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


# --------------------------------------------------------------------------------------------
# Math macros


def book_macros(config: dict[str, Any]) -> dict[str, str]:
    """The MathJax macros of ``_config.yml`` (``sphinx.config.mathjax3_config.tex.macros``)."""
    macros = (((config.get("sphinx") or {}).get("config") or {}).get("mathjax3_config") or {})
    macros = ((macros.get("tex") or {}).get("macros")) or {}
    out = {}
    for name, value in macros.items():
        if not isinstance(value, str):
            raise EditionError(f"macro \\{name}: only macros without arguments can be expanded, got {value!r}")
        out[str(name)] = value
    return out


def expand_macros(text: str, macros: dict[str, str]) -> str:
    """Replace each book macro ``\\name`` (a whole control word) by ``{definition}``, outside code."""
    if not macros:
        return text
    word = re.compile(r"\\(" + "|".join(sorted(map(re.escape, macros), key=len, reverse=True)) + r")(?![A-Za-z])")
    parts = re.split(r"(^```.*?^```[ \t]*$|`[^`\n]+`)", text, flags=re.S | re.M)
    for k in range(0, len(parts), 2):  # even parts are prose, odd ones code
        parts[k] = word.sub(lambda m: "{" + macros[m.group(1)] + "}", parts[k])
    return "".join(parts)


def undefined_macros(text: str, macros: dict[str, str]) -> list[str]:
    """The book macros still used in ``text`` outside code (the edition's test: none)."""
    word = re.compile(r"\\(" + "|".join(map(re.escape, macros)) + r")(?![A-Za-z])")
    prose = re.sub(r"^```.*?^```[ \t]*$|`[^`\n]+`", "", text, flags=re.S | re.M)
    return sorted(set(word.findall(prose)))


# --------------------------------------------------------------------------------------------
# Notebooks

#: Notebook metadata that makes Colab ask for a GPU runtime (Runtime > Change runtime type).
COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}
#: The cell that says where the quoted numbers come from (its id).
NOTICE_CELL_ID = "edition-notice"


@dataclass(frozen=True)
class BuildInfo:
    """What made the site the edition quotes: the build's folder, its profile and the commit."""

    build_dir: Path
    ref: str

    @property
    def html(self) -> Path:
        return self.build_dir / "html"

    @property
    def executed(self) -> Path:
        return self.build_dir / "jupyter_execute"

    def profile(self) -> str | None:
        info = self.build_dir / "build-info.json"
        return json.loads(info.read_text()).get("profile") if info.is_file() else None


def notice(title_link: str, values: dict[str, str], build: BuildInfo) -> str:
    """The edition's note under the title: what this notebook is and where its numbers come from."""
    profile = format_glued(values["run_profile"], "") if "run_profile" in values else build.profile()
    device = format_glued(values["run_device"], "") if "run_device" in values else None
    made = ", ".join(
        [f"profile `{profile}`" if profile else "", f"device {device}" if device else "", f"commit `{build.ref[:12]}`"]
    ).strip(", ").replace(", ,", ",")
    return (
        f"> **Notebook edition** of {title_link}. The numbers quoted in the text are those of the "
        f"published build ({made}); running the cells computes your own, which depend on the execution "
        "profile (`DGM_PROFILE=smoke|cpu|gpu`) and on your hardware. In Colab, run the first code cell to "
        "install the book's package `dgm`; the notebook asks for a GPU runtime."
    )


def edition_notebook(root: Path, docname: str, build: BuildInfo, index: dict[str, Target] | None = None):
    """The notebook edition of one chapter (an ``nbformat`` notebook without outputs)."""
    import jupytext
    import nbformat

    root = Path(root)
    config = read_config(root)
    repo_url, _, _ = repository(config)
    base_url = str((config.get("html") or {}).get("baseurl", "")).rstrip("/") + "/"
    if base_url == "/":
        raise EditionError("_config.yml has no html.baseurl: the edition links into the published site")
    source = chapter_source(root, docname)
    index = site_index(build.html) if index is None else index
    ctx = Context(
        root=root.resolve(), chapter=source.resolve(), docname=docname, base_url=base_url, index=index,
        values=glued_values(build.executed, docname),
        bib=Bibliography.read(root / (config.get("bibtex_bibfiles") or ["book/references.bib"])[0]),
        macros=book_macros(config),
    )
    nb = jupytext.read(source)
    for key in ("jupytext", "mystnb"):
        nb.metadata.pop(key, None)
    nb.metadata.update(json.loads(json.dumps(COLAB_METADATA)))
    nb.metadata["colab"]["name"] = Path(docname).name + ".ipynb"
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = expand_macros(convert_markdown(cell.source, ctx), ctx.macros).strip("\n")
            if text:
                cells.append(nbformat.v4.new_markdown_cell(text))
        elif cell.cell_type == "code":
            tags = [t for t in cell.metadata.get("tags", []) if t != "remove-cell"]
            cells.append(nbformat.v4.new_code_cell(cell.source, metadata={"tags": tags} if tags else {}))
        else:
            cells.append(cell)
    if not cells or cells[0].cell_type != "markdown" or not cells[0].source.lstrip().startswith("# "):
        raise EditionError(f"{ctx.where()}: a chapter must open with its title (# ...) in Markdown")
    head, _, rest = cells[0].source.lstrip().partition("\n")
    page = index.get(f"doc:{docname}")
    title_link = f"[{page.text if page else head[2:].strip()}]({base_url}{docname}.html)"
    book = str(config.get("title", "the book"))
    front = [
        nbformat.v4.new_markdown_cell(head),
        nbformat.v4.new_markdown_cell(notice(f"{title_link} in *{book}*", ctx.values, build)),
        nbformat.v4.new_code_cell(setup_cell_source(repo_url, build.ref)),
    ]
    front[1]["id"] = NOTICE_CELL_ID
    front[2]["id"] = SETUP_CELL_ID
    if rest.strip():
        front.append(nbformat.v4.new_markdown_cell(rest.strip("\n")))
    cells = front + cells[1:]
    if ctx.cited:
        refs = "\n".join(f"- {ctx.bib.reference(k)}" for k in sorted(ctx.cited, key=lambda k: ctx.bib.label(k)))
        cells.append(nbformat.v4.new_markdown_cell("## References\n\n" + refs))
    for i, cell in enumerate(cells):
        if cell.get("id") not in (NOTICE_CELL_ID, SETUP_CELL_ID):
            cell["id"] = f"cell-{i:03d}"
        if cell.cell_type == "markdown":
            left = MYST_LEFTOVERS.search(cell.source)
            if left:
                raise EditionError(f"{ctx.where()}: MyST left in the edition: {left.group(0)!r}")
    nb.cells = cells
    nbformat.validate(nb)
    return nb


def write_edition(root: Path, out: Path, build_dir: Path | None = None, ref: str | None = None) -> list[Path]:
    """Write the notebook edition of every notebook chapter of ``_toc.yml`` under ``out``; return the paths.

    ``out`` gets the repository's layout (``book/vae/vae_2d.ipynb``), a README, and ``binder/``: the
    readers' environment of ``binder/`` in this checkout, whose ``postBuild`` installs ``dgm`` at ``ref``.
    Files are written whole (a temporary name, then renamed), so a failed run leaves no half notebook.
    """
    import nbformat

    root, out = Path(root), Path(out)
    repo_url, branch, path_to_book = repository(read_config(root))
    build = BuildInfo(Path(build_dir) if build_dir else root / "_build", ref or branch)
    index = site_index(build.html)
    notebooks = [(d, edition_notebook(root, d, build, index)) for d in toc_chapters(root)
                 if is_notebook(chapter_source(root, d))]
    written = []
    for docname, nb in notebooks:
        target = out / path_to_book / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, target)
        written.append(target)
    _write_binder(root, out, repo_url, build.ref)
    (out / "README.md").write_text(
        f"# The notebook edition of {repo_url}\n\n"
        f"Generated from the chapters at `{build.ref}` by `python -m dgm.edition`; do not edit here.\n"
        "Each chapter's Colab and Binder buttons open its notebook from this branch; `binder/` is the\n"
        "readers' environment (the CPU build of torch) and installs the book's package at that commit.\n"
    )
    return written


def _write_binder(root: Path, out: Path, repo_url: str, ref: str) -> None:
    """``out/binder``: the checkout's ``binder/`` files, with a ``postBuild`` that installs ``dgm`` at ``ref``."""
    source = root / "binder"
    if not (source / "requirements.txt").is_file():
        raise EditionError(f"no readers' environment at {source}/requirements.txt")
    target = out / "binder"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("requirements.txt", "runtime.txt"):
        if (source / name).is_file():
            shutil.copyfile(source / name, target / name)
    post = target / "postBuild"
    post.write_text(
        "#!/bin/bash\n"
        "# Binder runs this after it installed requirements.txt (the layer that holds torch): the book's\n"
        "# package at the commit of this edition, without dependencies, so a new commit reinstalls only it.\n"
        "set -euo pipefail\n"
        f'python -m pip install --no-deps --no-cache-dir "dgm @ git+{repo_url}@{ref}"\n'
    )
    post.chmod(0o755)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgm.edition", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="the book's root (holds _config.yml and _toc.yml)")
    parser.add_argument("out", type=Path, help="folder to write the edition into")
    parser.add_argument("--build", type=Path, default=None, help="the finished build to quote (default ROOT/_build)")
    parser.add_argument("--ref", default=None, help="the commit the notebooks install dgm from (default: repository.branch)")
    args = parser.parse_args(argv)
    try:
        for path in write_edition(args.root, args.out, args.build, args.ref):
            print(path)
    except EditionError as exc:
        print(f"python -m dgm.edition: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
