"""One fingerprint of the package source, for checkpoint keys and for the book's execution cache."""

from __future__ import annotations

import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
#: Subpackages that build, export or extend the book: they cannot change a trained model.
TOOLING = ("book",)


def hash_source(h, folder: Path, label: str, skip: tuple[str, ...] = ()) -> None:
    """Feed every ``*.py`` under ``folder`` (path and bytes), but those under the subfolders
    ``skip``, to ``h``."""
    for p in sorted(q for q in Path(folder).rglob("*.py") if "__pycache__" not in q.parts):
        rel = p.relative_to(folder)
        if rel.parts[0] in skip:
            continue
        h.update(f"{label}/{rel.as_posix()}\0".encode())
        h.update(p.read_bytes())
        h.update(b"\0")


def model_source_fingerprint(package: Path = PACKAGE) -> str:
    """SHA-256 of the core and experiment modules of ``dgm`` (not the book tooling): a change retrains."""
    h = hashlib.sha256()
    hash_source(h, package, "dgm", skip=TOOLING)
    return h.hexdigest()
