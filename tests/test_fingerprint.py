"""dgm.fingerprint: checkpoint keys follow the code that can change a model, and only that code."""

from __future__ import annotations

import hashlib
import shutil

from dgm.fingerprint import PACKAGE, hash_source, model_source_fingerprint


def test_book_tooling_is_not_part_of_the_model_fingerprint(tmp_path):
    package = tmp_path / "dgm"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    before = model_source_fingerprint(package)
    assert before == model_source_fingerprint(PACKAGE)  # the path does not matter, the content does
    (package / "book" / "colab.py").write_text("# edited\n", encoding="utf-8")
    assert model_source_fingerprint(package) == before, "editing the book tooling must not retrain"
    with (package / "experiments" / "vae_2d.py").open("a") as f:
        f.write("\n# an experiment edited\n")
    after_experiment = model_source_fingerprint(package)
    assert after_experiment != before
    with (package / "vae.py").open("a") as f:
        f.write("\n# a core module edited\n")
    assert model_source_fingerprint(package) not in (before, after_experiment)


def test_hash_source_sees_names_and_bytes(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")

    def digest(skip=()):
        h = hashlib.sha256()
        hash_source(h, tmp_path, "pkg", skip=skip)
        return h.hexdigest()

    first = digest()
    (tmp_path / "a.py").rename(tmp_path / "b.py")  # same bytes, another module
    assert digest() != first
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.py").write_text("y = 2\n")
    with_sub = digest()
    assert with_sub != digest(skip=("sub",)) and digest(skip=("sub",)) == digest(skip=("sub", "other"))
