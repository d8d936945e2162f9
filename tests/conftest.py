from __future__ import annotations

import pytest

from bookutils import ROOT, Build, build_book


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Build:
    """The whole book, built once per test session in the smoke profile with -W -n --keep-going."""
    out = tmp_path_factory.mktemp("book")
    # Fresh checkpoints: every chapter trains its models in this build, nothing is reused.
    return build_book(ROOT, out, DGM_PROFILE="smoke", DGM_CHECKPOINT_DIR=str(out / "checkpoints"))


@pytest.fixture(scope="session")
def edition(built_book, tmp_path_factory):
    """The notebook edition made from the smoke build, as ``make notebooks`` makes it."""
    from dgm.book.edition import write_edition

    from editionutils import Edition

    assert built_book.returncode == 0, built_book.log[-3000:]
    out = tmp_path_factory.mktemp("edition")
    written = write_edition(ROOT, out, built_book.out / "_build", ref="0123456789abcdef")
    return Edition(out, tuple(written))


@pytest.fixture(scope="session")
def homework_edition(built_book, tmp_path_factory):
    """The homework edition made from the smoke build, as ``make notebooks`` makes it."""
    from dgm.book.edition import write_edition

    from editionutils import Edition

    assert built_book.returncode == 0, built_book.log[-3000:]
    out = tmp_path_factory.mktemp("homework")
    written = write_edition(ROOT, out, built_book.out / "_build", ref="0123456789abcdef", homework=True)
    return Edition(out, tuple(written))


@pytest.fixture(scope="session")
def reader_env(tmp_path_factory):
    """A virtual environment with only what a reader's has: the package, its dependencies, a kernel."""
    from editionutils import make_reader_env

    return make_reader_env(tmp_path_factory.mktemp("reader"))
