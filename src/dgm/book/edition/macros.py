"""The book's math macros: read from ``_config.yml`` and expanded, so equations render without them.

Colab, JupyterLab and Binder do not know the MathJax macros of the site (``\\bx``, ``\\E``, ...):
:func:`book_macros` reads them, :func:`expand_macros` replaces each use outside code by its
definition, and :func:`undefined_macros` lists any left (the edition's test: none).
"""

from __future__ import annotations

import re
from typing import Any

from dgm.book.edition.errors import EditionError


def book_macros(config: dict[str, Any]) -> dict[str, str]:
    """The MathJax macros of ``_config.yml`` (``sphinx.config.mathjax3_config.tex.macros``)."""
    macros = ((config.get("sphinx") or {}).get("config") or {}).get("mathjax3_config") or {}
    macros = ((macros.get("tex") or {}).get("macros")) or {}
    out = {}
    for name, value in macros.items():
        if not isinstance(value, str):
            raise EditionError(
                f"macro \\{name}: only macros without arguments can be expanded, got {value!r}"
            )
        out[str(name)] = value
    return out


def expand_macros(text: str, macros: dict[str, str]) -> str:
    """Replace each book macro ``\\name`` (a whole control word) by ``{definition}``, outside code."""
    if not macros:
        return text
    word = re.compile(
        r"\\(" + "|".join(sorted(map(re.escape, macros), key=len, reverse=True)) + r")(?![A-Za-z])"
    )
    parts = re.split(r"(^```.*?^```[ \t]*$|`[^`\n]+`)", text, flags=re.S | re.M)
    for k in range(0, len(parts), 2):  # even parts are prose, odd ones code
        parts[k] = word.sub(lambda m: "{" + macros[m.group(1)] + "}", parts[k])
    return "".join(parts)


def undefined_macros(text: str, macros: dict[str, str]) -> list[str]:
    """The book macros still used in ``text`` outside code (the edition's test: none)."""
    word = re.compile(r"\\(" + "|".join(map(re.escape, macros)) + r")(?![A-Za-z])")
    prose = re.sub(r"^```.*?^```[ \t]*$|`[^`\n]+`", "", text, flags=re.S | re.M)
    return sorted(set(word.findall(prose)))
