"""dgm.book.edition: MyST chapters -> plain notebooks that read like the page (the notebook edition)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import nbformat
import pytest
import yaml

from dgm.book import edition
from dgm.book.colab import SETUP_CELL_ID
from dgm.book.edition import NOTICE_CELL_ID, Bibliography, Context, EditionError, Target, write_edition

from bookutils import ROOT, glued, notebook_chapters

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
MACROS = CONFIG["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
BASE = CONFIG["html"]["baseurl"].rstrip("/") + "/"

BIB = """\
@article{one2001, author = {Smith, Ann}, title = {A {B}ayesian Title}, journal = {J. Things}, year = {2001}}
@book{two2002, author = {Smith, Ann and Jones, Bob}, title = {Two}, publisher = {Pub}, year = {2002},
  url = {https://example.org/two}}
@inproceedings{three2003, author = {van der Berg, Cas and Ga{\\"e}l, Dee and Eve, Fay}, title = {Three},
  booktitle = {Proc.}, year = {2003}}
"""


@pytest.fixture
def ctx(tmp_path) -> Context:
    (tmp_path / "refs.bib").write_text(BIB)
    chapter = tmp_path / "book" / "part" / "ch.md"
    chapter.parent.mkdir(parents=True)
    chapter.write_text("")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "mod.py").write_text(
        "import os\n\n\n@decorator\ndef f(x):\n    return x + 1\n\n\n"
        "class C:\n    def m(self):\n        return 2\n"
    )
    index = {
        "thm-a": Target("book/part/ch", "thm-a", "Theorem 3"),
        "ex-b": Target("book/part/other", "ex-b", "Exercise 5"),
        "sec-c": Target("book/part/other", "sec-c", "Some $K$ section"),
        "doc:book/part/other": Target("book/part/other", "", "The other chapter"),
    }
    return Context(
        root=tmp_path,
        chapter=chapter,
        docname="book/part/ch",
        base_url="https://site/",
        index=index,
        values={"x": "0.123456", "name": "'cpu'", "n": "12000", "flag": "True"},
        bib=Bibliography.read(tmp_path / "refs.bib"),
        macros={"bx": "\\mathbf{x}", "E": "\\mathbb{E}"},
    )


def test_citations_are_author_year_as_on_the_site(ctx):
    line = edition.render_inline("see {cite}`one2001`, {cite}`two2002,three2003` and {cite:t}`one2001`.", ctx)
    assert line == ("see (Smith, 2001), (Smith and Jones, 2002; van der Berg et al., 2003) and Smith (2001).")
    assert ctx.cited == ["one2001", "two2002", "three2003"]
    assert (
        ctx.bib.reference("two2002") == "Ann Smith, Bob Jones (2002). *Two*. Pub. <https://example.org/two>"
    )
    assert ctx.bib.reference("three2003").startswith(
        "Cas van der Berg, Dee Gaël, Fay Eve (2003). *Three*. Proc."
    )
    assert ctx.bib.reference("one2001") == "Ann Smith (2001). *A Bayesian Title*. J. Things."
    with pytest.raises(EditionError, match="nope"):
        edition.render_inline("{cite}`nope`", ctx)


def test_cross_references_link_to_the_published_pages(ctx):
    assert (
        edition.render_inline("{prf:ref}`thm-a`", ctx) == "[Theorem 3](https://site/book/part/ch.html#thm-a)"
    )
    assert edition.render_inline("{ref}`ex-b`", ctx) == "[Exercise 5](https://site/book/part/other.html#ex-b)"
    assert (
        edition.render_inline("{ref}`the section <sec-c>`", ctx)
        == "[the section](https://site/book/part/other.html#sec-c)"
    )
    assert (
        edition.render_inline("{doc}`other`", ctx) == "[The other chapter](https://site/book/part/other.html)"
    )
    assert (
        edition.render_inline("{doc}`that one <other>`", ctx)
        == "[that one](https://site/book/part/other.html)"
    )
    with pytest.raises(EditionError, match="missing"):
        edition.render_inline("{ref}`missing`", ctx)


def test_glued_numbers_are_formatted_as_myst_nb_does(ctx):
    # The expected strings are Python's own format() of the literal values.
    assert edition.render_inline("{glue:text}`x:.2f` and {glue:text}`x`", ctx) == "0.12 and 0.123456"
    assert edition.render_inline("{glue:text}`name` on {glue:text}`n:,d`", ctx) == "cpu on 12,000"
    assert edition.render_inline("{glue:text}`flag`", ctx) == "True"
    with pytest.raises(EditionError, match="make book"):
        edition.render_inline("{glue:text}`absent:.1f`", ctx)


def test_code_spans_and_unknown_roles(ctx):
    assert edition.render_inline("`{cite}` is literal, ``a`b``", ctx) == "`{cite}` is literal, ``a`b``"
    with pytest.raises(EditionError, match="no form for the role"):
        edition.render_inline("{weird}`x`", ctx)


def test_statements_proofs_exercises_solutions_and_admonitions(ctx):
    md = "\n".join(
        [
            "(thm-target)=",
            "```{prf:theorem} Title with {cite}`one2001`",
            ":label: thm-a",
            "",
            "Statement",
            "",
            "$$",
            "a = b",
            "$$",
            "```",
            "",
            "````{prf:proof}",
            "Because $\\bx$.",
            "```python",
            "code = 1",
            "```",
            "````",
            "",
            ":::{warning}",
            "Careful.",
            ":::",
            "",
            "```{solution} ex-b",
            ":class: dropdown",
            "",
            "Answer.",
            "```",
        ]
    )
    out = edition.convert_markdown(md, ctx)
    assert "(thm-target)=" not in out
    assert (
        "> **[Theorem 3](https://site/book/part/ch.html#thm-a)** (Title with (Smith, 2001)).\n>\n"
        "> Statement\n>\n"
        "> $$ a = b $$"
    ) in out
    assert "*Proof.*\n\nBecause $\\bx$.\n```python\ncode = 1\n```\n\n∎" in out
    assert "> **Warning**\n>\n> Careful." in out
    assert "<details>\n<summary><b>Solution to Exercise 5</b></summary>\n\nAnswer.\n\n</details>" in out
    assert not edition.MYST_LEFTOVERS.search(out), out


def test_a_statement_without_label_or_unknown_directive_is_an_error(ctx):
    with pytest.raises(EditionError, match="without :label:"):
        edition.convert_markdown("```{prf:lemma}\nx\n```", ctx)
    with pytest.raises(EditionError, match="no form for the directive"):
        edition.convert_markdown("```{mermaid}\nx\n```", ctx)
    with pytest.raises(EditionError, match="unclosed"):
        edition.convert_markdown("```{note}\nx\n", ctx)


def test_literalinclude_becomes_the_code_it_shows(ctx):
    out = edition.convert_markdown("```{literalinclude} ../../src/mod.py\n:pyobject: f\n```", ctx)
    assert out == "*`src/mod.py`: `f`*\n\n```python\n@decorator\ndef f(x):\n    return x + 1\n```"
    out = edition.convert_markdown("```{literalinclude} ../../src/mod.py\n:pyobject: C.m\n```", ctx)
    assert out.endswith("```python\ndef m(self):\n    return 2\n```")
    with pytest.raises(EditionError, match="no object"):
        edition.convert_markdown("```{literalinclude} ../../src/mod.py\n:pyobject: g\n```", ctx)
    with pytest.raises(EditionError, match="emphasize-lines"):
        edition.convert_markdown("```{literalinclude} ../../src/mod.py\n:emphasize-lines: 2\n```", ctx)


def test_macros_are_expanded_outside_code_only():
    macros = {"bx": "\\mathbf{x}", "L": "\\mathcal{L}", "E": "\\mathbb{E}"}
    text = "$\\bx_i + \\L_K \\Lambda \\E\\bx$ and `\\bx` and\n```\n\\L = 1\n```\n"
    out = edition.expand_macros(text, macros)
    assert (
        out == "${\\mathbf{x}}_i + {\\mathcal{L}}_K \\Lambda {\\mathbb{E}}{\\mathbf{x}}$ and `\\bx` and"
        "\n```\n\\L = 1\n```\n"
    )
    assert edition.undefined_macros(out, macros) == []
    assert edition.undefined_macros(text, macros) == ["E", "L", "bx"]


def test_one_line_math_in_quotes():
    assert edition.quote("a\n\n$$\nx\n= y\n$$\nb") == "> a\n>\n> $$ x = y $$\n> b"
    assert (
        edition.quote("\\begin{align}\na &= b \\\\\nc\n\\end{align}")
        == "> \\begin{align} a &= b \\\\ c \\end{align}"
    )


# ------------------------------------------------------------------------------------------
# The edition of the real book, made from the smoke build


def _markdown(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_every_notebook_chapter_is_in_the_edition(edition):
    assert sorted(edition.docnames()) == sorted(notebook_chapters())
    assert len(edition.docnames()) >= 7
    assert not (edition.out / "book" / "bibliography.ipynb").exists()


def test_no_myst_and_no_book_macro_is_left_in_any_markdown_cell(edition):
    role = re.compile(r"\{[\w:-]+\}`")
    directive = re.compile(r"^\s*(?:`{3,}|:{3,})\{", re.M)
    target = re.compile(r"^\s*\([\w-]+\)=\s*$", re.M)
    for path in edition.notebooks:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            for pattern in (role, directive, target):
                assert not pattern.search(cell.source), (path, pattern.pattern, cell.source[:300])
            assert edition_macros_left(cell.source) == [], (path, cell.source[:300])
            # code (spans and blocks) may name them; the prose may not
            prose = re.sub(r"^```.*?^```[ \t]*$|`[^`\n]+`", "", cell.source, flags=re.S | re.M)
            assert "{glue" not in prose and "literalinclude" not in prose, path


def edition_macros_left(text: str) -> list[str]:
    prose = re.sub(r"^```.*?^```[ \t]*$|`[^`\n]+`", "", text, flags=re.S | re.M)
    return sorted({name for name in MACROS if re.search(r"\\" + name + r"(?![A-Za-z])", prose)})


def test_numbers_and_titles_are_those_of_the_site(edition, built_book):
    html_dir = built_book.html
    for path, doc in zip(edition.notebooks, edition.docnames()):
        md = _markdown(nbformat.read(path, as_version=4))
        source = (ROOT / f"{doc}.md").read_text()
        page = (html_dir / f"{doc}.html").read_text()
        # Every labelled statement or exercise of the chapter appears with the number the site gives it.
        for label in re.findall(r"^:label: (\S+)", source, flags=re.M):
            m = re.search(
                r'id="' + re.escape(label) + r'">\s*<p class="admonition-title">\s*'
                r'<span class="caption-number">([^<]+?)\s*</span>',
                page,
            )
            assert m, (doc, label)
            assert f"**[{m.group(1)}]({BASE}{doc}.html#{label})**" in md, (doc, label, m.group(1))
        n_solutions = len(re.findall(r"^`{3,}\{solution\}", source, flags=re.M))
        assert md.count("<details>") == md.count("</details>") == n_solutions, doc
        n_proofs = len(re.findall(r"^`{3,}\{prf:proof\}", source, flags=re.M))
        assert md.count("∎") == n_proofs, doc


def test_glued_numbers_are_the_builds(edition, built_book):
    for path, doc in zip(edition.notebooks, edition.docnames()):
        source = (ROOT / f"{doc}.md").read_text()
        values = glued(built_book.executed / f"{doc}.ipynb")
        md = _markdown(nbformat.read(path, as_version=4))
        for name, spec in re.findall(r"\{glue:text\}`([^`:]+):?([^`]*)`", source):
            value = values[name]
            try:
                number = float(value)
            except ValueError:
                continue
            expected = format(number, spec) if spec and spec[-1] in "eEfFg%" else None
            if expected:
                assert expected in md, (doc, name, expected)


def test_literal_includes_hold_the_code_of_the_package(edition):
    for path, doc in zip(edition.notebooks, edition.docnames()):
        source = (ROOT / f"{doc}.md").read_text()
        md = _markdown(nbformat.read(path, as_version=4))
        for module, obj in re.findall(r"\{literalinclude\} (\S+)\n:pyobject: (\S+)", source):
            file = (ROOT / doc).parent / module
            assert f"`{file.resolve().relative_to(ROOT).as_posix()}`: `{obj}`" in md, (doc, obj)
            first = next(
                line
                for line in file.read_text().splitlines()
                if re.match(rf"\s*(?:def|class) {obj.split('.')[-1]}\b", line)
            )
            assert first.strip() in md, (doc, obj)


def test_citations_become_author_year_with_references_at_the_end(edition):
    nb = nbformat.read(edition.out / "book" / "vae" / "iwae_bound.ipynb", as_version=4)
    md = _markdown(nb)
    assert "(Burda et al., 2016)" in md
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## References")
    assert (
        "Yuri Burda, Roger Grosse, Ruslan Salakhutdinov (2016). *Importance Weighted Autoencoders*."
        in last.source
    )


def test_each_notebook_opens_with_title_notice_and_setup_and_asks_for_a_gpu(edition):
    for path in edition.notebooks:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.cells[0].source.startswith("# "), path
        notice = nb.cells[1]
        assert notice.id == NOTICE_CELL_ID and "published build" in notice.source
        assert "profile `smoke`" in notice.source and "`0123456789ab`" in notice.source
        setup = nb.cells[2]
        assert setup.cell_type == "code" and setup.id == SETUP_CELL_ID
        assert "git+https://github.com/dgm-book/dgm-book@0123456789abcdef" in setup.source
        assert all(c.cell_type != "code" or (c.outputs == [] and c.execution_count is None) for c in nb.cells)
        assert nb.metadata["accelerator"] == "GPU" and nb.metadata["colab"]["gpuType"]
        assert "jupytext" not in nb.metadata and "mystnb" not in nb.metadata
        ids = [c.id for c in nb.cells]
        assert len(ids) == len(set(ids))


def test_every_code_cell_of_the_chapter_is_kept(edition):
    import jupytext

    for path, doc in zip(edition.notebooks, edition.docnames()):
        chapter = [c.source for c in jupytext.read(ROOT / f"{doc}.md").cells if c.cell_type == "code"]
        nb = nbformat.read(path, as_version=4)
        assert [c.source for c in nb.cells if c.cell_type == "code"][1:] == chapter, doc


def test_binder_environment_of_the_branch(edition):
    binder = edition.out / "binder"
    assert (binder / "requirements.txt").read_text() == (ROOT / "binder" / "requirements.txt").read_text()
    post = (binder / "postBuild").read_text()
    assert "--no-deps" in post and "dgm @ git+https://github.com/dgm-book/dgm-book@0123456789abcdef" in post
    assert (binder / "postBuild").stat().st_mode & 0o111


def test_no_build_means_a_clear_error(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dgm.book.edition",
            str(ROOT),
            str(tmp_path / "out"),
            "--build",
            str(tmp_path / "nothing"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "build the book first" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_chapter_glue_the_build_lacks_is_a_clear_error(built_book, tmp_path):
    import shutil

    build = tmp_path / "_build"
    shutil.copytree(built_book.out / "_build" / "html", build / "html")
    shutil.copytree(built_book.executed, build / "jupyter_execute")
    sidecar = build / "jupyter_execute" / "book" / "vae" / "iwae_bound.glue.json"
    values = json.loads(sidecar.read_text())
    values.pop("iw_estimation_time_s")
    sidecar.write_text(json.dumps(values))
    with pytest.raises(EditionError, match="iw_estimation_time_s"):
        write_edition(ROOT, tmp_path / "out", build, ref="x")
    assert not (tmp_path / "out").exists()  # nothing written: every notebook is made before any is written
