"""What the finished build knows: the numbers and titles of the site's labels, and the glued values.

The edition quotes a build (``_build/html`` and ``_build/jupyter_execute``) made from the same
commit: :class:`BuildInfo` names its folders, profile and commit, :func:`site_index` reads every
label's page, anchor and text ("Theorem 7", a section title) from the HTML, and
:func:`glued_values` the ``text/plain`` of every value a chapter glued, which :func:`format_glued`
formats as myst-nb's ``{glue:text}`` does.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

from dgm.book.edition.errors import EditionError


@dataclass(frozen=True)
class Target:
    """A label of the site: the page it is on (``book/vae/vae_2d``), its anchor and its text."""

    page: str
    anchor: str
    text: str


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
        r'\s*<span class="caption-number">([^<]+)</span>',
        re.S,
    )
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
