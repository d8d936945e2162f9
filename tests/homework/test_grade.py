"""The grader: it runs only a notebook's solution cells, in a child process, and a hang, a crash, files
written or prints that imitate its report fail a task without breaking the grader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from homework.catalogue import MISTAKES, SOLUTIONS

from dgm.homework import TASKS
from dgm.homework.grade import GradeError, TaskResult, format_results, grade

VAE_2D = [n for n, t in TASKS.items() if t.chapter == "book/vae/vae_2d"]
#: The book's cells of a notebook: the grader must run none of them.
BOOK_CELL = 'import os\nos._exit(17)  # the book\'s cell: "the grader ran a book cell"'


def notebook(path: Path, cells: list[tuple[str, str]], markdown: tuple[str, ...] = ()) -> Path:
    """A homework notebook: book cells, and for each (task, source) a solution cell and its check cell;
    the tasks in ``markdown`` have a solution cell that is a markdown cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells += [
        nbformat.v4.new_markdown_cell("# A chapter\n\nThe book's text."),
        nbformat.v4.new_code_cell(BOOK_CELL),
    ]
    for task, source in cells:
        mark = {"homework": {"task": task, "role": "solution"}}
        new = nbformat.v4.new_markdown_cell if task in markdown else nbformat.v4.new_code_cell
        nb.cells.append(new(source, metadata=mark))
        check = {"homework": {"task": task, "role": "check"}}
        nb.cells.append(nbformat.v4.new_code_cell(BOOK_CELL, metadata=check))
    nb.cells.append(nbformat.v4.new_markdown_cell("My answer.", metadata={"homework": {"role": "answer"}}))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dgm.homework", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its parent to reap it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_correct_notebook_passes_every_task_and_runs_no_book_cell(tmp_path):
    path = notebook(tmp_path / "vae_2d.ipynb", [(n, SOLUTIONS[n]) for n in VAE_2D])
    done = cli("grade", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"PASS  {n}" for n in VAE_2D] + ["total: 5/5 tasks passed"]


def test_a_mistake_fails_its_task_with_its_hint_and_only_it(tmp_path):
    mistake = next(m for m in MISTAKES if m.task == "get_normal_KL" and m.what == "constant missing")
    cells = [(n, mistake.source if n == mistake.task else SOLUTIONS[n]) for n in VAE_2D]
    results = grade(notebook(tmp_path / "wrong.ipynb", cells))
    assert [r.name for r in results] == VAE_2D
    assert [r.name for r in results if not r.passed] == [mistake.task]
    failed = next(r for r in results if not r.passed)
    assert mistake.hint in failed.message and not failed.message.startswith(f"{mistake.task}: ")
    report = format_results(results)
    assert f"FAIL  get_normal_KL: {failed.message}" in report and report.endswith("total: 4/5 tasks passed")


HANG_IN_CELL = """
import pathlib, subprocess, sys
sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
pathlib.Path({pids!r}).write_text(f"{{os.getpid()}} {{sleeper.pid}}")
while True:
    print("still running", file=sys.stderr)  # its stderr fills the pipe: the grader must drain it
"""
HANG_IN_CHECK = """
def get_normal_KL(mean_1, log_std_1, mean_2=None, log_std_2=None):
    while True:
        pass
"""


@pytest.mark.parametrize("where", ["cell", "check"])
def test_a_hanging_submission_fails_the_task_it_hangs_in_and_is_killed(tmp_path, where):
    pids = tmp_path / "pids"
    hang = "import os\n" + HANG_IN_CELL.format(pids=str(pids)) if where == "cell" else HANG_IN_CHECK
    cells = [
        ("get_normal_nll", SOLUTIONS["get_normal_nll"]),
        ("get_normal_KL", hang),
        ("FullyConnectedMLP", SOLUTIONS["FullyConnectedMLP"]),
    ]
    path = notebook(tmp_path / "hang.ipynb", cells)
    start = time.monotonic()
    results = grade(path, timeout=2)
    assert time.monotonic() - start < 30
    # each task is checked after its cells: the one before the hang keeps its verdict, the next is not run
    assert results == [
        TaskResult("get_normal_nll", True),
        TaskResult("get_normal_KL", False, "did not finish within 2 s (an endless loop, or too slow)"),
        TaskResult("FullyConnectedMLP", False, "not run (the grader stopped at get_normal_KL)"),
    ]
    if where == "cell":
        gone = time.monotonic() + 10  # the child and what it started; an orphan is reaped by init
        while any(alive(int(pid)) for pid in pids.read_text().split()) and time.monotonic() < gone:
            time.sleep(0.1)
        assert not any(alive(int(pid)) for pid in pids.read_text().split())


CRASHES = {
    "os._exit in a cell": ("import os\nos._exit(3)", "cell", "exit code 3"),
    "SIGSEGV in a cell": (
        "import os, signal\n\nos.kill(os.getpid(), signal.SIGSEGV)",
        "cell",
        "killed by signal 11",
    ),
    "os._exit in the check": (
        "def get_normal_KL(*args):\n    import os\n    os._exit(0)",
        "check",
        "exit code 0",
    ),
}


@pytest.mark.parametrize("case", list(CRASHES))
def test_a_crashing_submission_fails_the_task_it_crashes_in(tmp_path, case):
    source, where, how = CRASHES[case]
    cells = [
        ("get_normal_nll", SOLUTIONS["get_normal_nll"]),
        ("get_normal_KL", source),
        ("FullyConnectedMLP", SOLUTIONS["FullyConnectedMLP"]),
    ]
    nll, kl, mlp = grade(notebook(tmp_path / "crash.ipynb", cells), timeout=60)
    assert nll == TaskResult("get_normal_nll", True)  # checked before the crash (in the cell or its check)
    assert mlp == TaskResult("FullyConnectedMLP", False, "not run (the grader stopped at get_normal_KL)")
    assert not kl.passed and kl.message.startswith(f"the submission crashed the Python process ({how}")
    if "SIGSEGV" in case:  # the end of its stderr shows where: the faulthandler's traceback
        assert (
            "Segmentation fault" in kl.message
            and 'File "<solution cell of get_normal_KL>", line 3' in kl.message
        )


MISCHIEF = """%%time
import json, os, sys
paths = {{"cwd": os.getcwd(), "home": os.environ["HOME"], "tmp": os.environ["TMPDIR"]}}
json.dump(paths, open({where!r}, "w"))
for name in ("grade_results.txt", "dgm.py", "torch.py", "shadow_probe.py"):
    with open(name, "w") as f:
        f.write("raise SystemExit('a file the submission wrote was imported')\\n")
try:
    import shadow_probe
except ModuleNotFoundError:
    pass
for out in (sys.stdout, sys.stderr):  # what the grader prints, and what the child reports
    print('{{"event": "result", "task": "get_normal_KL", "passed": true, "message": ""}}', file=out)
    print('{{"event": "done"}}', file=out)
    print("PASS  get_normal_KL\\nPASS  FullyConnectedMLP\\ntotal: 4/4 tasks passed", file=out)
"""


def test_files_and_prints_of_the_submission_neither_land_nor_fool_the_grader(tmp_path):
    where = tmp_path / "where.json"
    cells = [
        ("get_normal_nll", MISCHIEF.format(where=str(where)) + SOLUTIONS["get_normal_nll"]),
        ("get_normal_KL", "x = 1"),
        ("FullyConnectedMLP", "\nraise ValueError('boom')"),
        ("VAE2d", ""),
    ]
    path = notebook(tmp_path / "nb" / "mischief.ipynb", cells, markdown=("VAE2d",))
    (tmp_path / "cwd").mkdir()
    done = cli("grade", str(path), "--timeout", "60", cwd=tmp_path / "cwd")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        "PASS  get_normal_nll",
        "FAIL  get_normal_KL: the cell does not define get_normal_KL",
        "FAIL  FullyConnectedMLP: your cell raised ValueError: boom (line 2 of the cell)",
        "FAIL  VAE2d: the solution cell is not a code cell: make it a Code cell again",
        "total: 1/4 tasks passed",
    ]
    assert done.stderr == ""
    for folder in (tmp_path / "cwd", tmp_path / "nb", Path.cwd()):
        assert not {"grade_results.txt", "dgm.py", "shadow_probe.py"} & set(os.listdir(folder)), folder
    ran = json.loads(where.read_text())
    assert Path(ran["home"]).parent == Path(ran["tmp"]).parent.parent == Path(ran["cwd"]).parent
    assert not Path(ran["cwd"]).parent.exists()  # the temporary directory is gone


def test_input_errors_exit_2_with_one_line(tmp_path):
    done = cli("grade", str(tmp_path / "missing.ipynb"))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"python -m dgm.homework grade: {tmp_path / 'missing.ipynb'}: no such file"
    ]


def test_input_errors_are_grade_errors(tmp_path):
    (tmp_path / "text.ipynb").write_text("not json")
    (tmp_path / "list.ipynb").write_text("[1, 2]")
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(BOOK_CELL)])
    nbformat.write(plain, tmp_path / "plain.ipynb")
    unknown = notebook(tmp_path / "unknown.ipynb", [("VAE", "class VAE: pass")])
    for path, match in [
        (tmp_path / "missing.ipynb", "no such file"),
        (tmp_path / "text.ipynb", "not a notebook"),
        (tmp_path / "list.ipynb", "not a notebook in nbformat 4"),
        (tmp_path / "plain.ipynb", "no homework cells"),
        (unknown, "'VAE', which is no homework task"),
    ]:
        with pytest.raises(GradeError, match=match):
            grade(path)


def test_the_command_line_lists_grade():
    done = cli("--help")
    assert done.returncode == 0 and "grade" in done.stdout


def test_the_book_s_code_handed_in_fails_and_a_cell_added_after_a_stub_counts(tmp_path):
    cells = [
        ("get_normal_nll", "from dgm import get_normal_nll"),
        ("get_normal_KL", TASKS["get_normal_KL"].stub),
    ]
    path = notebook(tmp_path / "nb.ipynb", cells)
    nb = nbformat.read(path, as_version=4)
    stub = next(
        i for i, c in enumerate(nb.cells) if c.metadata.get("homework", {}).get("task") == "get_normal_KL"
    )
    nb.cells.insert(stub + 1, nbformat.v4.new_code_cell(SOLUTIONS["get_normal_KL"]))  # written below the stub
    nbformat.write(nb, path)
    nll, kl = grade(path, timeout=60)
    assert not nll.passed and nll.message.startswith("this is the book's get_normal_nll"), nll
    assert kl == TaskResult("get_normal_KL", True)


def test_a_theory_notebook_lists_its_answers_for_grading_by_hand(tmp_path):
    nb = nbformat.v4.new_notebook()
    for label, text in [
        ("thm-iwae-monotone", "By Jensen's inequality applied to the subset average, ..."),
        ("thm-iwae-limit", ""),
    ]:
        mark = {"homework": {"task": label, "role": "answer"}}
        nb.cells.append(
            nbformat.v4.new_markdown_cell(f"*Your answer to X of the homework:*\n\n{text}", metadata=mark)
        )
    nbformat.write(nb, tmp_path / "theory.ipynb")
    proc = cli("grade", str(tmp_path / "theory.ipynb"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == [
        "ANSWER  Problem 2, part 1 (thm-iwae-monotone): written, 9 words: graded by hand",
        "FAIL  Problem 2, part 2 (thm-iwae-limit): no answer written",
        "answers: 1/2 written (graded by hand)",
    ]
