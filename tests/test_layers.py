"""The package's three layers and the experiments' one contract, read from the source.

Core modules (``src/dgm/*.py``) hold the maths and models; ``dgm.experiments`` one module per
chapter that computes; ``dgm.homework`` the homework's tasks, checks and grader; ``dgm.book`` what
builds, exports or extends the book. Imports go one way: experiments -> core, homework -> core, and
nothing outside ``dgm.book`` imports it.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest

from dgm.profiles import ByProfile

from bookutils import ROOT

PACKAGE = ROOT / "src" / "dgm"
EXPERIMENTS = sorted(p.stem for p in (PACKAGE / "experiments").glob("*.py") if p.stem != "__init__")


def _layer(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else "core"


def _imported(path: Path) -> set[str]:
    """Every ``dgm`` module ``path`` imports, by dotted name (``from dgm import x`` counts as ``dgm.x``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "dgm"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dgm":
            out.add(node.module)
            if node.module == "dgm":
                out |= {f"dgm.{a.name}" for a in node.names}
    return out


def _layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ("experiments", "homework", "book") else "core"


def test_imports_go_one_way():
    allowed = {
        "core": {"core"},
        "experiments": {"core", "experiments"},
        "homework": {"core", "homework"},
        "book": {"core", "experiments", "homework", "book"},
    }
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(path)
        for module in _imported(path):
            if module != "dgm" and _layer_of(module) not in allowed[layer]:
                wrong.append(f"{path.relative_to(ROOT)} ({layer}) imports {module}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_would_catch_a_wrong_arrow(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from dgm.book.glue import glue\nfrom dgm import experiments\nimport dgm.vae\n")
    assert _imported(bad) == {"dgm.book.glue", "dgm", "dgm.experiments", "dgm.vae"}
    assert [_layer_of(m) for m in sorted(_imported(bad))] == ["core", "book", "experiments", "core"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_keeps_the_contract(name):
    module = importlib.import_module(f"dgm.experiments.{name}")
    assert isinstance(module.SETTINGS, ByProfile), f"{name}.SETTINGS is not a ByProfile"
    for profile in ("smoke", "cpu", "gpu"):
        settings = module.SETTINGS.get(profile)
        assert dataclasses.is_dataclass(settings) and type(settings).__dataclass_params__.frozen
    signature = inspect.signature(module.run)
    assert list(signature.parameters) == ["settings", "device", "log"], signature
    assert signature.parameters["device"].default is None and signature.parameters["log"].default is None
    result_type = inspect.get_annotations(module.run, eval_str=True)["return"]
    assert dataclasses.is_dataclass(result_type) and result_type.__dataclass_params__.frozen
    assert callable(getattr(result_type, "chapter_values", None)), (
        f"{result_type.__name__} has no chapter_values"
    )
    assert "log" in {f.name for f in dataclasses.fields(result_type)}, "the result keeps the run log"


CHAPTERS = {
    "em_gmm": "book/theory/em_gmm.md",
    "log_derivative_trick": "book/theory/log_derivative_trick.md",
    "vae_2d": "book/vae/vae_2d.md",
    "iwae_bound": "book/vae/iwae_bound.md",
    "iwae_training": "book/vae/iwae_training.md",
    "vae_cifar10": "book/vae/vae_cifar10.md",
    "better_priors": "book/vae/better_priors.md",
}


def test_every_experiment_has_its_chapter_and_the_chapter_runs_it():
    assert sorted(CHAPTERS) == EXPERIMENTS
    for name, chapter in CHAPTERS.items():
        text = (ROOT / chapter).read_text()
        assert f"from dgm.experiments.{name} import" in text, chapter
        assert "run(settings" in text and "glue_all(result.chapter_values())" in text, chapter


def test_modules_stay_small():
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    # ruff's format spreads calls and settings over many lines: 340 formatted lines is about 270 dense
    # ones. A module that needs more holds two jobs.
    too_long = {p: n for p, n in sizes.items() if n > 340}
    assert not too_long, f"split these modules (one job each, about 50-250 lines of code): {too_long}"
