"""Stale outputs are impossible: the execution cache follows src/dgm, requirements and profile."""

from __future__ import annotations

import pytest

from bookutils import build_book, make_mini_book
from dgm.bookbuild import FINGERPRINT_NAME, fingerprint, guard_cache


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
        (1, None),                                   # cold build executes
        (1, None),                                   # nothing changed: nothing re-executes
        (2, lambda: (root / "src" / "dgm" / "extra.py").write_text("Y = 1\n")),  # package changed
        (2, None),
        (3, lambda: (root / "requirements.txt").write_text("numpy\nscipy\n")),   # pins changed
    ]:
        if change:
            change()
        b = build_book(root, out, DGM_PROFILE="smoke")
        assert b.returncode == 0, b.log[-3000:]
        assert runs() == expected, b.log[-3000:]
    b = build_book(root, out, DGM_PROFILE="cpu")                                 # profile changed
    assert b.returncode == 0 and runs() == 4
