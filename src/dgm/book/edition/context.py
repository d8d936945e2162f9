"""What converting one chapter needs: its paths, the site's labels, glued values, citations, macros.

A :class:`Context` is made once per chapter by the notebook builder and handed to every MyST
renderer; it resolves labels to links into the published site, names the chapter in error
messages, and collects the keys the chapter cited for its reference list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dgm.book.edition.bibliography import Bibliography
from dgm.book.edition.errors import EditionError
from dgm.book.edition.site import Target


@dataclass
class Context:
    """What converting one chapter needs, and what it collects (the keys it cited)."""

    root: Path
    chapter: Path
    docname: str
    base_url: str
    index: dict[str, Target]
    values: dict[str, str]
    bib: Bibliography
    macros: dict[str, str]
    cited: list[str] = field(default_factory=list)
    homework: Any = None  # a dgm.book.edition.homework.HomeworkCells in the homework edition

    def where(self) -> str:
        return str(self.chapter.relative_to(self.root))

    def url(self, target: Target) -> str:
        return f"{self.base_url}{target.page}.html" + (f"#{target.anchor}" if target.anchor else "")

    def target(self, label: str, role: str) -> Target:
        if label not in self.index:
            raise EditionError(f"{self.where()}: {{{role}}}`{label}` names no label of the built site")
        return self.index[label]
