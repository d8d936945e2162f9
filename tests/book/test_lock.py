"""dgm.book.lock and the committed lock: requirements.lock pins the whole environment, agrees with
requirements.txt, and is what this environment runs; binder/requirements.txt is the readers' part of it."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest

from dgm.book import lock

from bookutils import ROOT

LOCKED = lock.parse_pins((ROOT / lock.LOCK).read_text())


def test_pins_parse_and_local_labels_drop():
    text = "# comment\n--extra-index-url https://x\n-e .\nTorch==2.13.0+cpu\nPyYAML == 6.0  # inline\n"
    assert lock.parse_pins(text) == {"torch": "2.13.0+cpu", "pyyaml": "6.0"}
    assert lock.drop_local_label("2.13.0+cu130") == "2.13.0" and lock.drop_local_label("1.0") == "1.0"
    assert lock.canonical("Sphinx_Book.Theme") == "sphinx-book-theme"
    with pytest.raises(ValueError, match="exact pin"):
        lock.parse_pins("numpy>=2\n")


def test_the_lock_holds_every_pin_of_requirements_txt():
    declared = lock.parse_pins((ROOT / "requirements.txt").read_text())
    wrong = {n: (v, LOCKED.get(n)) for n, v in declared.items() if lock.drop_local_label(v) != LOCKED.get(n)}
    assert not wrong, f"requirements.txt changed without `make lock`: {wrong}"
    assert lock.LOCK_HEADER in (ROOT / lock.LOCK).read_text()


def test_the_lock_is_closed_and_is_what_this_environment_runs():
    # every dependency of every locked package is locked too (run in this environment, as make lock does)
    names = lock.closure(sys.executable, sorted(LOCKED))
    assert set(names) <= set(LOCKED) | {"pip", "wheel"}, sorted(set(names) - set(LOCKED))
    for name, version in LOCKED.items():
        installed = lock.drop_local_label(metadata.version(name))
        assert installed == version, f"{name}: the lock says {version}, this environment has {installed}"


def test_binder_is_the_readers_closure_at_the_locks_versions():
    binder_text = (ROOT / lock.BINDER).read_text()
    assert f"--extra-index-url {lock.TORCH_CPU_INDEX}" in binder_text.splitlines()
    binder = lock.parse_pins(binder_text)
    assert binder.pop("torch") == LOCKED["torch"] + "+cpu"
    assert all(LOCKED[name] == version for name, version in binder.items()), binder
    needed = set(lock.closure(sys.executable, lock.package_dependencies(ROOT))) - {"torch"}
    assert needed == set(binder), (sorted(needed - set(binder)), sorted(set(binder) - needed))
    assert binder_text == lock.binder_text(LOCKED, [*binder, "torch"])  # exactly what make lock writes


def test_writing_refuses_an_environment_without_the_declared_pins(tmp_path):
    (tmp_path / "requirements.txt").write_text("numpy==0.0.1\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["numpy"]\n')
    (tmp_path / "binder").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "dgm.book.lock", sys.executable, "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "requirements.txt's pins" in proc.stderr
    assert (
        not (tmp_path / lock.LOCK).exists() and not (tmp_path / lock.BINDER).exists()
    )  # nothing half-written
    with pytest.raises(ValueError, match="lock lacks"):
        lock.binder_text({"numpy": "2.0"}, ["numpy", "scipy"])
    assert json.loads(json.dumps(lock.package_dependencies(ROOT)))[0] == "torch"
