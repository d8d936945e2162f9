"""Open a built site in a real browser, offline: a local server, Debian's Chromium, a local MathJax.

The pages load MathJax from a CDN. This machine (and CI) has no internet, so the browser's
requests for the CDN's ``mathjax@3`` are answered from the npm registry's ``mathjax`` package,
installed once into ``.cache/npm`` (:func:`install_mathjax`). The published site keeps its CDN
sources; only the test routes them. Every other request that leaves 127.0.0.1 is blocked and
recorded, so a page that starts depending on something else from the internet fails the test.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
import re
import shutil
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

from bookutils import ROOT

#: Debian's package (``make browser`` installs it); nothing downloads a browser of its own.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
#: The npm package served in place of the CDN's ``mathjax@3`` (Sphinx 7 loads mathjax@3/es5).
MATHJAX_VERSION = "3.2.2"
NPM_CACHE = ROOT / ".cache" / "npm"
MATHJAX_CDN = re.compile(r"^https://cdn\.jsdelivr\.net/npm/mathjax@(?P<spec>[^/]+)/(?P<path>[^?#]*)")


def install_mathjax(cache: Path = NPM_CACHE) -> Path:
    """The local copy of the ``mathjax`` npm package at :data:`MATHJAX_VERSION`; installs it if missing."""
    package = cache / "node_modules" / "mathjax"
    manifest = package / "package.json"
    if manifest.is_file() and json.loads(manifest.read_text())["version"] == MATHJAX_VERSION:
        return package
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "npm is not installed: the browser test needs it for its offline MathJax (apt-get install npm)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(cache),
            f"mathjax@{MATHJAX_VERSION}",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0 or not manifest.is_file():
        raise RuntimeError(f"npm could not install mathjax@{MATHJAX_VERSION}:\n{proc.stdout}\n{proc.stderr}")
    return package


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 at a free port from a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Router:
    """Decides the fate of every request a page makes: local, mirrored from a CDN, or blocked."""

    base: str
    mathjax: Path
    mirrored: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def local_copy(self, url: str) -> Path:
        """The file that answers a request for the CDN's MathJax; AssertionError if there is none."""
        m = MATHJAX_CDN.match(url)
        assert m is not None, url
        major = MATHJAX_VERSION.split(".")[0]
        if m["spec"].split(".")[0] != major:
            raise AssertionError(
                f"the page loads mathjax@{m['spec']} but the local copy is {MATHJAX_VERSION}"
            )
        path = (self.mathjax / unquote(m["path"])).resolve()
        if self.mathjax.resolve() not in path.parents or not path.is_file():
            raise AssertionError(f"{url} has no file in the local MathJax copy ({path})")
        return path

    def __call__(self, route) -> None:
        # Runs inside Playwright's event loop: record problems, never raise.
        url = route.request.url
        if url.startswith(self.base):
            route.continue_()
        elif MATHJAX_CDN.match(url):
            try:
                path = self.local_copy(url)
            except AssertionError as err:
                self.problems.append(str(err))
                route.abort()
                return
            self.mirrored.append(url)
            route.fulfill(path=str(path))
        else:
            self.blocked.append(url)
            route.abort()


def launch_chromium(playwright):
    """Debian's Chromium, headless, driven by Playwright; a clear failure if it is missing."""
    if not CHROMIUM.is_file():
        raise RuntimeError(
            f"{CHROMIUM} not found: run `make browser` (it installs Debian's chromium package)"
        )
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def site_pages(html_root: Path) -> list[str]:
    """Every HTML page of a built site, relative to its root (theme assets and sources excluded)."""
    pages = []
    for path in sorted(html_root.rglob("*.html")):
        rel = path.relative_to(html_root)
        if rel.parts[0] in ("_static", "_sources", "_images", "reports"):
            continue
        pages.append(rel.as_posix())
    return pages


class _Ids(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)


@functools.lru_cache(maxsize=None)
def html_ids(path: Path) -> frozenset[str]:
    """The ``id`` (and ``name``) attributes of an HTML file: the fragments a link may point at."""
    parser = _Ids()
    parser.feed(path.read_text(errors="replace"))
    return frozenset(parser.ids)


def broken_internal_link(html_root: Path, base: str, url: str) -> str | None:
    """Why a same-site link is broken (missing file or missing ``#fragment``), or None if it resolves."""
    if not url.startswith(base):
        return None
    parts = urlsplit(url)
    rel = unquote(parts.path)[len(urlsplit(base).path) :]
    target = html_root / rel
    if rel == "" or rel.endswith("/"):
        target = target / "index.html"
    if not target.is_file():
        return f"no file {rel or 'index.html'}"
    if parts.fragment and target.suffix == ".html":
        fragment = unquote(parts.fragment)
        if fragment not in html_ids(target):
            return f"no #{fragment} in {rel}"
    return None
