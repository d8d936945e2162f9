"""The homework edition: the same chapters with the homework's gaps in place of the book's solutions.

Made by the same export as the notebook edition (:func:`dgm.book.edition.edition_notebook` with
``homework=True``), for the chapters that hold a task or a theory problem of
:mod:`dgm.homework.tasks`. While a chapter is converted, a :class:`HomeworkCells` decides three things:

- a ``literalinclude`` of a task's object (``:pyobject: VAE2d``) in the task's home chapter becomes
  the task's cells: what to do, the stub (the homework's signature and comments), the check cell
  (``report``) and the carry-on cell (``carry_on``: the student's code if it passed, else the
  book's); elsewhere, and for one method of it (``VAE2d.sample``), a line that says where it is written;
- the comment ``% homework: NAME`` places a settings task: its stub, check, carry-on, and the
  homework's training cells, which use the student's classes;
- the proof of a statement whose label is a homework problem gives way to what the homework asks,
  its hints and a Markdown cell for the student's answer; prose that answers a problem sits between
  the comments ``% homework: hide`` and ``% homework: end`` and is left out.

The cells are returned to the notebook builder through markers in the converted Markdown
(:data:`MARK`), where it splits the cell. Each cell the edition adds carries
``metadata["homework"] = {"task": ..., "role": ...}`` with role ``solution`` (the stub: what the
grader runs), ``check``, ``carry-on``, ``train`` or ``answer``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

from dgm.book.colab import homework_pages
from dgm.book.edition.errors import EditionError
from dgm.homework.tasks import PROBLEMS, TASKS, Task

#: Around the number of a cell list in converted Markdown: where the notebook builder splits the cell.
MARK = "\ue000"
#: ``% homework: hide`` ... ``% homework: end`` around prose that answers a problem: left out of the edition.
HIDE, END = "% homework: hide", "% homework: end"
MARKED = re.compile(f"{MARK}(\\d+){MARK}")
ANCHOR = re.compile(r"^%\s*homework:\s*(?!hide\b|end\b)(\w+)\b")


def homework_chapters(toc: list[str]) -> list[str]:
    """The chapters of ``toc`` (in its order) that hold a homework task or problem."""
    held = homework_pages()
    return [d for d in toc if d in held]


def _cell(kind: str, source: str, task: str, role: str):
    import nbformat

    make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    return make(source, metadata={"homework": {"task": task, "role": role}})


def task_cells(t: Task, later: tuple[str, ...] = ()) -> list:
    """The cells of one task: what to do, the stub, the check, how to carry on (and the training);
    ``later`` are the tasks its code calls that this notebook has further down."""
    if t.kind == "settings":
        intro = (
            f"**Homework: your settings** (`{t.name}`). Choose the values between the `# ====` lines within "
            "the homework's limits and run the cell; the check says whether they are within them, and the "
            "training after it uses your classes and your settings."
        )
        cand = "globals()"
        carry = f'carry_on("{t.name}", globals())  # your settings if they passed, else the book\'s'
    else:
        intro = (
            f"**Homework: `{t.name}`.** Write the code between the `# ====` lines (and delete the "
            "`raise NotImplementedError` line), run the cell, then the check below it."
        )
        if later:
            names = " and ".join(f"`{n}`" for n in later)
            intro += (
                f" Its code calls {names}, which you write further down: the check lends the book's "
                "meanwhile, and your own take over once their cells have run."
            )
        cand = t.name
        carry = f'{t.name} = carry_on("{t.name}", {t.name})  # yours if it passed its check, else the book\'s'
    cells = [
        _cell("markdown", intro, t.name, "task"),
        _cell("code", t.stub.rstrip("\n"), t.name, "solution"),
        _cell(
            "code",
            f'from dgm.homework import carry_on, report\n\nreport("{t.name}", {cand})',
            t.name,
            "check",
        ),
        _cell("code", carry, t.name, "carry-on"),
    ]
    if t.follow:
        cells.append(_cell("code", t.follow.rstrip("\n"), t.name, "train"))
    return cells


@dataclass
class HomeworkCells:
    """What one chapter's conversion hands to the notebook builder, and what it placed."""

    docname: str
    page_links: dict[str, str]  # chapter -> Markdown link to its page, for "written in ..."
    cells: list[list] = field(default_factory=list)
    placed: set[str] = field(default_factory=set)
    last_label: str | None = None

    def _mark(self, cells: list) -> str:
        self.cells.append(cells)
        return f"\n\n{MARK}{len(self.cells) - 1}{MARK}\n\n"

    def literal_include(self, pyobject: str, source: str) -> str | None:
        """The task's cells or a pointer for an include of a task's object (or of a class derived from
        one, whose code would show the solution's); ``None`` for any other include. ``source`` is the
        text of the file the include reads."""
        name = pyobject.split(".")[0]
        base = _task_base(source, name)
        if base is not None:
            return (
                f"*`{name}` extends the homework's `{base}`; its code is on the book's page "
                f"{self.page_links[self.docname]}.*"
            )
        t = TASKS.get(name)
        if t is None or t.kind != "code":
            return None
        if t.chapter == self.docname and pyobject == name:
            if name in self.placed:
                raise EditionError(f"{self.docname}: the homework's {name} is included twice")
            self.placed.add(name)
            later = tuple(n for n in t.needs if TASKS[n].chapter == self.docname and n not in self.placed)
            return self._mark(task_cells(t, later))
        where = (
            "in this notebook"
            if t.chapter == self.docname
            else f"in the homework of {self.page_links[t.chapter]}"
        )
        return f"*`{pyobject}` is part of the homework: you write `{name}` {where}.*"

    def anchor(self, name: str) -> str:
        """The cells of the settings task ``name`` (the chapter's ``% homework: name`` comment)."""
        t = TASKS.get(name)
        if t is None or t.kind != "settings" or t.chapter != self.docname:
            raise EditionError(f"{self.docname}: '% homework: {name}' names no settings task of this chapter")
        self.placed.add(name)
        return self._mark(task_cells(t))

    def proof(self) -> str | None:
        """The hints and an answer cell in place of the proof of a homework problem; ``None`` otherwise."""
        p = PROBLEMS.get(self.last_label or "")
        if p is None or p.chapter != self.docname:
            return None
        self.placed.add(p.label)
        answer = _cell("markdown", f"*Your answer to {p.title} of the homework:*\n\n", p.label, "answer")
        text = f"**Homework ({p.title}).** {p.ask}; the book's proof is left out of this edition."
        if p.hints:
            text += f" *From the homework:* {p.hints}"
        if p.book_hint:
            text += f" *A hint from the book:* {p.book_hint}"
        return text + self._mark([answer])

    def check_complete(self) -> None:
        """Every task and problem of this chapter was placed."""
        wanted = {n for n, t in TASKS.items() if t.chapter == self.docname}
        wanted |= {label for label, p in PROBLEMS.items() if p.chapter == self.docname}
        missing = sorted(wanted - self.placed)
        if missing:
            raise EditionError(
                f"{self.docname}: the homework edition found no place for {missing} (a code task needs a "
                "literalinclude of its object, a settings task a '% homework: NAME' comment, a problem a "
                "proof after its statement)"
            )

    def split(self, text: str) -> list:
        """A converted Markdown cell split at its markers: Markdown cells and the tasks' cells, in order."""
        import nbformat

        out, pos = [], 0
        for m in MARKED.finditer(text):
            before = text[pos : m.start()].strip("\n")
            if before.strip():
                out.append(nbformat.v4.new_markdown_cell(before))
            out.extend(self.cells[int(m.group(1))])
            pos = m.end()
        rest = text[pos:].strip("\n")
        if rest.strip():
            out.append(nbformat.v4.new_markdown_cell(rest))
        return out


def _task_base(source: str, name: str) -> str | None:
    """The code task a class ``name`` of ``source`` derives from, if it does."""
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            for b in node.bases:
                base = b.id if isinstance(b, ast.Name) else b.attr if isinstance(b, ast.Attribute) else None
                if base in TASKS and TASKS[base].kind == "code":
                    return base
    return None


def homework_notice(title_link: str, docname: str, made: str) -> str:
    """The note under the title of a homework notebook: what it holds, how to work in it, how it is
    graded, and (``made``) which build the numbers quoted in its text come from."""
    code = [t for t in TASKS.values() if t.chapter == docname]
    problems = [p for p in PROBLEMS.values() if p.chapter == docname]
    parts = [
        f"> **Homework edition** of {title_link}: the chapter with the homework's gaps in place of the "
        "book's solutions; tasks and problems carry the homework's numbers."
    ]
    if code:
        parts.append(
            "Write your code in each cell marked *Homework*, run it, and run the check after it: it "
            "says what is wrong, and the cell after the check carries on with the book's code where "
            "yours failed, so that the rest of the notebook runs. An instructor grades your code with "
            "`python -m dgm.homework grade NOTEBOOK.ipynb`, which runs only the homework's cells (and "
            "code cells you add right after one)."
        )
    if problems:
        parts.append(
            "Write your answers to the theory problems in the Markdown cells marked *Your answer*; "
            "they are graded by hand (the grader lists which are written)."
        )
    parts.append(
        f"The numbers quoted in the text are those of the published build ({made}). In Colab, run "
        "the first code cell to install the book's package `dgm`."
    )
    return " ".join(parts)
