"""dgm.colab: the Colab copies of the chapters, their setup cell, and the relinked Colab button."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from types import SimpleNamespace

import nbformat
import pytest
import yaml

from bookutils import CHAPTER_HEADER, ROOT, toc_files
from dgm import colab
from dgm.sphinxext import drop_duplicate_scripts

REPO_URL = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"].rstrip("/")
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
# A cell's options come first: a `---` YAML block or `:key: value` lines (they become metadata).
CELL_OPTIONS = re.compile(r"\A(?:---\n.*?\n---\n|(?::[\w-]+:[^\n]*\n)+)", re.S)


def _front_matter(text: str) -> dict:
    m = re.match(r"^---\n(.*?)\n---\n", text, flags=re.S)
    return yaml.safe_load(m.group(1)) if m else {}


def _notebook_chapters() -> list[str]:
    return [d for d in toc_files(ROOT / "_toc.yml") if "kernelspec" in _front_matter((ROOT / f"{d}.md").read_text())]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("colab")
    return out, colab.write_notebooks(ROOT, out, ref="abc123")


def test_every_notebook_chapter_gets_a_colab_notebook(generated):
    out, written = generated
    chapters = _notebook_chapters()
    assert "book/intro" in chapters
    assert sorted(p.relative_to(out).as_posix() for p in written) == sorted(f"{d}.ipynb" for d in chapters)
    assert not (out / "book" / "bibliography.ipynb").exists()  # not a notebook: no launch buttons


def test_colab_notebook_holds_the_chapters_code_and_no_outputs(generated):
    out, _ = generated
    for doc in _notebook_chapters():
        nb = nbformat.read(out / f"{doc}.ipynb", as_version=4)
        nbformat.validate(nb)
        code = [c.source for c in nb.cells if c.cell_type == "code"]
        # The chapter's code cells, read here with a regular expression (not jupytext), follow the setup cell.
        bodies = CODE_CELL.findall((ROOT / f"{doc}.md").read_text())
        expected = [CELL_OPTIONS.sub("", body, count=1).strip("\n") for body in bodies]
        assert [c.strip("\n") for c in code[1:]] == expected
        assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert "jupytext" not in nb.metadata
        ids = [c["id"] for c in nb.cells]
        assert len(set(ids)) == len(ids)


def test_setup_cell_comes_first_and_installs_this_repository_at_the_ref(generated):
    out, _ = generated
    nb = json.loads((out / "book" / "intro.ipynb").read_text())
    first = nb["cells"][0]
    assert first["id"] == colab.SETUP_CELL_ID
    assert "remove-cell" in first["metadata"]["tags"]
    source = "".join(first["source"])
    assert f"dgm @ git+{REPO_URL}@abc123" in source


def test_generation_is_deterministic(tmp_path, generated):
    out, written = generated
    again = colab.write_notebooks(ROOT, tmp_path, ref="abc123")
    for a, b in zip(written, again):
        assert a.read_bytes() == b.read_bytes()


def _run_setup_cell(monkeypatch, importable: bool) -> list:
    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real_find_spec(name, *a) if importable else None) if name == "dgm" else real_find_spec(name, *a))
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


def test_colab_button_of_the_built_intro_opens_the_generated_notebook(built_book, generated):
    out, _ = generated
    assert built_book.returncode == 0, built_book.log[-3000:]
    html = (built_book.html / "book" / "intro.html").read_text()
    links = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', html)
    org_repo = "/".join(REPO_URL.split("/")[-2:])
    assert links == [f"https://colab.research.google.com/github/{org_repo}/blob/{colab.NOTEBOOKS_BRANCH}/book/intro.ipynb"]
    assert (out / "book" / "intro.ipynb").is_file()
    assert html.count("const THEBE_JS_URL") == 1  # dgm.sphinxext dropped the duplicated script


def test_point_colab_at_notebooks_rewrites_only_the_colab_button():
    app = SimpleNamespace(config=SimpleNamespace(
        html_theme_options={"launch_buttons": {"colab_url": "https://colab.research.google.com/"}, "path_to_docs": ""},
        colab_notebooks_branch="nb"))
    binder = {"type": "link", "text": "Binder", "url": "https://mybinder.org/v2/gh/o/r/main?urlpath=lab/tree/book/x.md"}
    context = {"header_buttons": [{"type": "group", "buttons": [
        binder.copy(),
        {"type": "link", "text": "Colab", "url": "https://colab.research.google.com/github/o/r/blob/main/book/x.md"},
    ]}]}
    colab.point_colab_at_notebooks(app, "book/x", "page.html", context, None)
    buttons = context["header_buttons"][0]["buttons"]
    assert buttons[0] == binder
    assert buttons[1]["url"] == "https://colab.research.google.com/github/o/r/blob/nb/book/x.ipynb"


def test_drop_duplicate_scripts_keeps_one_of_each():
    from sphinx.builders.html._assets import _JavaScript

    body = {"body": "const X = 1"}
    scripts = [_JavaScript("a.js"), _JavaScript(None, **body), _JavaScript("", **body), _JavaScript("a.js"), _JavaScript("b.js")]
    context = {"script_files": scripts}
    drop_duplicate_scripts(None, "p", "page.html", context, None)
    assert [(s.filename, s.attributes) for s in context["script_files"]] == [("a.js", {}), (None, body), ("b.js", {})]


def test_a_missing_chapter_is_a_clear_error(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/o/r\n  branch: main\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/gone\n")
    (tmp_path / "book" / "intro.md").write_text(CHAPTER_HEADER + "# Intro\n")
    with pytest.raises(FileNotFoundError, match="book/gone"):
        colab.write_notebooks(tmp_path, tmp_path / "out")


def test_a_repository_that_is_not_on_github_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="github.com/ORG/REPO"):
        colab.repository({"repository": {"url": "https://gitlab.com/o/r"}})


def test_command_line_writes_the_notebooks(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dgm.colab", str(ROOT), str(tmp_path), "--ref", "deadbeef"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    nb = json.loads((tmp_path / "book" / "intro.ipynb").read_text())
    assert "@deadbeef" in "".join(nb["cells"][0]["source"])
