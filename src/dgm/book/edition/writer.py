"""The edition on disk: every notebook chapter of ``_toc.yml``, a README and the Binder environment.

:func:`write_edition` writes the notebook of each notebook chapter under the repository's layout
(the ``notebooks`` branch), each file whole, plus ``binder/``: the readers' environment of this
checkout with a ``postBuild`` that installs ``dgm`` at the commit the edition quotes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from dgm.book.colab import chapter_source, is_notebook, read_config, repository, toc_chapters
from dgm.book.edition.errors import EditionError
from dgm.book.edition.homework import homework_chapters
from dgm.book.edition.notebook import edition_notebook
from dgm.book.edition.site import BuildInfo, site_index


def write_edition(
    root: Path, out: Path, build_dir: Path | None = None, ref: str | None = None, homework: bool = False
) -> list[Path]:
    """Write the notebook edition of every notebook chapter of ``_toc.yml`` under ``out``; return the paths.

    With ``homework``, the homework edition of the chapters that hold homework
    (:mod:`dgm.book.edition.homework`), for the branch :data:`dgm.book.colab.HOMEWORK_BRANCH`.

    ``out`` gets the repository's layout (``book/vae/vae_2d.ipynb``), a README, and ``binder/``: the
    readers' environment of ``binder/`` in this checkout, whose ``postBuild`` installs ``dgm`` at ``ref``.
    Files are written whole (a temporary name, then renamed), so a failed run leaves no half notebook.
    """
    import nbformat

    root, out = Path(root), Path(out)
    repo_url, branch, path_to_book = repository(read_config(root))
    build = BuildInfo(Path(build_dir) if build_dir else root / "_build", ref or branch)
    index = site_index(build.html)
    chapters = toc_chapters(root)
    chapters = homework_chapters(chapters) if homework else chapters
    notebooks = [
        (d, edition_notebook(root, d, build, index, homework=homework))
        for d in chapters
        if is_notebook(chapter_source(root, d))
    ]
    written = []
    for docname, nb in notebooks:
        target = out / path_to_book / f"{docname}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        nbformat.write(nb, tmp)
        os.replace(tmp, target)
        written.append(target)
    _write_binder(root, out, repo_url, build.ref)
    what = "homework edition" if homework else "notebook edition"
    buttons = (
        (
            'Each chapter\'s "Homework (Colab)" button opens its homework notebook from this branch; '
            "a filled-in\nnotebook is graded with `python -m dgm.homework grade NOTEBOOK.ipynb`. "
        )
        if homework
        else ("Each chapter's Colab and Binder buttons open its notebook from this branch; ")
    )
    (out / "README.md").write_text(
        f"# The {what} of {repo_url}\n\n"
        f"Generated from the chapters at `{build.ref}` by `python -m dgm.book.edition`; do not edit here.\n"
        f"{buttons}`binder/` is the\n"
        "readers' environment (the CPU build of torch) and installs the book's package at that commit.\n"
    )
    return written


def _write_binder(root: Path, out: Path, repo_url: str, ref: str) -> None:
    """``out/binder``: the checkout's ``binder/`` files, with a ``postBuild`` that installs ``dgm`` at
    ``ref``."""
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
