"""The homework edition: the chapters with homework, the solutions taken out, and it runs filled in.

Made from the smoke build by the same export as the notebook edition. Every task sits in its home
chapter as stub, check and carry-on cells; no line of the book's solutions and no proof of a
theory problem is left; the book's own code cells are those of the notebook edition (whose run
test covers them); and filled in with the catalogue's solutions, one of them wrong, the notebooks
run top to bottom in a reader's environment, the wrong one's check names its mistake, the cells
after it carry on, and the grader grades them.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys

import nbformat
import pytest
from homework.catalogue import MISTAKES, SOLUTIONS

from dgm.homework import PROBLEMS, TASKS

from bookutils import ROOT
from editionutils import execute_notebook

pytestmark = pytest.mark.book

HOMEWORK_CHAPTERS = [
    "book/theory/em_gmm",
    "book/theory/log_derivative_trick",
    "book/vae/vae_2d",
    "book/vae/iwae_bound",
    "book/vae/vae_cifar10",
]


def _notebooks(edition) -> dict[str, nbformat.NotebookNode]:
    return {d: nbformat.read(p, as_version=4) for d, p in zip(edition.docnames(), edition.notebooks)}


def _text(nb) -> str:
    return "\n".join(c.source for c in nb.cells)


def _flat(nb) -> str:
    """The notebook's text on one line, block quotes' ``>`` taken out: what a reader reads."""
    return " ".join(re.sub(r"^>\s?", "", _text(nb), flags=re.M).split())


def _role(cell) -> tuple[str, str] | None:
    h = cell.metadata.get("homework")
    return (h["task"], h["role"]) if h else None


def test_the_homework_edition_holds_the_chapters_with_homework_in_book_order(homework_edition, edition):
    assert homework_edition.docnames() == HOMEWORK_CHAPTERS
    order = edition.docnames()
    assert [order.index(d) for d in HOMEWORK_CHAPTERS] == sorted(order.index(d) for d in HOMEWORK_CHAPTERS)


def test_every_task_is_a_stub_a_check_and_a_carry_on_in_its_chapter(homework_edition):
    notebooks = _notebooks(homework_edition)
    for name, t in TASKS.items():
        nb = notebooks[t.chapter]
        cells = [c for c in nb.cells if _role(c) and _role(c)[0] == name]
        roles = [_role(c)[1] for c in cells]
        assert roles == ["task", "solution", "check", "carry-on"] + (
            ["train"] if t.kind == "settings" else []
        ), name
        first = nb.cells.index(cells[0])
        assert nb.cells[first : first + len(cells)] == cells, f"{name}'s cells are not together"
        assert (
            cells[1].source == t.stub.rstrip("\n")
            and "raise NotImplementedError" in cells[1].source
            or (t.kind == "settings" and "= None" in cells[1].source)
        )
        assert f'report("{name}", ' in cells[2].source and f'carry_on("{name}", ' in cells[3].source
        for other in notebooks.values():
            if other is not nb:
                assert not [c for c in other.cells if _role(c) and _role(c)[0] == name]
    for chapter in ("book/vae/vae_2d", "book/vae/vae_cifar10"):  # the training comes after every class
        roles = [_role(c) for c in notebooks[chapter].cells if _role(c)]
        train = roles.index(next(r for r in roles if r[1] == "train"))
        assert all(
            i < train for i, r in enumerate(roles) if r[1] == "solution" and TASKS[r[0]].kind == "code"
        )


def _solution_lines() -> dict[str, list[str]]:
    """Each code task's lines of the book's solution that the stub does not have (non-trivial ones)."""
    out = {}
    for name, t in TASKS.items():
        if t.kind != "code":
            continue
        stub = {s.strip() for s in t.stub.splitlines()}
        lines = [s.strip() for s in inspect.getsource(t.reference()).splitlines()]
        out[name] = [
            s for s in lines if len(s) > 20 and s not in stub and not s.startswith(("#", '"""', "def "))
        ]
    return out


def test_no_line_of_the_book_s_solutions_is_left(homework_edition, edition):
    homework, book = _notebooks(homework_edition), _notebooks(edition)

    def lines_of(nb) -> set[str]:
        return {line.strip() for line in _text(nb).splitlines()}

    for name, lines in _solution_lines().items():
        assert len(lines) >= 3, name
        shown = lines_of(book[TASKS[name].chapter])  # the notebook edition shows them: the search finds them
        assert sum(line in shown for line in lines) >= 3, name
        for docname, nb in homework.items():
            left = [line for line in lines if line in lines_of(nb)]
            assert not left, (name, docname, left[:3])


def _proof_lines(chapter: str, label: str) -> list[str]:
    """The stretches of plain prose (between math and markup, 25 characters or more) of the proof that
    follows the statement ``label`` in the chapter's source: what any edition shows verbatim."""
    source = (ROOT / f"{chapter}.md").read_text()
    start = source.index(f":label: {label}\n")
    m = re.compile(r"^(`{3,}|:{3,})\{prf:proof\}.*?\n(.*?)^\1\s*$", re.M | re.S).search(source, start)
    assert m, label
    pieces = re.split(r"\$[^$]*\$|\{[\w:-]+\}`[^`]*`|[*`]", m.group(2))
    return [" ".join(p.split()) for p in pieces if len(p.strip()) >= 25 and "\\" not in p]


def test_the_proofs_of_the_theory_problems_are_taken_out_and_the_hints_put_in(homework_edition, edition):
    homework, book = _notebooks(homework_edition), _notebooks(edition)

    for label, p in PROBLEMS.items():
        lines = _proof_lines(p.chapter, label)
        assert lines, label
        assert all(line in _flat(book[p.chapter]) for line in lines), label
        text = _flat(homework[p.chapter])
        assert not [line for line in lines if line in text], label
        assert f"**Homework ({p.title}).** {p.ask};" in text
        assert " ".join(p.hints.split()) in text and " ".join(p.book_hint.split()) in text
        answers = [c for c in homework[p.chapter].cells if _role(c) == (label, "answer")]
        assert len(answers) == 1 and answers[0].cell_type == "markdown"


def test_the_book_s_own_cells_are_those_of_the_notebook_edition(homework_edition, edition):
    homework, book = _notebooks(homework_edition), _notebooks(edition)
    for docname, nb in homework.items():
        ours = [c.source for c in nb.cells if c.cell_type == "code" and not _role(c)]
        assert ours == [c.source for c in book[docname].cells if c.cell_type == "code"], docname


def _filled(nb, wrong: dict[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        if _role(cell) and _role(cell)[1] == "solution":
            cell.source = wrong.get(_role(cell)[0], SOLUTIONS[_role(cell)[0]])
    return nb


def _outputs(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def test_filled_in_the_homework_runs_top_to_bottom_and_says_what_is_wrong(
    homework_edition, reader_env, tmp_path
):
    mistake = next(m for m in MISTAKES if m.task == "get_normal_KL" and m.what == "factor 1/2 missing")
    notebooks = _notebooks(homework_edition)
    cases = [
        ("book/vae/vae_2d", {}),  # every check passes
        ("book/vae/vae_2d", {"get_normal_KL": mistake.source}),  # one fails, and the rest runs
        ("book/vae/vae_cifar10", {}),
    ]
    for case, (chapter, wrong) in enumerate(cases):
        path = tmp_path / f"{case}.ipynb"
        nbformat.write(_filled(notebooks[chapter], wrong), path)
        ran = execute_notebook(
            reader_env,
            path,
            tmp_path,
            DGM_PROFILE="smoke",
            DGM_CHECKPOINT_DIR=str(tmp_path / "checkpoints"),
            DGM_DATA_DIR=str(tmp_path / "data"),
        )
        errors = [
            o for c in ran.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
        ]
        assert not errors, (chapter, errors[:1])
        for cell in ran.cells:
            role = _role(cell)
            if role and role[1] == "check":
                if role[0] in wrong:
                    assert f"✗ {role[0]}: " in _outputs(cell) and mistake.hint in _outputs(cell)
                else:
                    assert f"✓ {role[0]} passes every check." in _outputs(cell), (role, _outputs(cell))
            if role and role[1] == "carry-on" and role[0] in wrong:
                assert "the cells below use the book's instead" in _outputs(cell)
            if role and role[1] == "train":  # the student's classes trained
                assert "elbo_loss" in _outputs(cell), _outputs(cell)[-500:]
        nbformat.write(_filled(notebooks[chapter], wrong), path)  # what a student hands in
        proc = subprocess.run(
            [sys.executable, "-m", "dgm.homework", "grade", str(path), "--timeout", "300"],
            capture_output=True,
            text=True,
            timeout=400,
        )
        tasks = [n for n, t in TASKS.items() if t.chapter == chapter]
        assert proc.returncode == (1 if wrong else 0), proc.stdout + proc.stderr
        for name in tasks:
            line = next(x for x in proc.stdout.splitlines() if re.match(rf"(PASS|FAIL)\s+{name}\b", x))
            assert line.startswith("FAIL" if name in wrong else "PASS"), line
        assert f"total: {len(tasks) - len(wrong)}/{len(tasks)}" in proc.stdout


def test_the_instructors_page_lists_every_task_and_shows_a_real_diagnosis(built_book):
    page = (built_book.html / "book" / "appendix" / "instructors.html").read_text()
    for name in TASKS:
        assert (
            f'<code class="docutils literal notranslate"><span class="pre">{name}</span></code>' in page
            or (f"<code>{name}</code>" in page)
        ), name
    for p in PROBLEMS.values():
        assert p.title in page
    # the page's example: a check run on a wrong answer, its message printed by the build
    assert "get_normal_nll: " in page and "a factor 1/2 is missing" in page
    assert "python -m dgm.homework grade submission.ipynb" in re.sub(r"<[^>]+>", "", page)


def test_prose_that_answers_a_problem_is_left_out(homework_edition, edition):
    homework, book = _notebooks(homework_edition), _notebooks(edition)
    hidden = 0
    for docname in homework:
        source = (ROOT / f"{docname}.md").read_text()
        for block in re.findall(r"^% homework: hide.*?\n(.*?)^% homework: end", source, re.M | re.S):
            block = re.sub(r"^(?:`{3,}|:{3,}).*$|^:[\w-]+:.*$", "", block, flags=re.M)  # fences, options
            pieces = [" ".join(p.split()) for p in re.split(r"\$[^$]*\$|\{[\w:-]+\}`[^`]*`|[*`]", block)]
            pieces = [p for p in pieces if len(p) >= 25 and "\\" not in p]
            assert pieces, block[:200]
            shown, left = _flat(book[docname]), _flat(homework[docname])
            assert all(p in shown for p in pieces) and not [p for p in pieces if p in left], docname
            hidden += 1
    assert hidden >= 5  # answers to Problem 1.2, and what draws on the proofs of Problem 2
