"""The chapters run where readers run them: the notebook edition and Live Code, in a reader's environment.

The reader's environment (:mod:`editionutils`) has the package, its declared dependencies and a
kernel, and nothing of the book's build: no myst-nb, Sphinx or jupytext. Every notebook of the
edition runs in it top to bottom in the smoke profile, and so do, in page order, the code cells
that Live Code (Thebe) makes runnable on each page of the built site.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bookutils import ROOT
from editionutils import execute_notebook, run_in

pytestmark = pytest.mark.book

#: What sphinx-thebe makes runnable (the page's ``thebe_selector`` and ``thebe_selector_input``).
THEBE_SELECTOR = ".thebe,.cell"
THEBE_INPUT = "pre"


def test_the_reader_environment_has_no_book_tooling(reader_env):
    for module in ("myst_nb", "sphinx", "jupytext", "jupyter_book", "pytest"):
        proc = run_in(reader_env, f"import {module}")
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, module
    proc = run_in(reader_env, "import dgm, torch; print(dgm.__file__, torch.__version__)")
    assert proc.returncode == 0, proc.stderr
    installed, version = proc.stdout.split()
    assert str(reader_env.prefix) in installed and not installed.startswith(str(ROOT / "src"))
    assert version.endswith("+cpu")


def test_every_notebook_of_the_edition_runs_top_to_bottom(edition, reader_env, tmp_path):
    ran = []
    for path in edition.notebooks:
        nb = execute_notebook(
            reader_env,
            path,
            path.parent,
            DGM_PROFILE="smoke",
            DGM_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
            DGM_DATA_DIR=str(tmp_path / "data"),
        )
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), path
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, (path, errors[:1])
        ran.append(path.relative_to(edition.out).as_posix())
    assert "book/vae/vae_cifar10.ipynb" in ran and len(ran) == len(edition.notebooks)


def live_code_cells(page: Path) -> list[str]:
    """The code Thebe runs on a built page: the first ``pre`` of every ``.cell``, in page order."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.read_text(), "html.parser")
    script = next(
        (s.string for s in soup.find_all("script") if s.string and "thebe_selector" in s.string), ""
    )
    assert (
        f'thebe_selector = "{THEBE_SELECTOR}"' in script
        and f'thebe_selector_input = "{THEBE_INPUT}"' in script
    ), f"{page}: sphinx-thebe's selectors changed; update this test to what Live Code runs now"
    cells = []
    for cell in soup.select(THEBE_SELECTOR):
        pre = cell.select_one(THEBE_INPUT)
        if pre is not None:
            cells.append(pre.get_text())
    return cells


def test_live_code_runs_every_chapter_top_to_bottom(built_book, reader_env, tmp_path):
    import nbformat

    assert built_book.returncode == 0, built_book.log[-3000:]
    pages = 0
    for page in sorted(built_book.html.joinpath("book").rglob("*.html")):
        cells = live_code_cells(page)
        if not cells:
            continue
        pages += 1
        doc = page.relative_to(built_book.html).with_suffix("")
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        path = tmp_path / f"{doc.as_posix().replace('/', '__')}.ipynb"
        nbformat.write(nb, path)
        # Thebe's kernel starts in the page's folder of the repository (kernelOptions.path).
        execute_notebook(
            reader_env,
            path,
            ROOT / doc.parent,
            DGM_PROFILE="smoke",
            DGM_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
            DGM_DATA_DIR=str(tmp_path / "data"),
        )
    assert pages >= 6


def test_the_setup_cells_that_live_code_needs_are_not_removed():
    # A removed cell never runs in Live Code: the chapters' setup (imports, PROFILE) is hidden, not removed.
    for md in (ROOT / "book").rglob("*.md"):
        for body in re.findall(r"^```\{code-cell\}[^\n]*\n(.*?)^```", md.read_text(), flags=re.S | re.M):
            if re.search(r":tags: \[[^\]]*remove-(?:cell|input)", body):
                code = re.sub(r"^:tags:.*\n", "", body)
                assert not re.search(r"^(?:import |from |\w+ = )", code, flags=re.M), (md, code[:200])
