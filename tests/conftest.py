from __future__ import annotations

import pytest

from bookutils import ROOT, Build, build_book


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Build:
    """The whole book, built once per test session in the smoke profile with -W -n --keep-going."""
    out = tmp_path_factory.mktemp("book")
    # Fresh checkpoints: every chapter trains its models in this build, nothing is reused.
    return build_book(ROOT, out, DGM_PROFILE="smoke", DGM_CHECKPOINT_DIR=str(out / "checkpoints"))
