"""Colab copies of the chapters, and the Colab launch button that opens them.

Colab opens only ``.ipynb`` files on GitHub; the chapters are MyST Markdown notebooks. So
:func:`write_notebooks` converts every chapter of ``_toc.yml`` that is a notebook into
``OUT/<chapter>.ipynb`` (with jupytext, no outputs) and puts one setup cell first. That cell
installs ``dgm`` from the repository when ``dgm`` is not importable (in Colab) and does nothing
where it is. It lives only in these generated copies: the chapters never contain it, so neither
the HTML, nor the book build, nor Binder (which opens the ``.md``) ever sees it. The publish
workflow pushes ``OUT`` to the branch :data:`NOTEBOOKS_BRANCH`.

:func:`point_colab_at_notebooks` (hooked into Sphinx by :mod:`dgm.sphinxext`) points the Colab
button of every chapter at that branch, ``.../blob/notebooks/<chapter>.ipynb``, instead of the
``.md`` on main that the theme would link and Colab cannot open.

Command line (what the publish workflow runs)::

    python -m dgm.colab ROOT OUT [--ref REF]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

#: The branch that holds the generated notebooks; the Colab buttons link into it.
NOTEBOOKS_BRANCH = "notebooks"
#: The id (and tag) of the setup cell, so that it can be found, and hidden by any book build.
SETUP_CELL_ID = "colab-setup"

SETUP_CELL_TEMPLATE = '''\
# Colab setup. This cell exists only in the Colab copy of the chapter: it installs the book's
# package `dgm` from {repo_url} when `dgm` is not importable, and does nothing otherwise.
# The experiments run at full size on a GPU runtime (Runtime > Change runtime type).
import importlib
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("dgm") is None:
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "{requirement}"],
        check=True,
    )
    importlib.invalidate_caches()
'''


def read_config(root: Path) -> dict[str, Any]:
    """The book's ``_config.yml`` as a dict."""
    import yaml

    path = Path(root) / "_config.yml"
    if not path.is_file():
        raise FileNotFoundError(f"no book configuration at {path}")
    return yaml.safe_load(path.read_text()) or {}


def repository(config: dict[str, Any]) -> tuple[str, str, str]:
    """``(url, branch, path_to_book)`` from the ``repository`` section of ``_config.yml``."""
    repo = config.get("repository") or {}
    url = str(repo.get("url", "")).rstrip("/")
    if not url.startswith("https://github.com/") or len(url.split("/")) != 5:
        raise ValueError(f"repository.url in _config.yml must be https://github.com/ORG/REPO, not {url!r}")
    path_to_book = str(repo.get("path_to_book", "") or "").strip("/")
    return url, str(repo.get("branch", "main")), path_to_book


def toc_chapters(root: Path) -> list[str]:
    """Every document of ``_toc.yml`` (the root first), as paths without a suffix."""
    import yaml

    toc = yaml.safe_load((Path(root) / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "glob" in node:
                raise ValueError(f"_toc.yml: 'glob' entries are not supported here: {node['glob']!r}")
            if "file" in node:
                found.append(node["file"])
            for key, value in node.items():
                if key != "file":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in toc.items() if k != "root"})
    return [str(Path(f).with_suffix("")) if Path(f).suffix in (".md", ".ipynb") else str(f) for f in found]


def chapter_source(root: Path, docname: str) -> Path:
    """The source file of a ``_toc.yml`` entry: ``docname.md`` or ``docname.ipynb``."""
    for suffix in (".md", ".ipynb"):
        path = Path(root) / f"{docname}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"_toc.yml names {docname!r} but neither {docname}.md nor {docname}.ipynb exists")


def is_notebook(path: Path) -> bool:
    """True if the chapter is a notebook (has a kernelspec), so that the theme gives it launch buttons."""
    import jupytext

    return "kernelspec" in jupytext.read(path).metadata


def setup_cell_source(repo_url: str, ref: str) -> str:
    """The code of the setup cell: install ``dgm`` from ``repo_url`` at ``ref`` if it is missing."""
    requirement = f"dgm @ git+{repo_url}@{ref}"
    return SETUP_CELL_TEMPLATE.format(repo_url=repo_url, requirement=requirement)


def colab_notebook(path: Path, repo_url: str, ref: str):
    """The Colab copy of one chapter: its cells (no outputs), the setup cell first, stable cell ids."""
    import jupytext
    import nbformat

    nb = jupytext.read(path)
    nb.metadata.pop("jupytext", None)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:03d}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    setup = nbformat.v4.new_code_cell(
        setup_cell_source(repo_url, ref),
        id=SETUP_CELL_ID,
        metadata={"tags": ["remove-cell", SETUP_CELL_ID]},
    )
    nb.cells.insert(0, setup)
    nbformat.validate(nb)
    return nb


def write_notebooks(root: Path, out: Path, ref: str | None = None) -> list[Path]:
    """Write the Colab copy of every notebook chapter of ``_toc.yml`` under ``out``; return the paths.

    The layout under ``out`` is the repository's (``book/intro.md`` -> ``book/intro.ipynb``), so the
    branch made from ``out`` matches the links of :func:`point_colab_at_notebooks`.
    """
    import nbformat

    root, out = Path(root), Path(out)
    repo_url, branch, path_to_book = repository(read_config(root))
    ref = ref or branch
    written = []
    for docname in toc_chapters(root):
        source = chapter_source(root, docname)
        if not is_notebook(source):
            continue
        nb = colab_notebook(source, repo_url, ref)
        target = out / path_to_book / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, target)
        written.append(target)
    readme = out / "README.md"
    readme.write_text(
        f"# Colab notebooks of {repo_url}\n\n"
        f"Generated from the chapters at `{ref}` by `python -m dgm.colab`; do not edit here.\n"
        "Each chapter's Colab button opens its notebook from this branch.\n"
    )
    return written


def point_colab_at_notebooks(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """``html-page-context`` hook: relink the page's Colab button to its generated ``.ipynb``."""
    launch = (app.config.html_theme_options or {}).get("launch_buttons") or {}
    colab_url = str(launch.get("colab_url", "")).rstrip("/")
    if not colab_url:
        return
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            url = button.get("url", "")
            if url.startswith(f"{colab_url}/github/"):
                org, repo = url[len(colab_url) + len("/github/"):].split("/")[:2]
                prefix = str(app.config.html_theme_options.get("path_to_docs", "")).strip("/")
                path = f"{prefix}/{pagename}.ipynb" if prefix else f"{pagename}.ipynb"
                branch = app.config.colab_notebooks_branch
                button["url"] = f"{colab_url}/github/{org}/{repo}/blob/{branch}/{path}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dgm.colab", description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="the book's root (holds _config.yml and _toc.yml)")
    parser.add_argument("out", type=Path, help="folder to write the notebooks into")
    parser.add_argument("--ref", default=None, help="git ref the setup cell installs dgm from (default: repository.branch)")
    args = parser.parse_args(argv)
    for path in write_notebooks(args.root, args.out, args.ref):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
