"""Tables that show themselves as Markdown in a notebook, on the site and in the notebook edition.

The one table writer of the book: the chapters' result tables and the run card use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Cell = float | int | str | None
_UNESCAPED_BAR = re.compile(r"(?<!\\)\|")


@dataclass(frozen=True)
class Table:
    """Rows of cells under named columns; numbers are rounded to ``digits`` decimals.

    A cell is a number, a string shown as it is (for example ``"0.12 ± 0.01"``) or ``None`` (empty).
    """

    columns: tuple[str, ...]
    rows: dict[str, tuple[Cell, ...]]
    digits: int = 4

    def _cell(self, value: Cell) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        return f"{value:.{self.digits}f}"

    def to_markdown(self) -> str:
        """The table as Markdown."""
        for name in (
            *self.columns,
            *self.rows,
            *(c for r in self.rows.values() for c in r if isinstance(c, str)),
        ):
            if _UNESCAPED_BAR.search(name):
                raise ValueError(f"an unescaped '|' in {name!r} would break the Markdown table; write '\\|'")
        for name, values in self.rows.items():
            if len(values) != len(self.columns):
                raise ValueError(f"row {name!r} has {len(values)} cells for {len(self.columns)} columns")
        lines = ["| | " + " | ".join(self.columns) + " |", "|---" * (len(self.columns) + 1) + "|"]
        for name, values in self.rows.items():
            lines.append(f"| {name} | " + " | ".join(self._cell(v) for v in values) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()
