"""The notebook edition: every chapter as a plain ``.ipynb`` that reads like its page and runs anywhere.

The chapters are MyST Markdown notebooks; Colab, JupyterLab and Binder know neither MyST's roles and
directives nor the book's math macros. :func:`edition_notebook` turns one chapter into a notebook
whose Markdown cells hold only CommonMark with HTML (``<details>``) and math, where

- theorems, lemmas, definitions, remarks and exercises are titled blocks (block quotes) with the
  numbers they have on the site, proofs end with ∎, solutions sit behind ``<details>``, and
  admonitions are block quotes with their title;
- ``literalinclude`` is the code it shows, read from the package source of this checkout;
- citations are "(Author, Year)" with the chapter's references listed at its end, and cross
  references are links to the published pages;
- the book's math macros (``_config.yml``) are expanded, so every equation renders without them;
- a number the page glues into its text is the value of the build that produced the site, and one
  line at the top says which profile and device made it and that running the cells gives your own.

Numbers, titles and glued values are read from a finished build (``_build/html`` and
``_build/jupyter_execute``): the edition is made after ``make book``, from the same commit.
Every code cell is kept as it is; a setup cell that installs ``dgm`` only where it is missing (Colab)
comes first. :func:`write_edition` writes one notebook per notebook chapter of ``_toc.yml``, with
the repository's layout, plus the Binder environment of the ``notebooks`` branch.

Command line (what ``make notebooks`` and the publish workflow run)::

    python -m dgm.book.edition ROOT OUT [--build ROOT/_build] [--ref REF]

The package, one job a module, arrows one way: :mod:`~dgm.book.edition.errors` (:class:`EditionError`),
:mod:`~dgm.book.edition.site` (what the build knows), :mod:`~dgm.book.edition.bibliography`,
:mod:`~dgm.book.edition.macros`, :mod:`~dgm.book.edition.context`, :mod:`~dgm.book.edition.blocks`
and :mod:`~dgm.book.edition.myst` (MyST -> Markdown), :mod:`~dgm.book.edition.notebook` (one
chapter), :mod:`~dgm.book.edition.writer` (the whole edition) and ``__main__`` (the command line).
This module re-exports their public names.
"""

from __future__ import annotations

from dgm.book.edition.bibliography import Bibliography
from dgm.book.edition.blocks import literal_include, python_object_source, quote
from dgm.book.edition.context import Context
from dgm.book.edition.errors import EditionError
from dgm.book.edition.macros import book_macros, expand_macros, undefined_macros
from dgm.book.edition.myst import (
    ADMONITIONS,
    CODE_SPAN,
    DIRECTIVE,
    EXPLICIT,
    FENCE,
    MYST_LEFTOVERS,
    ROLE,
    STATEMENTS,
    TARGET,
    convert_markdown,
    render_directive,
    render_inline,
    render_role,
)
from dgm.book.edition.notebook import COLAB_METADATA, NOTICE_CELL_ID, edition_notebook, notice
from dgm.book.edition.site import BuildInfo, Target, format_glued, glued_values, site_index
from dgm.book.edition.writer import write_edition

__all__ = [
    "ADMONITIONS",
    "CODE_SPAN",
    "COLAB_METADATA",
    "DIRECTIVE",
    "EXPLICIT",
    "FENCE",
    "MYST_LEFTOVERS",
    "NOTICE_CELL_ID",
    "ROLE",
    "STATEMENTS",
    "TARGET",
    "Bibliography",
    "BuildInfo",
    "Context",
    "EditionError",
    "Target",
    "book_macros",
    "convert_markdown",
    "edition_notebook",
    "expand_macros",
    "format_glued",
    "glued_values",
    "literal_include",
    "notice",
    "python_object_source",
    "quote",
    "render_directive",
    "render_inline",
    "render_role",
    "site_index",
    "undefined_macros",
    "write_edition",
]
