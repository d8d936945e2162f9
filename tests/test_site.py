"""The built site in a real browser: every page of the smoke build, opened in headless Chromium.

One pass over the site (fixture ``visits``) records what each page did; the tests below judge
it: console errors, requests leaving the machine, images, equations, launch buttons, internal
links, and the search page. A screenshot of every page goes to ``test-output/screenshots/``.
Chromium or Playwright missing is a failure, never a skip: ``make test`` installs both.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from dgm.book.colab import HOMEWORK_BRANCH, NOTEBOOKS_BRANCH

from bookutils import ROOT, notebook_chapters, toc_files
from siteutils import (
    Router,
    broken_internal_link,
    install_mathjax,
    launch_chromium,
    serve,
    site_pages,
)

pytestmark = pytest.mark.book

SCREENSHOTS = ROOT / "test-output" / "screenshots"
#: The chapter whose screenshot the README shows (docs/screenshot.png).
README_PAGE = "book/vae/vae_2d.html"
README_SCREENSHOT = ROOT / "docs" / "screenshot.png"
SEARCH_PHRASE = "posterior collapse"

IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach((img) => { img.loading = "eager"; });
  const settle = (img) => img.complete ? null : new Promise((done) => {
    img.addEventListener("load", done); img.addEventListener("error", done);
  });
  await Promise.race([Promise.all(imgs.map(settle)), new Promise((r) => setTimeout(r, 10000))]);
  return imgs.map((img) => ({src: img.currentSrc || img.src, width: img.naturalWidth}));
}"""

MATH_JS = """async () => {
  const nodes = [...document.querySelectorAll(".math")];
  const report = {equations: nodes.length, ran: false, version: null, items: 0, errors: [], untypeset: []};
  if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return report;
  await MathJax.startup.promise;
  report.ran = true;
  report.version = MathJax.version;
  const items = MathJax.startup.document.getMathItemsWithin(document.body);
  report.items = items.length;
  for (const item of items) {
    const mml = MathJax.startup.toMML(item.root);
    // merror: a TeX error; mathcolor red: an undefined macro shown by the noundefined package.
    if (mml.includes("<merror") || mml.includes('mathcolor="red"'))
      report.errors.push(item.math + "  ->  " + mml.slice(0, 400));
  }
  report.merror_elements = document.querySelectorAll("mjx-merror").length;
  report.untypeset = nodes.filter((n) => !n.querySelector("mjx-container"))
    .map((n) => n.textContent.slice(0, 120));
  return report;
}"""

PAGE_JS = """() => ({
  links: [...document.querySelectorAll("a[href]")].map((a) => a.href),
  launch: [...document.querySelectorAll(".dropdown-launch-buttons a")]
    .map((a) => ({text: a.innerText.trim(), href: a.href})),
  thebe_button: !!document.querySelector(".dropdown-launch-buttons .btn-launch-thebe"),
  thebe_ready: typeof initThebeSBT === "function" && typeof THEBE_JS_URL === "string",
  thebe_config: (document.querySelector('script[type="text/x-thebe-config"]') || {}).textContent || null,
  downloads: [...document.querySelectorAll(".dropdown-download-buttons a")].map((a) => a.href),
  repository: (document.querySelector(".btn-source-repository-button") || {}).href || null,
})"""


@dataclass
class PageReport:
    """What one page did in the browser."""

    page: str
    url: str
    console_errors: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    route_problems: list[str] = field(default_factory=list)
    mirrored: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    math: dict = field(default_factory=dict)
    dom: dict = field(default_factory=dict)
    redirect: str | None = None
    seconds: float = 0.0


@dataclass
class Visits:
    base: str
    html: Path
    pages: dict[str, PageReport]
    search_status: str
    search_hits: list[str]
    seconds: float


def _visit(context, base: str, rel: str, mathjax: Path, redirect: str | None) -> PageReport:
    start = time.perf_counter()
    page = context.new_page()
    router = Router(base, mathjax)
    page.route("**/*", router)
    report = PageReport(rel, base + rel, redirect=redirect)
    page.on(
        "console",
        lambda m: (
            report.console_errors.append(f"{m.text} [{m.location.get('url')}:{m.location.get('lineNumber')}]")
            if m.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda err: report.console_errors.append(f"uncaught: {err}"))
    page.goto(report.url, wait_until="load")
    if redirect:  # a meta-refresh page (index.html): follow it, then check where it lands
        page.wait_for_url(base + redirect, wait_until="load")
    report.images = page.evaluate(IMAGES_JS)
    report.math = page.evaluate(MATH_JS)
    report.dom = page.evaluate(PAGE_JS)
    page.screenshot(path=str(SCREENSHOTS / (rel.replace("/", "__").removesuffix(".html") + ".png")))
    if rel == README_PAGE and os.environ.get("DGM_UPDATE_README_SCREENSHOT"):
        _save_readme_screenshot(page)
    page.close()
    report.blocked, report.route_problems, report.mirrored = router.blocked, router.problems, router.mirrored
    report.seconds = time.perf_counter() - start
    return report


def _save_readme_screenshot(page) -> None:
    """Write docs/screenshot.png: this page, shrunk to a small palette PNG (opt-in, see README)."""
    import io

    from PIL import Image

    img = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    img = img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.LANCZOS).quantize(colors=64)
    README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    tmp = README_SCREENSHOT.with_suffix(".tmp.png")
    img.save(tmp, optimize=True)
    tmp.replace(README_SCREENSHOT)


def _search(context, base: str, mathjax: Path, phrase: str) -> tuple[str, list[str]]:
    page = context.new_page()
    page.route("**/*", Router(base, mathjax))
    page.goto(f"{base}search.html?q={quote(phrase)}", wait_until="load")
    page.wait_for_function(
        "() => { const s = document.querySelector('#search-results .search-summary');"
        " return s && s.innerText.trim().length > 0; }",
        timeout=30000,
    )
    status = page.inner_text("#search-results .search-summary")
    hits = page.eval_on_selector_all("#search-results ul.search > li > a", "els => els.map((a) => a.href)")
    page.screenshot(path=str(SCREENSHOTS / "search-results.png"))
    page.close()
    return status, hits


def _redirect(html_root: Path, rel: str) -> str | None:
    """Where a meta-refresh page sends the reader (relative to the site root), or None."""
    m = re.search(r'<meta http-equiv="Refresh" content="0; url=([^"]+)"', (html_root / rel).read_text(), re.I)
    if not m:
        return None
    return (Path(rel).parent / m.group(1)).as_posix().removeprefix("./")


@pytest.fixture(scope="module")
def visits(built_book) -> Visits:
    """Every page of the smoke build, opened once in Chromium; what each did."""
    assert built_book.returncode == 0, built_book.log[-3000:]
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as err:  # a failure, not a skip: make test installs requirements.txt
        pytest.fail(f"Playwright is not installed ({err}): run `make env`")
    mathjax = install_mathjax()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with serve(built_book.html) as base, sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        pages = {
            rel: _visit(context, base, rel, mathjax, _redirect(built_book.html, rel))
            for rel in site_pages(built_book.html)
        }
        status, hits = _search(context, base, mathjax, SEARCH_PHRASE)
        browser.close()
    seconds = time.perf_counter() - start
    print(f"\nbrowser test: {len(pages)} pages in {seconds:.1f} s")
    return Visits(base, built_book.html, pages, status, hits, seconds)


def _config() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "_config.yml").read_text())


# ------------------------------------------------------------------------------------------


def test_every_page_was_opened(visits):
    on_disk = site_pages(visits.html)
    assert set(visits.pages) == set(on_disk)
    for doc in toc_files(ROOT / "_toc.yml"):
        assert f"{doc}.html" in visits.pages
    assert "search.html" in visits.pages and "index.html" in visits.pages
    for rel in visits.pages:
        shot = SCREENSHOTS / (rel.replace("/", "__").removesuffix(".html") + ".png")
        assert shot.is_file() and shot.stat().st_size > 5000, shot


def test_no_console_errors(visits):
    errors = {rel: r.console_errors for rel, r in visits.pages.items() if r.console_errors}
    assert not errors, errors


def test_nothing_is_fetched_from_the_internet_but_the_mirrored_cdn(visits):
    blocked = {
        rel: r.blocked + r.route_problems for rel, r in visits.pages.items() if r.blocked or r.route_problems
    }
    assert not blocked, f"requests that would leave the site (mirror or remove them): {blocked}"


def test_every_image_loaded(visits):
    broken = {rel: [i["src"] for i in r.images if i["width"] <= 0] for rel, r in visits.pages.items()}
    broken = {rel: srcs for rel, srcs in broken.items() if srcs}
    assert not broken, broken
    assert sum(len(r.images) for r in visits.pages.values()) > 0  # the launch-button logos at least


def test_every_equation_is_typeset_by_mathjax_without_errors(visits):
    pages_with_math = {rel: r for rel, r in visits.pages.items() if r.math["equations"]}
    assert "book/intro.html" in pages_with_math  # the intro's notation table is maths
    for rel, r in pages_with_math.items():
        m = r.math
        assert m["ran"], f"{rel}: MathJax did not run"
        assert m["version"].startswith("3."), (rel, m["version"])
        assert r.mirrored, f"{rel}: MathJax was not served from the local copy"
        assert not m["untypeset"], f"{rel}: equations left as TeX: {m['untypeset'][:5]}"
        assert m["items"] >= m["equations"], (rel, m)
        assert not m["errors"] and m["merror_elements"] == 0, f"{rel}: math errors: {m['errors'][:5]}"


def test_internal_links_resolve(visits):
    broken = {}
    for rel, r in visits.pages.items():
        for url in r.dom["links"]:
            why = broken_internal_link(visits.html, visits.base, url)
            if why:
                broken.setdefault(rel, []).append(f"{url}: {why}")
    for rel, r in visits.pages.items():
        if r.redirect and broken_internal_link(visits.html, visits.base, visits.base + r.redirect):
            broken.setdefault(rel, []).append(f"redirects to missing {r.redirect}")
    assert not broken, broken
    n_links = sum(1 for r in visits.pages.values() for u in r.dom["links"] if u.startswith(visits.base))
    assert n_links > 20


def test_launch_buttons_open_files_that_exist(visits, edition, homework_edition):
    cfg = _config()
    repo_url = cfg["repository"]["url"].rstrip("/")
    org_repo = "/".join(repo_url.split("/")[-2:])
    branch = cfg["repository"]["branch"]
    binder = cfg["launch_buttons"]["binderhub_url"].rstrip("/")
    colab = cfg["launch_buttons"]["colab_url"].rstrip("/")
    chapters = notebook_chapters()
    assert "book/intro" in chapters
    for doc in chapters:
        r = visits.pages[f"{doc}.html"]
        buttons = {b["text"]: b["href"] for b in r.dom["launch"]}
        homework = doc in homework_edition.docnames()
        assert set(buttons) == {"Binder", "Colab"} | ({"Homework (Colab)"} if homework else set()), (
            doc,
            buttons,
        )
        if homework:  # the chapter's notebook of the homework edition, on its branch
            url = f"{colab}/github/{org_repo}/blob/{HOMEWORK_BRANCH}/{doc}.ipynb"
            assert buttons["Homework (Colab)"] == url, buttons
            assert (homework_edition.out / f"{doc}.ipynb").is_file()

        edition_paths = {p.relative_to(edition.out).as_posix() for p in edition.notebooks}
        # Binder: the chapter's notebook of the edition, on the notebooks branch, opened in JupyterLab.
        b = urlsplit(buttons["Binder"])
        assert f"{b.scheme}://{b.netloc}{b.path}" == f"{binder}/v2/gh/{org_repo}/{NOTEBOOKS_BRANCH}", buttons[
            "Binder"
        ]
        urlpath = parse_qs(b.query)["urlpath"][0]
        assert urlpath.startswith("lab/tree/"), urlpath
        assert urlpath.removeprefix("lab/tree/") == f"{doc}.ipynb" and f"{doc}.ipynb" in edition_paths
        assert (edition.out / "binder" / "requirements.txt").is_file()  # the branch's environment

        # Colab: the same notebook of the edition on the notebooks branch.
        prefix = f"{colab}/github/{org_repo}/blob/"
        assert buttons["Colab"].startswith(prefix), buttons["Colab"]
        nb_branch, nb_path = buttons["Colab"].removeprefix(prefix).split("/", 1)
        assert nb_branch == NOTEBOOKS_BRANCH
        assert nb_path in edition_paths, f"{nb_path} is not among the notebooks of the edition"

        # Live Code (Thebe), backed by Binder on the same repository and branch.
        assert r.dom["thebe_button"] and r.dom["thebe_ready"], doc
        assert f'repo: "{org_repo}"' in r.dom["thebe_config"], r.dom["thebe_config"]
        assert f'ref: "{branch}"' in r.dom["thebe_config"], r.dom["thebe_config"]

        # Downloads: the source .md and the executed .ipynb, both served by the site.
        downloads = {Path(urlsplit(u).path).suffix: u for u in r.dom["downloads"]}
        assert set(downloads) == {".md", ".ipynb"}, r.dom["downloads"]
        for url in downloads.values():
            assert broken_internal_link(visits.html, visits.base, url) is None, url
        assert r.dom["repository"] == repo_url
    # Pages that are not notebooks have no launch buttons to break.
    for rel, r in visits.pages.items():
        if (r.redirect or rel).removesuffix(".html") not in chapters:
            assert not r.dom["launch"], (rel, r.dom["launch"])


def test_search_finds_posterior_collapse(visits):
    assert "Search finished" in visits.search_status, visits.search_status
    hits = {urlsplit(u).path.removeprefix(urlsplit(visits.base).path) for u in visits.search_hits}
    assert hits, f"searching {SEARCH_PHRASE!r} found nothing"
    for hit in hits:
        assert (visits.html / hit).is_file(), hit
    # Every chapter whose source says the phrase is among the hits.
    pattern = re.compile(r"posterior\W+collapse", re.I)
    says_it = {
        f"{d}.html" for d in toc_files(ROOT / "_toc.yml") if pattern.search((ROOT / f"{d}.md").read_text())
    }
    assert says_it <= hits, (says_it, hits)


def test_readme_shows_a_current_screenshot():
    assert README_SCREENSHOT.is_file()
    data = README_SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) < 250_000, "keep the README screenshot small"
    assert "docs/screenshot.png" in (ROOT / "README.md").read_text()
    assert (ROOT / README_PAGE.replace(".html", ".md")).is_file(), "README_PAGE names a chapter that is gone"


def test_a_missing_chromium_is_a_loud_failure_not_a_skip(monkeypatch):
    import siteutils

    monkeypatch.setattr(siteutils, "CHROMIUM", Path("/nonexistent/chromium"))
    with pytest.raises(RuntimeError, match="make browser"):
        siteutils.launch_chromium(playwright=None)
