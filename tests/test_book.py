"""The book build is a test: the whole book in the smoke profile, and its failure paths."""

from __future__ import annotations

import re

import pytest

from bookutils import ROOT, build_book, make_mini_book, toc_files

pytestmark = pytest.mark.book


def test_whole_book_builds_without_warnings(built_book):
    assert built_book.returncode == 0, built_book.log[-6000:]
    assert "build succeeded" in built_book.log
    # Sphinx warnings read "path: WARNING: ..."; -W turns them into errors, this names them.
    sphinx_warnings = re.findall(r"^.*\bWARNING: .*$", built_book.log, flags=re.M)
    assert not sphinx_warnings, "\n".join(sphinx_warnings)


def test_every_toc_entry_produced_a_page(built_book):
    assert built_book.returncode == 0, built_book.log[-3000:]
    files = toc_files(ROOT / "_toc.yml")
    assert "book/intro" in files
    for f in files:
        page = built_book.html / f"{f}.html"
        assert page.is_file(), f"{f} is in _toc.yml but {page} was not written"
        assert page.stat().st_size > 2000
    assert (built_book.html / "index.html").is_file()


def test_every_chapter_is_in_the_toc():
    chapters = {p.relative_to(ROOT).with_suffix("").as_posix() for p in (ROOT / "book").rglob("*.md")}
    assert chapters <= set(toc_files(ROOT / "_toc.yml")), chapters - set(toc_files(ROOT / "_toc.yml"))


def test_a_failing_cell_fails_the_build(tmp_path):
    root = make_mini_book(
        tmp_path / "src",
        {
            "intro": "# Intro\n\n```{code-cell} ipython3\nraise RuntimeError('this cell fails')\n```\n",
        },
    )
    build = build_book(root, tmp_path / "out", DGM_PROFILE="smoke")
    assert build.returncode != 0
    assert "this cell fails" in build.log


def test_a_broken_reference_fails_the_build(tmp_path):
    root = make_mini_book(
        tmp_path / "src",
        {
            "intro": "# Intro\n\nSee {ref}`a-label-that-does-not-exist`.\n",
        },
    )
    build = build_book(root, tmp_path / "out", DGM_PROFILE="smoke")
    assert build.returncode != 0
    assert "a-label-that-does-not-exist" in build.log


def test_a_good_mini_book_builds(tmp_path):
    # The control for the two failure tests above: the same machinery passes on good input.
    root = make_mini_book(
        tmp_path / "src",
        {
            "intro": "# Intro\n\n(good-label)=\n## Section\n\nSee {ref}`good-label`.\n\n"
            "```{code-cell} ipython3\nprint(1 + 1)\n```\n",
        },
    )
    build = build_book(root, tmp_path / "out", DGM_PROFILE="smoke")
    assert build.returncode == 0, build.log[-3000:]


def test_a_chapter_over_its_front_matter_timeout_fails_the_build(tmp_path):
    # Chapters that train raise `mystnb: execution_timeout` in their front matter; it is honoured.
    root = make_mini_book(
        tmp_path / "src",
        {
            "intro": "# Intro\n\n```{code-cell} ipython3\nimport time\ntime.sleep(6)\n```\n",
        },
    )
    chapter = root / "book" / "intro.md"
    chapter.write_text(
        chapter.read_text().replace("kernelspec:", "mystnb:\n  execution_timeout: 2\nkernelspec:", 1)
    )
    build = build_book(root, tmp_path / "out", DGM_PROFILE="smoke")
    assert build.returncode != 0
    assert "Timeout" in build.log or "timed out" in build.log


#: LaTeX that MathJax would have typeset: left in a page's text, it means a formula was not parsed as math.
RAW_TEX = re.compile(
    r"\\(?:frac|mathbf|mathcal|mathbb|boldsymbol|operatorname|log|sum|Vert|approx|KL|bx|bz|bmu|bphi)\b"
)


def unrendered_math(html: str) -> list[str]:
    """Bits of a page's visible text (math, code and scripts left out) that are LaTeX commands."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.select(".math, script, style, pre, code, .highlight, mjx-container"):
        tag.decompose()
    text = soup.get_text(" ")
    return [text[max(m.start() - 40, 0) : m.end() + 40] for m in RAW_TEX.finditer(text)]


def test_every_formula_is_typeset(built_book):
    pages = [
        p for p in built_book.html.rglob("*.html") if "_static" not in p.parts and p.name != "search.html"
    ]
    assert len(pages) > 8
    left = {p.relative_to(built_book.html).as_posix(): unrendered_math(p.read_text()) for p in pages}
    assert not {k: v for k, v in left.items() if v}, left


def test_the_typesetting_check_finds_a_formula_broken_by_a_line_break():
    # "+ " at the start of a line inside inline math makes a list item, and the rest is raw text
    broken = '<p><span class="math">\\(a = b\\)</span></p><ul><li><p>\\frac{1}{8}, and</p></li></ul>'
    assert unrendered_math(broken) and not unrendered_math(
        '<p><span class="math">\\(\\frac{1}{8}\\)</span></p>'
    )


#: Directives whose body is code, a file name or math, never prose.
NOT_PROSE = ("{code-cell}", "{literalinclude}", "{math}", "{bibliography}")


def source_math_left_as_text(markdown: str) -> list[str]:
    """Bits of a chapter's prose that parse as text but hold LaTeX commands: the source-level twin of
    `unrendered_math`, in milliseconds instead of a build (directive bodies are parsed as well)."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.colon_fence import colon_fence_plugin
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    parser = MarkdownIt("commonmark").use(dollarmath_plugin).use(colon_fence_plugin)

    def walk(tokens):
        for token in tokens:
            if token.type in ("fence", "colon_fence") and token.info.startswith("{"):
                if token.info.split()[0] not in NOT_PROSE:
                    body = "\n".join(line for line in token.content.splitlines() if not line.startswith(":"))
                    yield from walk(parser.parse(body))
            elif token.type == "inline":
                for child in token.children or []:
                    if child.type == "text" and RAW_TEX.search(child.content):
                        yield child.content[:80]

    return list(walk(parser.parse(markdown)))


def test_no_chapter_leaves_a_formula_as_text():
    left = {p.name: source_math_left_as_text(p.read_text()) for p in (ROOT / "book").rglob("*.md")}
    assert not {k: v for k, v in left.items() if v}, left


def test_the_source_check_finds_a_formula_broken_by_a_line_break():
    assert source_math_left_as_text("The density\n$\\log q(z) = a\n- \\sum_i \\log s_i$ holds.\n")
    assert not source_math_left_as_text("The density\n$\\log q(z) = a -\n\\sum_i \\log s_i$ holds.\n")
    assert source_math_left_as_text("```{prf:proof}\n:label: x\nThen\n$a\n+ \\frac{1}{2}$.\n```\n")
