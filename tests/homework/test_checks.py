"""The homework's checks: the book's code and a hand-written solution pass, every catalogued mistake
fails with its hint and nothing else fails, and no message shows the reference's code."""

from __future__ import annotations

import inspect

import pytest
import torch
from homework.catalogue import ALTERNATIVES, MISTAKES, NEEDS_SOURCE, SOLUTIONS, WIDE_ENCODER, WIDE_VAE

import dgm
from dgm.homework import TASKS, carry_on, check, report


def namespace(*sources: str) -> dict:
    """The sources run one after the other in one namespace, as a notebook's cells are."""
    ns: dict = {"__name__": "__main__"}
    for source in sources:
        exec(compile(source, "<cell>", "exec"), ns)
    return ns


def candidate(name: str, ns: dict):
    return ns if TASKS[name].kind == "settings" else ns[name]


def chapter_sources(chapter: str, replace: dict[str, str] | None = None) -> list[str]:
    return [(replace or {}).get(n, SOLUTIONS[n]) for n, t in TASKS.items() if t.chapter == chapter]


@pytest.mark.parametrize("name", list(TASKS))
def test_the_book_passes_every_check_but_is_no_answer(name):
    t = TASKS[name]
    t.check(t.reference())  # the check itself: the book's code does what the homework asks
    if t.kind == "code":  # but handed in, it is refused: it is not the student's
        with pytest.raises(AssertionError, match=f"this is the book's {name}"):
            check(name, t.reference())
        ns = namespace(
            f"import dgm\n\n\nclass {name}(dgm.{name}):\n    pass\n"
            if isinstance(t.reference(), type)
            else f"from dgm import {name}\n"
        )
        with pytest.raises(AssertionError, match=f"this is the book's {name}"):
            check(name, ns[name])


@pytest.mark.parametrize("name", list(TASKS))
def test_a_handwritten_solution_passes(name):
    ns = namespace(*[SOLUTIONS[n] for n in NEEDS_SOURCE.get(name, ())], SOLUTIONS[name])
    check(name, candidate(name, ns))


@pytest.mark.parametrize("name", list(TASKS))
def test_the_unfilled_stub_says_it_is_not_written(name):
    ns = namespace(TASKS[name].stub)
    with pytest.raises(AssertionError, match="is not set|not written yet|NotImplementedError"):
        check(name, candidate(name, ns))


def _reference_lines() -> set[str]:
    """The book's solution lines: its source, less what the homework's stubs give the student anyway."""
    given = {line.strip() for t in TASKS.values() for line in t.stub.splitlines()}
    lines = set()
    for t in TASKS.values():
        if t.kind == "code":
            for line in inspect.getsource(t.reference()).splitlines():
                s = line.strip()
                if len(s) > 25 and not s.startswith(("#", '"', "def ", "class ")) and s not in given:
                    lines.add(s)
    return lines


REFERENCE_LINES = _reference_lines()


@pytest.mark.parametrize("mistake", MISTAKES, ids=[f"{m.task}: {m.what}" for m in MISTAKES])
def test_each_mistake_fails_with_its_hint_and_only_its_check(mistake):
    chapter = TASKS[mistake.task].chapter
    ns = namespace(*chapter_sources(chapter, {mistake.task: mistake.source}))
    with pytest.raises(AssertionError) as info:
        check(mistake.task, candidate(mistake.task, ns))
    message = str(info.value)
    assert message.startswith(f"{mistake.task}: ")
    assert mistake.hint in message, message
    assert not [line for line in REFERENCE_LINES if line in message], message
    for other, t in TASKS.items():  # the other tasks of the chapter still pass: one mistake, one failure
        if t.chapter == chapter and other != mistake.task:
            check(other, candidate(other, ns))


def test_the_catalogue_covers_every_task_and_the_issue_s_mistakes():
    assert {m.task for m in MISTAKES} == set(TASKS)
    hints = " ".join(m.hint for m in MISTAKES)
    for named in (
        "variance",
        "factor 1/2",
        "log(2 pi)",
        "swapped",
        "elementwise",
        "no gradient to the encoder",
        "beta is not applied",
    ):
        assert named in hints, named


def test_a_name_that_is_no_task_is_refused():
    with pytest.raises(KeyError, match="the tasks are get_normal_nll"):
        check("VAE", dgm.VAE2d)


def test_the_notebook_cells_report_and_carry_on(capsys):
    wrong = [m for m in MISTAKES if m.task == "get_normal_KL" and m.what == "constant missing"][0]
    ns = namespace(wrong.source)
    report("get_normal_KL", ns["get_normal_KL"])
    out = capsys.readouterr()
    assert "✗ get_normal_KL: " in out.err and "constant -1/2 is missing" in out.err and out.out == ""
    assert carry_on("get_normal_KL", ns["get_normal_KL"]) is dgm.get_normal_KL
    assert "the cells below use the book's instead" in capsys.readouterr().out
    ns = namespace(SOLUTIONS["get_normal_KL"])
    report("get_normal_KL", ns["get_normal_KL"])
    assert "✓ get_normal_KL passes every check." in capsys.readouterr().out
    assert carry_on("get_normal_KL", ns["get_normal_KL"]) is ns["get_normal_KL"]
    settings = namespace(TASKS["settings_2d"].stub.replace("EPOCHS = None", "EPOCHS = 50"))
    assert carry_on("settings_2d", settings) is None
    assert settings["EPOCHS"] == 9 and settings["ENC_HIDDEN_SIZES"] == [32, 32]
    assert "did not pass their check" in capsys.readouterr().out


@pytest.mark.parametrize("alternative", ALTERNATIVES, ids=[f"{a.task}: {a.what}" for a in ALTERNATIVES])
def test_a_right_solution_written_otherwise_passes(alternative):
    chapter = TASKS[alternative.task].chapter
    ns = namespace(*chapter_sources(chapter, {alternative.task: alternative.source}))
    for name, t in TASKS.items():
        if t.chapter == chapter:
            check(name, candidate(name, ns))


def test_a_vae_built_on_its_own_networks_is_checked_with_them():
    assert WIDE_ENCODER != SOLUTIONS["ConvEncoder"] and WIDE_VAE != SOLUTIONS["ConvVAE"]
    ns = namespace(SOLUTIONS["ConvDecoder"], WIDE_ENCODER, WIDE_VAE)
    check("ConvEncoder", ns["ConvEncoder"])
    check("ConvVAE", ns["ConvVAE"])


def test_a_check_leaves_the_student_s_random_state_alone():
    ns = namespace(*chapter_sources("book/vae/vae_2d"))
    torch.manual_seed(123)
    state = torch.get_rng_state()
    for name in ("get_normal_KL", "VAE2d"):
        check(name, ns[name])
    assert torch.equal(torch.get_rng_state(), state)


def test_a_check_that_cannot_handle_the_code_says_so_and_report_never_raises(capsys):
    ns = namespace(
        SOLUTIONS["get_normal_KL"].replace("return log_std_2", "raise SystemError('x')\n    return log_std_2")
    )
    with pytest.raises(AssertionError, match="raised SystemError"):
        check("get_normal_KL", ns["get_normal_KL"])
    with pytest.raises(AssertionError, match="expected the settings as a mapping"):
        check("settings_2d", 5)
    report("settings_2d", 5)
    assert "✗ settings_2d" in capsys.readouterr().err
