"""Stale outputs are impossible: the execution cache follows src/dgm, requirements and profile."""

from __future__ import annotations

import os

import pytest

from dgm.book.build import FINGERPRINT_NAME, fingerprint, guard_cache

from bookutils import build_book, make_mini_book


def _tree(tmp_path):
    root = tmp_path / "root"
    (root / "src" / "dgm").mkdir(parents=True)
    (root / "src" / "dgm" / "mod.py").write_text("X = 1\n")
    (root / "requirements.txt").write_text("numpy==1\n")
    return root


def test_fingerprint_follows_source_requirements_and_profile(tmp_path):
    root = _tree(tmp_path)
    env = {"DGM_PROFILE": "smoke"}
    base = fingerprint(root, env)
    assert fingerprint(root, env) == base
    (root / "src" / "dgm" / "__pycache__").mkdir()
    (root / "src" / "dgm" / "__pycache__" / "mod.pyc").write_bytes(b"junk")
    assert fingerprint(root, env) == base, "bytecode caches must not count"
    assert fingerprint(root, {"DGM_PROFILE": "cpu"}) != base
    assert fingerprint(root, {**env, "DGM_DATASET": "patches"}) != base
    (root / "requirements.txt").write_text("numpy==2\n")
    changed_req = fingerprint(root, env)
    assert changed_req != base
    (root / "src" / "dgm" / "new.py").write_text("")
    assert fingerprint(root, env) != changed_req


def test_fingerprint_rejects_bad_profile(tmp_path):
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        fingerprint(_tree(tmp_path), {"DGM_PROFILE": "fast"})


def test_guard_keeps_cache_when_nothing_changed_and_drops_it_otherwise(tmp_path):
    root = _tree(tmp_path)
    build = tmp_path / "_build"
    env = {"DGM_PROFILE": "smoke"}
    assert guard_cache(root, build, env) is True  # first build: no stamp
    (build / ".jupyter_cache").mkdir()
    (build / ".jupyter_cache" / "global.db").write_text("cached")
    (build / ".doctrees").mkdir()
    assert guard_cache(root, build, env) is False
    assert (build / ".jupyter_cache" / "global.db").exists()
    (root / "src" / "dgm" / "mod.py").write_text("X = 2\n")
    assert guard_cache(root, build, env) is True
    assert not (build / ".jupyter_cache").exists()
    assert not (build / ".doctrees").exists(), "Sphinx would skip re-reading unchanged chapters"
    assert (build / FINGERPRINT_NAME).read_text().strip() == fingerprint(root, env)
    assert not list(build.glob("*.tmp")), "no half-written stamp left behind"


def test_unstamped_cache_is_not_trusted(tmp_path):
    root = _tree(tmp_path)
    build = tmp_path / "_build"
    (build / ".jupyter_cache").mkdir(parents=True)
    assert guard_cache(root, build, {"DGM_PROFILE": "smoke"}) is True
    assert not (build / ".jupyter_cache").exists()


@pytest.mark.book
def test_real_builds_reexecute_exactly_when_inputs_change(tmp_path):
    counter = tmp_path / "executions.txt"
    body = (
        "# Counter\n\n```{code-cell} ipython3\n"
        f"with open({str(counter)!r}, 'a') as f:\n    f.write('run\\n')\n```\n"
    )
    root = make_mini_book(tmp_path / "src", {"counter": body})
    out = tmp_path / "out"

    def runs() -> int:
        return len(counter.read_text().splitlines()) if counter.exists() else 0

    for expected, change in [
        (1, None),  # cold build executes
        (1, None),  # nothing changed: nothing re-executes
        (2, lambda: (root / "src" / "dgm" / "extra.py").write_text("Y = 1\n")),  # package changed
        (2, None),
        (3, lambda: (root / "requirements.txt").write_text("numpy\nscipy\n")),  # pins changed
    ]:
        if change:
            change()
        b = build_book(root, out, DGM_PROFILE="smoke")
        assert b.returncode == 0, b.log[-3000:]
        assert runs() == expected, b.log[-3000:]
    b = build_book(root, out, DGM_PROFILE="cpu")  # profile changed
    assert b.returncode == 0 and runs() == 4


def test_fingerprint_ignores_editor_files_and_spaces_and_refuses_a_bogus_data_set(tmp_path):
    root = _tree(tmp_path)
    env = {"DGM_PROFILE": "smoke", "DGM_DATASET": "patches", "DGM_DATA_DIR": str(tmp_path / "data")}
    base = fingerprint(root, env)
    (root / "src" / "dgm" / ".mod.py.swp").write_bytes(b"vim swap")
    (root / "src" / "dgm" / "mod.py~").write_text("X = 0\n")
    assert fingerprint(root, env) == base
    assert fingerprint(root, {**env, "DGM_DATASET": " patches "}) == base
    with pytest.raises(ValueError, match="'bogus' is not a data set"):
        fingerprint(root, {**env, "DGM_DATASET": "bogus"})


def test_fingerprint_follows_the_imported_package_and_the_data_on_disk(tmp_path, monkeypatch):
    from dgm.book import build as bookbuild
    from dgm.cifar10 import CIFAR10

    root = _tree(tmp_path)
    env = {"DGM_PROFILE": "cpu", "DGM_DATA_DIR": str(tmp_path / "data")}
    base = fingerprint(root, env)
    other = tmp_path / "other" / "dgm"  # the dgm an environment of another checkout imports
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("")
    monkeypatch.setattr(bookbuild, "imported_package", lambda: other)
    elsewhere = fingerprint(root, env)
    assert elsewhere != base
    (other / "__init__.py").write_text("# edited\n")
    assert fingerprint(root, env) != elsewhere  # its edits count too
    monkeypatch.undo()
    (tmp_path / "data").mkdir()
    with open(tmp_path / "data" / CIFAR10.filename, "wb") as f:  # the archive arrives (sparse file)
        f.truncate(CIFAR10.size)
    assert fingerprint(root, env) != base


def test_a_bogus_setting_wipes_nothing_and_a_second_build_is_refused(tmp_path, monkeypatch, capsys):
    from dgm.book import build as bookbuild

    build_dir = tmp_path / "out" / "_build"
    (build_dir / ".jupyter_cache").mkdir(parents=True)
    (build_dir / ".jupyter_cache" / "global.db").write_text("cached")
    monkeypatch.setenv("DGM_DATASET", "bogus")
    assert bookbuild.build(tmp_path, tmp_path / "out") == 2
    assert "bogus" in capsys.readouterr().err
    assert (build_dir / ".jupyter_cache" / "global.db").exists()
    monkeypatch.delenv("DGM_DATASET")
    held = bookbuild._lock(build_dir)
    try:
        assert bookbuild.build(tmp_path, tmp_path / "out") == 2
        assert f"pid {os.getpid()}" in capsys.readouterr().err
    finally:
        held.close()


def test_a_damaged_cache_entry_is_dropped_with_a_message(tmp_path, capsys):
    from dgm.book.build import drop_damaged_cache

    build_dir = tmp_path / "_build"
    entry = build_dir / ".jupyter_cache" / "executed" / "abc"
    entry.mkdir(parents=True)
    (entry / "base.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    (build_dir / ".doctrees").mkdir()
    assert drop_damaged_cache(build_dir) is False
    (entry / "base.ipynb").write_text('{"cells": [{"cell_ty')  # truncated
    assert drop_damaged_cache(build_dir) is True
    assert not (build_dir / ".jupyter_cache").exists() and not (build_dir / ".doctrees").exists()
    assert "damaged cache entry" in capsys.readouterr().out


GRANDCHILD = """
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c",
    "import time, sys\\nwhile True:\\n    open(sys.argv[1], 'a').write('x')\\n    time.sleep(0.05)",
    sys.argv[1]])
time.sleep(120)
"""


def test_a_signal_to_the_build_stops_its_children_too(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    log = tmp_path / "written.txt"
    wrapper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from dgm.book.build import _run_forwarding_signals as r; "
            f"sys.exit(r([sys.executable, '-c', {GRANDCHILD!r}, {str(log)!r}]))",
        ]
    )
    deadline = time.monotonic() + 30
    while not (log.exists() and log.stat().st_size > 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.exists(), "the grandchild never started"
    wrapper.send_signal(signal.SIGTERM)
    assert wrapper.wait(timeout=30) == 128 + signal.SIGTERM
    time.sleep(0.5)
    size = log.stat().st_size
    time.sleep(0.5)
    assert log.stat().st_size == size, "a child of the build kept writing after the build was stopped"
