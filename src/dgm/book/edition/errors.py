"""The notebook edition's one exception.

Every module of the edition raises :class:`EditionError` when a chapter uses something the edition
cannot render or the finished build lacks what the edition quotes; the command line turns it into a
one-line message and exit status 1.
"""

from __future__ import annotations


class EditionError(ValueError):
    """A chapter uses something the notebook edition cannot render, or the build lacks a value."""
