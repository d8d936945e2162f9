"""One chapter's notebook of the edition: its cells converted, a notice and a setup cell in front.

:func:`edition_notebook` reads a chapter with jupytext and returns a plain ``nbformat`` notebook:
Markdown cells rendered from MyST with the book's macros expanded, code cells kept as they are, the
title followed by :func:`notice` (where the quoted numbers come from) and the Colab setup cell that
installs ``dgm``, the chapter's references at the end, and metadata that asks Colab for a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

from dgm.book.colab import SETUP_CELL_ID, chapter_source, read_config, repository, setup_cell_source
from dgm.book.edition.bibliography import Bibliography
from dgm.book.edition.context import Context
from dgm.book.edition.errors import EditionError
from dgm.book.edition.homework import HomeworkCells, homework_notice
from dgm.book.edition.macros import book_macros, expand_macros
from dgm.book.edition.myst import MYST_LEFTOVERS, convert_markdown
from dgm.book.edition.site import BuildInfo, Target, format_glued, glued_values, site_index
from dgm.homework.tasks import TASKS

#: Notebook metadata that makes Colab ask for a GPU runtime (Runtime > Change runtime type).
COLAB_METADATA = {"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": []}}
#: The cell that says where the quoted numbers come from (its id).
NOTICE_CELL_ID = "edition-notice"


def made_by(values: dict[str, str], build: BuildInfo) -> str:
    """Which build made the numbers a chapter quotes: its profile, device and commit."""
    profile = format_glued(values["run_profile"], "") if "run_profile" in values else build.profile()
    device = format_glued(values["run_device"], "") if "run_device" in values else None
    parts = [
        f"profile `{profile}`" if profile else "",
        f"device {device}" if device else "",
        f"commit `{build.ref[:12]}`",
    ]
    return ", ".join(p for p in parts if p)


def notice(title_link: str, values: dict[str, str], build: BuildInfo) -> str:
    """The edition's note under the title: what this notebook is and where its numbers come from."""
    return (
        f"> **Notebook edition** of {title_link}. The numbers quoted in the text are those of the "
        f"published build ({made_by(values, build)}); running the cells computes your own, which depend "
        "on the execution profile (`DGM_PROFILE=smoke|cpu|gpu`) and on your hardware. In Colab, run the "
        "first code cell to install the book's package `dgm`; the notebook asks for a GPU runtime."
    )


def edition_notebook(
    root: Path, docname: str, build: BuildInfo, index: dict[str, Target] | None = None, homework: bool = False
):
    """The notebook edition of one chapter (an ``nbformat`` notebook without outputs); with ``homework``,
    its homework edition (:mod:`dgm.book.edition.homework`)."""
    import jupytext
    import nbformat

    root = Path(root)
    config = read_config(root)
    repo_url, _, _ = repository(config)
    base_url = str((config.get("html") or {}).get("baseurl", "")).rstrip("/") + "/"
    if base_url == "/":
        raise EditionError("_config.yml has no html.baseurl: the edition links into the published site")
    source = chapter_source(root, docname)
    index = site_index(build.html) if index is None else index
    ctx = Context(
        root=root.resolve(),
        chapter=source.resolve(),
        docname=docname,
        base_url=base_url,
        index=index,
        values=glued_values(build.executed, docname),
        bib=Bibliography.read(root / (config.get("bibtex_bibfiles") or ["book/references.bib"])[0]),
        macros=book_macros(config),
    )
    if homework:
        links = {
            d: f"[{index[f'doc:{d}'].text if f'doc:{d}' in index else d}]({base_url}{d}.html)"
            for d in {t.chapter for t in TASKS.values()} | {docname}
        }
        ctx.homework = HomeworkCells(docname, links)
    nb = jupytext.read(source)
    for key in ("jupytext", "mystnb"):
        nb.metadata.pop(key, None)
    nb.metadata.update(json.loads(json.dumps(COLAB_METADATA)))
    nb.metadata["colab"]["name"] = Path(docname).name + ".ipynb"
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            text = expand_macros(convert_markdown(cell.source, ctx), ctx.macros).strip("\n")
            if ctx.homework is not None:
                cells.extend(ctx.homework.split(text))
            elif text:
                cells.append(nbformat.v4.new_markdown_cell(text))
        elif cell.cell_type == "code":
            tags = [t for t in cell.metadata.get("tags", []) if t != "remove-cell"]
            cells.append(nbformat.v4.new_code_cell(cell.source, metadata={"tags": tags} if tags else {}))
        else:
            cells.append(cell)
    if not cells or cells[0].cell_type != "markdown" or not cells[0].source.lstrip().startswith("# "):
        raise EditionError(f"{ctx.where()}: a chapter must open with its title (# ...) in Markdown")
    head, _, rest = cells[0].source.lstrip().partition("\n")
    page = index.get(f"doc:{docname}")
    title_link = f"[{page.text if page else head[2:].strip()}]({base_url}{docname}.html)"
    book = str(config.get("title", "the book"))
    front = [
        nbformat.v4.new_markdown_cell(head),
        nbformat.v4.new_markdown_cell(
            homework_notice(f"{title_link} in *{book}*", docname, made_by(ctx.values, build))
            if homework
            else notice(f"{title_link} in *{book}*", ctx.values, build)
        ),
        nbformat.v4.new_code_cell(setup_cell_source(repo_url, build.ref)),
    ]
    front[1]["id"] = NOTICE_CELL_ID
    front[2]["id"] = SETUP_CELL_ID
    if rest.strip():
        front.append(nbformat.v4.new_markdown_cell(rest.strip("\n")))
    cells = front + cells[1:]
    if ctx.cited:
        refs = "\n".join(
            f"- {ctx.bib.reference(k)}" for k in sorted(ctx.cited, key=lambda k: ctx.bib.label(k))
        )
        cells.append(nbformat.v4.new_markdown_cell("## References\n\n" + refs))
    for i, cell in enumerate(cells):
        if cell.get("id") not in (NOTICE_CELL_ID, SETUP_CELL_ID):
            cell["id"] = f"cell-{i:03d}"
        if cell.cell_type == "markdown":
            left = MYST_LEFTOVERS.search(cell.source)
            if left:
                raise EditionError(f"{ctx.where()}: MyST left in the edition: {left.group(0)!r}")
    if ctx.homework is not None:
        ctx.homework.check_complete()
    nb.cells = cells
    nbformat.validate(nb)
    return nb
