"""Launching a chapter: the setup cell of the notebook edition, and the launch buttons that open it.

Colab opens only ``.ipynb`` files, and neither Colab nor JupyterLab reads MyST; the notebook
edition (:mod:`dgm.book.edition`) is the chapters as plain notebooks, pushed by the publish workflow to
the branch :data:`NOTEBOOKS_BRANCH`. Its first code cell (:func:`setup_cell_source`) installs
``dgm`` from the repository at the published commit when ``dgm`` is not importable (in Colab) and
does nothing where it is (Binder, a clone, the book build). The chapters never contain it.

:func:`point_launch_buttons_at_edition` (hooked into Sphinx by :mod:`dgm.book.sphinxext`) points the
Colab and Binder buttons of every chapter at that branch, ``.../notebooks/<chapter>.ipynb``, instead
of the ``.md`` on main that the theme would link, and gives each chapter with homework a button that opens
its homework edition from :data:`HOMEWORK_BRANCH`. Live Code (Thebe) keeps running the page's own
cells on a Binder kernel of main, whose environment is ``binder/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: The branch that holds the generated notebooks; the Colab buttons link into it.
NOTEBOOKS_BRANCH = "notebooks"
#: The branch that holds the homework edition; the "Homework (Colab)" buttons link into it.
HOMEWORK_BRANCH = "homework"
#: The id (and tag) of the setup cell, so that it can be found, and hidden by any book build.
SETUP_CELL_ID = "colab-setup"

SETUP_CELL_TEMPLATE = """\
# Setup: installs the book's package `dgm` from {repo_url} (at the commit of this
# notebook) when `dgm` is not importable, as in Colab; where it is installed (Binder, a clone of the
# book) this cell does nothing. The experiments run at full size on a GPU runtime.
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
"""


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


def homework_pages() -> set[str]:
    """The chapters that hold homework (a task or a theory problem of :mod:`dgm.homework.tasks`)."""
    from dgm.homework.tasks import PROBLEMS, TASKS

    return {t.chapter for t in TASKS.values()} | {p.chapter for p in PROBLEMS.values()}


def point_launch_buttons_at_edition(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """``html-page-context`` hook: the page's Colab and Binder buttons open its notebook of the edition,
    and a chapter with homework gets a second Colab button, "Homework (Colab)", that opens its homework."""
    options = app.config.html_theme_options or {}
    launch = options.get("launch_buttons") or {}
    prefix = str(options.get("path_to_docs", "")).strip("/")
    path = f"{prefix}/{pagename}.ipynb" if prefix else f"{pagename}.ipynb"
    branch = app.config.colab_notebooks_branch
    colab_url = str(launch.get("colab_url", "")).rstrip("/")
    binder_url = str(launch.get("binderhub_url", "")).rstrip("/")
    homework = pagename in homework_pages()
    for group in context.get("header_buttons", []):
        buttons = group.get("buttons", []) if isinstance(group, dict) else []
        for button in list(buttons):
            url = button.get("url", "")
            if colab_url and url.startswith(f"{colab_url}/github/"):
                org, repo = url[len(colab_url) + len("/github/") :].split("/")[:2]
                button["url"] = f"{colab_url}/github/{org}/{repo}/blob/{branch}/{path}"
                if homework:
                    buttons.insert(
                        buttons.index(button) + 1,
                        {
                            **button,
                            "text": "Homework (Colab)",
                            "tooltip": "Open the homework in Colab",
                            "url": f"{colab_url}/github/{org}/{repo}/blob/{HOMEWORK_BRANCH}/{path}",
                        },
                    )
            elif binder_url and url.startswith(f"{binder_url}/v2/gh/"):
                org, repo = url[len(binder_url) + len("/v2/gh/") :].split("?")[0].split("/")[:2]
                button["url"] = f"{binder_url}/v2/gh/{org}/{repo}/{branch}?urlpath=lab/tree/{path}"
