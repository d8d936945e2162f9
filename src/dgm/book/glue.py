"""``glue`` for chapters that also run outside the book (Colab, Binder, Live Code).

In the book build myst-nb is installed and :func:`glue` is ``myst_nb.glue``: the value is stored
for ``{glue:text}`` roles in the page's text. Where myst-nb is not installed (a notebook of the
edition in Colab or Binder, a Live Code kernel) it does nothing unless ``display=True``, when it
shows the value as the cell's output: the number the text quotes is then in the reader's own
variables, and the notebook runs on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def glue(name: str, value: Any, display: bool = True) -> None:
    """Store ``value`` under ``name`` for the page's text (myst-nb); elsewhere show it or do nothing."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a glue name must be a non-empty string, got {name!r}")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_glue(name, value, display=display)


def glue_all(values: Mapping[str, Any]) -> None:
    """Glue every value of ``values`` (an experiment's ``chapter_values()``, a run card's ``as_dict()``),
    unshown."""
    for name, value in values.items():
        glue(name, value, display=False)
