"""The notebook edition in JupyterLab, in a real browser: the equations typeset, the blocks render.

JupyterLab (of this environment) serves the edition on 127.0.0.1; Debian's Chromium, driven by
Playwright as in ``tests/test_site.py``, opens every notebook and reads what JupyterLab rendered:
MathJax (JupyterLab's own copy) must have typeset every equation without an error, and the titled
blocks (theorems, lemmas, exercises) and the ``<details>`` solutions must be there as HTML. A
screenshot of every notebook goes to ``test-output/screenshots/``; ``DGM_UPDATE_README_SCREENSHOT=1``
refreshes the README's ``docs/notebook-screenshot.png``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from bookutils import ROOT
from siteutils import launch_chromium

pytestmark = pytest.mark.book

SCREENSHOTS = ROOT / "test-output" / "screenshots"
README_NOTEBOOK = "book/vae/vae_2d.ipynb"
README_SCREENSHOT = ROOT / "docs" / "notebook-screenshot.png"
TOKEN = "dgm-edition-test"
#: JupyterLab renders only the cells in view unless told otherwise: render them all; and no news toast.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}

RENDERED_JS = r"""() => {
  const md = [...document.querySelectorAll(".jp-MarkdownCell .jp-RenderedMarkdown")];
  const heads = [...document.querySelectorAll(".jp-RenderedMarkdown blockquote strong")]
    .map((s) => s.innerText.trim());
  const text = md.map((n) => {
    const c = n.cloneNode(true);
    c.querySelectorAll("code, pre, mjx-container, a").forEach((e) => e.remove());
    return c.innerText;
  }).join("\n");
  return {
    markdown_cells: md.length,
    equations: document.querySelectorAll(".jp-RenderedMarkdown mjx-container").length,
    // mjx-merror: a TeX error; mathcolor red: an undefined macro, shown in red by MathJax's noundefined.
    merrors: [...document.querySelectorAll(".jp-RenderedMarkdown mjx-container")]
      .filter((e) => e.querySelector("mjx-merror") || e.innerHTML.includes('mathcolor="red"'))
      .map((e) => (e.querySelector("mjx-assistive-mml") || e).textContent.slice(0, 200)).slice(0, 5),
    dollars_left: (text.match(/\$[^$\n]{1,60}\$?/g) || []).slice(0, 5),
    details: document.querySelectorAll(".jp-RenderedMarkdown details > summary").length,
    heads: heads,
    proofs: (text.match(/∎/g) || []).length,
  };
}"""


@dataclass
class NotebookView:
    path: str
    report: dict
    blocked: list[str]
    console_errors: list[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"JupyterLab did not answer at {url} within {timeout} s")


@pytest.fixture(scope="module")
def views(edition, tmp_path_factory) -> dict[str, NotebookView]:
    """Every notebook of the edition, opened once in JupyterLab in Chromium."""
    from playwright.sync_api import sync_playwright

    tmp = tmp_path_factory.mktemp("lab")
    served = tmp / "edition"  # a copy: JupyterLab writes .ipynb_checkpoints beside what it opens
    shutil.copytree(edition.out, served)
    settings = tmp / "settings"
    for name, value in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(value))
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "ws"),
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
    }
    log = (tmp / "lab.log").open("w")
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.root_dir={served}",
            f"--IdentityProvider.token={TOKEN}",
            "--ServerApp.port_retries=0",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=",
            "--ServerApp.allow_root=True",
            "--LabApp.extension_manager=readonly",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp,
    )
    base = f"http://127.0.0.1:{port}/"
    out: dict[str, NotebookView] = {}
    try:
        _wait_for(f"{base}api/status?token={TOKEN}", lab)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            for path in edition.notebooks:
                rel = path.relative_to(edition.out).as_posix()
                out[rel] = _view(context, base, rel, path)
            browser.close()
    finally:
        lab.terminate()
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            lab.kill()
        log.close()
    return out


def _view(context, base: str, rel: str, path: Path) -> NotebookView:
    page = context.new_page()
    blocked: list[str] = []
    errors: list[str] = []

    def route(r):
        if r.request.url.startswith(base):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda err: errors.append(str(err)))
    n_markdown = sum(c.cell_type == "markdown" for c in nbformat.read(path, as_version=4).cells)
    # A workspace of its own (reset): JupyterLab would otherwise reopen the notebooks of earlier visits.
    workspace = re.sub(r"\W", "-", rel)
    page.goto(f"{base}lab/workspaces/{workspace}/tree/{rel}?reset&token={TOKEN}", wait_until="load")
    name = "jupyterlab__" + rel.replace("/", "__").removesuffix(".ipynb") + ".png"
    try:
        page.wait_for_selector(".jp-Notebook .jp-MarkdownCell", state="attached", timeout=120_000)
    except Exception:
        page.screenshot(path=str(SCREENSHOTS / name))  # what JupyterLab showed instead
        raise
    # Every Markdown cell rendered, and MathJax done: the number of typeset equations stops changing.
    deadline, last, stable = time.monotonic() + 120, -1, 0
    report = {}
    while time.monotonic() < deadline:
        report = page.evaluate(RENDERED_JS)
        if report["markdown_cells"] >= n_markdown and report["equations"] == last:
            stable += 1
            if stable >= 3:
                break
        else:
            stable = 0
        last = report["equations"]
        time.sleep(0.5)
    page.screenshot(path=str(SCREENSHOTS / name))
    if rel == README_NOTEBOOK and os.environ.get("DGM_UPDATE_README_SCREENSHOT"):
        page.locator(".jp-RenderedMarkdown blockquote strong a").first.scroll_into_view_if_needed()
        page.mouse.wheel(0, -250)
        time.sleep(1)
        page.screenshot(path=str(README_SCREENSHOT))
    page.close()
    return NotebookView(rel, report, blocked, errors)


def _expected(path: Path) -> dict:
    md = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    return {
        "heads": re.findall(
            r"^> \*\*\[((?:Theorem|Lemma|Proposition|Definition|Remark|Assumption|Exercise|"
            r"Corollary|Example) \d+)\]",
            md,
            flags=re.M,
        ),
        "details": md.count("<details>"),
        "proofs": md.count("∎"),
        "math": md.count("$"),
    }


def test_every_notebook_renders_every_markdown_cell(views, edition):
    assert set(views) == {p.relative_to(edition.out).as_posix() for p in edition.notebooks}
    for rel, view in views.items():
        n_markdown = sum(
            c.cell_type == "markdown" for c in nbformat.read(edition.out / rel, as_version=4).cells
        )
        assert view.report["markdown_cells"] == n_markdown, (rel, view.report["markdown_cells"], n_markdown)
        assert not view.console_errors, (rel, view.console_errors)
        assert not view.blocked, (rel, view.blocked[:5])


def test_every_equation_typesets_without_an_error(views, edition):
    for rel, view in views.items():
        expected = _expected(edition.out / rel)
        if expected["math"]:
            assert view.report["equations"] > 0, rel
        assert view.report["merrors"] == [], (rel, view.report["merrors"])
        assert view.report["dollars_left"] == [], (rel, view.report["dollars_left"])
    assert sum(v.report["equations"] for v in views.values()) > 500


def test_titled_blocks_and_solutions_render(views, edition):
    for rel, view in views.items():
        expected = _expected(edition.out / rel)
        rendered = [h for h in view.report["heads"] if re.fullmatch(r"[A-Z][a-z]+ \d+", h)]
        assert rendered == expected["heads"], (rel, rendered, expected["heads"])
        assert view.report["details"] == expected["details"], rel
        assert view.report["proofs"] == expected["proofs"], rel
    assert sum(len(v.report["heads"]) for v in views.values()) >= 30
    assert sum(v.report["details"] for v in views.values()) >= 10
