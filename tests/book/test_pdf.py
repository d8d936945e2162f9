"""The PDF edition: the whole book as one PDF, built from the smoke build with the LaTeX builder.

Checked from the PDF's own text (``pdftotext``) and images (``pdfimages``): every chapter's title,
every numbered theorem, lemma, definition and exercise with the number it has on the site, no
unresolved reference, every math macro defined (LaTeX's log), and every figure of the executed
chapters in it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from dgm.book.edition.site import site_index

from bookutils import ROOT, toc_files

pytestmark = pytest.mark.book


@pytest.fixture(scope="module")
def pdf(built_book):
    """The PDF made with ``make pdf``'s command, from the session's smoke build (its execution cache)."""
    assert built_book.returncode == 0, built_book.log[-3000:]
    for tool in ("xelatex", "latexmk", "pdftotext", "pdfimages"):
        assert shutil.which(tool), f"{tool} is missing: make tex installs Debian's TeX Live and poppler"
    env = {"DGM_PROFILE": "smoke", "DGM_CHECKPOINT_DIR": str(built_book.out / "checkpoints")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dgm.book.build",
            "build",
            str(ROOT),
            "--output",
            str(built_book.out),
            "--builder",
            "pdflatex",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=1800,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "execution cache reused" in proc.stdout, "the PDF build executed the chapters again"
    path = built_book.out / "_build" / "latex" / "book.pdf"
    assert path.is_file()
    text = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return path, text


def _flat(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").split()).casefold()


def test_every_chapter_title_is_in_the_pdf(pdf, built_book):
    _, text = pdf
    index = site_index(built_book.html)
    titles = [index[f"doc:{d}"].text for d in toc_files(ROOT / "_toc.yml") if d != "book/intro"]
    assert len(titles) >= 9
    flat = _flat(text)
    missing = [t for t in titles if _flat(re.sub(r"\$[^$]*\$", "", t)) not in flat]
    assert not missing, missing


def test_every_numbered_statement_has_its_site_number(pdf, built_book):
    _, text = pdf
    numbered = {
        t.text
        for t in site_index(built_book.html).values()
        if re.fullmatch(r"(Theorem|Lemma|Proposition|Definition|Remark|Assumption|Exercise) \d+", t.text)
    }
    assert len(numbered) >= 40 and {"Theorem 1", "Lemma 1", "Exercise 1"} <= numbered
    flat = " ".join(text.split())
    missing = sorted(n for n in numbered if not re.search(rf"\b{n}\b", flat))
    assert not missing, missing


def test_no_reference_is_unresolved_and_every_macro_is_defined(pdf):
    path, text = pdf
    assert "??" not in text
    log = path.with_suffix(".log").read_text(errors="replace")  # the last LaTeX run's
    assert "Undefined control sequence" not in log and "There were undefined references" not in log


def test_every_figure_of_the_chapters_is_in_the_pdf(pdf, built_book):
    path, _ = pdf
    listed = subprocess.run(["pdfimages", "-list", str(path)], capture_output=True, text=True, check=True)
    n_images = len(listed.stdout.splitlines()) - 2  # two header lines
    n_figures = 0
    for nb in built_book.executed.rglob("*.ipynb"):
        for cell in json.loads(nb.read_text()).get("cells", []):
            n_figures += sum("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
    assert n_figures >= 20 and n_images >= n_figures, (n_images, n_figures)


def test_the_pdf_has_the_sites_parts_and_one_introduction(pdf):
    _, text = pdf
    lines = [" ".join(line.replace(".", " ").split()) for line in text.splitlines()]
    start = lines.index("CONTENTS")  # the table of contents, up to its last entry
    contents = lines[start : next(i for i, line in enumerate(lines) if line.startswith("Bibliography"))]
    headings = [line.rsplit(" ", 1)[0] for line in contents if line and line[-1].isdigit()]
    assert not any(line == "FOUNDATIONS" for line in lines[:start])  # Sphinx named the contents so
    # the intro's sections are sections of one chapter, not chapters of the first part
    assert headings[:2] == ["1 Introduction", "1 1 What the book teaches, in order"], headings[:3]
    parts = [headings.index(p) for p in ("I Foundations", "II Variational autoencoders", "III Back matter")]
    assert parts == sorted(parts) and headings[parts[0] + 1].startswith("2 Preliminaries"), headings
