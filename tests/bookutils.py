"""Helpers for tests that build a book and read what it executed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


@dataclass(frozen=True)
class Build:
    """A finished book build: its exit code, its log and where it wrote."""

    returncode: int
    log: str
    out: Path

    @property
    def html(self) -> Path:
        return self.out / "_build" / "html"

    @property
    def executed(self) -> Path:
        return self.out / "_build" / "jupyter_execute"


def build_book(root: Path, out: Path, **env: str) -> Build:
    """Run ``python -m dgm.book.build build root --output out`` (what ``make book`` runs)."""
    environ = {**os.environ, **env}
    proc = subprocess.run(
        [sys.executable, "-m", "dgm.book.build", "build", str(root), "--output", str(out)],
        capture_output=True,
        text=True,
        env=environ,
        cwd=root,
    )
    return Build(proc.returncode, proc.stdout + proc.stderr, out)


def make_mini_book(root: Path, chapters: dict[str, str]) -> Path:
    """A book with the project's own ``_config.yml`` and the given chapters (name -> body)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "_config.yml", root / "_config.yml")
    (root / "book").mkdir(exist_ok=True)
    shutil.copy(ROOT / "book" / "references.bib", root / "book" / "references.bib")
    (root / "src" / "dgm").mkdir(parents=True, exist_ok=True)
    (root / "src" / "dgm" / "__init__.py").touch()
    (root / "requirements.txt").write_text("numpy\n")
    names = list(chapters)
    toc = [
        "format: jb-book",
        f"root: book/{names[0]}",
    ]
    if len(names) > 1:
        toc.append("chapters:")
        toc += [f"  - file: book/{n}" for n in names[1:]]
    (root / "_toc.yml").write_text("\n".join(toc) + "\n")
    for name, body in chapters.items():
        (root / "book" / f"{name}.md").write_text(CHAPTER_HEADER + body)
    return root


def glued(notebook: Path) -> dict[str, str]:
    """The values a notebook glued with ``myst_nb.glue``: name -> ``text/plain`` output.

    myst-nb writes them to ``<notebook stem>.glue.json`` beside the executed notebook (with the
    execution cache the ``.ipynb`` there has no outputs); outputs in the notebook are read too.
    """
    notebook = Path(notebook)
    out: dict[str, str] = {}
    glue_file = notebook.with_suffix(".glue.json")
    if glue_file.is_file():
        for name, output in json.loads(glue_file.read_text()).items():
            out[name] = output.get("data", {}).get("text/plain", "")
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook", {})
            if "name" in meta:
                data = output.get("data", {})
                # Executed outputs carry glue's MIME prefix (application/papermill.record/text/plain).
                out[meta["name"]] = next((v for k, v in data.items() if k.endswith("text/plain")), "")
    return out


def glued_values(notebook: Path) -> dict[str, int | float | str]:
    """:func:`glued`, parsed from the text form: integers as int, other numbers as float, strings unquoted."""
    out: dict[str, int | float | str] = {}
    for name, text in glued(notebook).items():
        try:
            out[name] = int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            out[name] = text.strip("'\"")
    return out


def execute_chapter(chapter: str, out: Path, **env: str) -> dict[str, int | float | str]:
    """Execute ``chapter`` (e.g. ``book/vae/vae_cifar10``) as it is, in its folder, with ``env`` set, as
    a reader's kernel would; write it to ``out / "executed.ipynb"`` and return its glued values."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    nb = jupytext.read(ROOT / f"{chapter}.md")
    with environ(**env):
        folder = str((ROOT / chapter).parent)
        NotebookClient(
            nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": folder}}
        ).execute()
    nbformat.write(nb, out / "executed.ipynb")
    return glued_values(out / "executed.ipynb")


def notebook_chapters(root: Path = ROOT) -> list[str]:
    """The toc chapters that are notebooks (front matter with a kernelspec): they get launch buttons."""
    import re

    import yaml

    chapters = []
    for doc in toc_files(Path(root) / "_toc.yml"):
        m = re.match(r"^---\n(.*?)\n---\n", (Path(root) / f"{doc}.md").read_text(), flags=re.S)
        if m and "kernelspec" in (yaml.safe_load(m.group(1)) or {}):
            chapters.append(doc)
    return chapters


def toc_files(toc_path: Path) -> list[str]:
    """Every ``file:`` (and the ``root:``) named in a ``_toc.yml``."""
    import yaml

    toc = yaml.safe_load(Path(toc_path).read_text())
    files = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk({k: v for k, v in toc.items() if k != "root"})
    return files


@contextmanager
def environ(**values: str) -> Iterator[None]:
    """Set environment variables for the block (kernels started in it inherit them), then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
