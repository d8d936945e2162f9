"""Citations: the book's ``references.bib`` as "(Author, Year)" labels and a reference list.

A chapter's ``{cite}`` roles become the labels the site's author-year style shows, and the keys it
cited are listed at the end of its notebook; :class:`Bibliography` reads the BibTeX file with
pybtex and writes both, BibTeX's LaTeX accents turned into Unicode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dgm.book.edition.errors import EditionError


def _latex_text(value: str) -> str:
    """BibTeX field text -> Unicode without braces (``Ga{\\"e}l`` -> ``Gaël``)."""
    import codecs

    import latexcodec  # noqa: F401  (registers the codec)

    return codecs.decode(value, "ulatex").replace("{", "").replace("}", "")


@dataclass
class Bibliography:
    """The book's ``references.bib``: "(Author, Year)" labels and reference-list entries."""

    entries: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> Bibliography:
        from pybtex.database import parse_file

        return cls(dict(parse_file(str(path)).entries))

    def entry(self, key: str):
        if key not in self.entries:
            raise EditionError(f"citation {key!r} is not in references.bib")
        return self.entries[key]

    def label(self, key: str) -> str:
        """``Burda et al., 2016`` (one, two or three and more authors), as the site's author-year
        style."""
        e = self.entry(key)
        people = e.persons.get("author") or e.persons.get("editor") or []
        last = [_latex_text(" ".join(p.prelast_names + p.last_names)) for p in people]
        if not last:
            names = _latex_text(e.fields.get("organization", e.fields.get("title", key)))
        elif len(last) == 1:
            names = last[0]
        elif len(last) == 2:
            names = f"{last[0]} and {last[1]}"
        else:
            names = f"{last[0]} et al."
        return f"{names}, {e.fields.get('year', 'n.d.')}"

    def reference(self, key: str) -> str:
        """One entry of the reference list, in Markdown."""
        e = self.entry(key)
        people = e.persons.get("author") or e.persons.get("editor") or []
        authors = ", ".join(
            _latex_text(" ".join(p.first_names + p.middle_names + p.prelast_names + p.last_names))
            for p in people
        )
        title = _latex_text(e.fields.get("title", key))
        venue = next(
            (
                e.fields[k]
                for k in ("journal", "booktitle", "publisher", "howpublished", "school")
                if k in e.fields
            ),
            "",
        )
        parts = [f"{authors} ({e.fields.get('year', 'n.d.')}). *{title}*."]
        if venue:
            parts.append(_latex_text(venue) + ".")
        link = e.fields.get("url") or (f"https://doi.org/{e.fields['doi']}" if "doi" in e.fields else "")
        if link:
            parts.append(f"<{link}>")
        return " ".join(parts)
