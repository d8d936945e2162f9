"""dgm.book.colab: the edition's setup cell, and the Colab and Binder buttons that open the edition."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml

from dgm.book import colab
from dgm.book.sphinxext import drop_duplicate_scripts

from bookutils import CHAPTER_HEADER, ROOT

REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def test_setup_cell_is_the_first_code_cell_and_installs_this_repository_at_the_ref(edition):
    for path in edition.notebooks:
        nb = json.loads(path.read_text())
        first = next(c for c in nb["cells"] if c["cell_type"] == "code")
        assert first["id"] == colab.SETUP_CELL_ID, path
        assert f"dgm @ git+{REPO_URL}@0123456789abcdef" in "".join(first["source"])


def _run_setup_cell(monkeypatch, importable: bool) -> list:
    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: (
            (real_find_spec(name, *a) if importable else None) if name == "dgm" else real_find_spec(name, *a)
        ),
    )
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    exec(compile(colab.setup_cell_source(REPO_URL, "main"), "<setup cell>", "exec"), {})
    return calls


def test_setup_cell_installs_dgm_only_when_it_is_missing(monkeypatch):
    assert _run_setup_cell(monkeypatch, importable=True) == []  # a clone, Binder, the book build
    calls = _run_setup_cell(monkeypatch, importable=False)  # Colab
    assert len(calls) == 1
    (cmd,), kwargs = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[-1] == f"dgm @ git+{REPO_URL}@main"
    assert kwargs == {"check": True}


def test_setup_cell_does_nothing_where_dgm_is_installed(tmp_path):
    # For real, in a fresh interpreter of this environment: no pip, exit 0, nothing printed.
    script = tmp_path / "cell.py"
    script.write_text(colab.setup_cell_source("https://github.invalid/none/none", "main"))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == "", proc


def test_setup_cell_is_in_neither_the_chapters_nor_the_site(built_book):
    assert built_book.returncode == 0, built_book.log[-3000:]
    marker = "git+" + REPO_URL
    for md in (ROOT / "book").rglob("*.md"):
        assert marker not in md.read_text(), md
    built = list(built_book.html.rglob("*.html")) + list(built_book.executed.rglob("*.ipynb"))
    assert built
    for path in built:
        text = path.read_text(errors="replace")
        assert marker not in text and colab.SETUP_CELL_ID not in text, path


def test_launch_buttons_of_the_built_intro_open_the_edition(built_book, edition):
    assert built_book.returncode == 0, built_book.log[-3000:]
    html = (built_book.html / "book" / "intro.html").read_text()
    org_repo = "/".join(REPO_URL.split("/")[-2:])
    colab_links = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', html)
    assert colab_links == [
        f"https://colab.research.google.com/github/{org_repo}/blob/{colab.NOTEBOOKS_BRANCH}/book/intro.ipynb"
    ]
    binder_links = re.findall(r'href="(https://mybinder\.org/v2/gh/[^"]+)"', html)
    assert [link.replace("&amp;", "&") for link in binder_links] == [
        f"https://mybinder.org/v2/gh/{org_repo}/{colab.NOTEBOOKS_BRANCH}?urlpath=lab/tree/book/intro.ipynb"
    ]
    assert (edition.out / "book" / "intro.ipynb").is_file()
    assert html.count("const THEBE_JS_URL") == 1  # dgm.book.sphinxext dropped the duplicated script


def test_launch_buttons_are_pointed_at_the_edition_and_nothing_else():
    app = SimpleNamespace(
        config=SimpleNamespace(
            html_theme_options={
                "launch_buttons": {
                    "colab_url": "https://colab.research.google.com/",
                    "binderhub_url": "https://mybinder.org",
                },
                "path_to_docs": "",
            },
            colab_notebooks_branch="nb",
        )
    )
    binder = {
        "type": "link",
        "text": "Binder",
        "url": "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/book/x.md",
    }
    context = {
        "header_buttons": [
            {
                "type": "group",
                "buttons": [
                    binder.copy(),
                    {
                        "type": "link",
                        "text": "Colab",
                        "url": "https://colab.research.google.com/github/o/r/blob/main/book/x.md",
                    },
                ],
            }
        ]
    }
    other = {"type": "link", "text": "Repository", "url": "https://github.com/o/r"}
    context["header_buttons"][0]["buttons"].append(other.copy())
    colab.point_launch_buttons_at_edition(app, "book/x", "page.html", context, None)
    buttons = context["header_buttons"][0]["buttons"]
    assert buttons[0]["url"] == "https://mybinder.org/v2/gh/o/r/nb?urlpath=lab/tree/book/x.ipynb"
    assert buttons[1]["url"] == "https://colab.research.google.com/github/o/r/blob/nb/book/x.ipynb"
    assert buttons[2] == other


def test_drop_duplicate_scripts_keeps_one_of_each():
    from sphinx.builders.html._assets import _JavaScript

    body = {"body": "const X = 1"}
    scripts = [
        _JavaScript("a.js"),
        _JavaScript(None, **body),
        _JavaScript("", **body),
        _JavaScript("a.js"),
        _JavaScript("b.js"),
    ]
    context = {"script_files": scripts}
    drop_duplicate_scripts(None, "p", "page.html", context, None)
    assert [(s.filename, s.attributes) for s in context["script_files"]] == [
        ("a.js", {}),
        (None, body),
        ("b.js", {}),
    ]


def test_a_missing_chapter_is_a_clear_error(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/gone\n")
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text(CHAPTER_HEADER + "# Intro\n")
    assert colab.toc_chapters(tmp_path) == ["book/intro", "book/gone"]
    with pytest.raises(FileNotFoundError, match="book/gone"):
        colab.chapter_source(tmp_path, "book/gone")


def test_a_repository_that_is_not_on_github_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="github.com/ORG/REPO"):
        colab.repository({"repository": {"url": "https://gitlab.com/o/r"}})


def test_build_stamp_names_the_commit_the_date_and_the_profile():
    from dgm.book.sphinxext import build_stamp

    env = {"DGM_BUILD_COMMIT": "0123456789abcdef0123", "DGM_PROFILE": "cpu"}
    assert build_stamp(str(ROOT), env, today="2026-12-01") == (
        '<p class="dgm-build-stamp">Built from commit <code>0123456789ab</code> on 2026-12-01 with the '
        "<code>cpu</code> execution profile.</p>"
    )
    assert "2001-09-09" in build_stamp(str(ROOT), {"DGM_PROFILE": "smoke", "SOURCE_DATE_EPOCH": "1000000000"})


def test_every_built_page_says_which_commit_built_it(built_book):
    assert built_book.returncode == 0, built_book.log[-3000:]
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    pages = [
        p
        for p in built_book.html.rglob("*.html")
        if "_static" not in p.parts
        and p.name != "search.html"
        and "reports" not in p.parts
        and "genindex" not in p.name
    ]
    assert len(pages) >= 8
    for page in pages:
        html = page.read_text()
        if 'http-equiv="refresh"' in html.lower():
            continue
        assert f"Built from commit <code>{head[:12]}</code>" in html, page
        assert "<code>smoke</code> execution profile" in html, page
