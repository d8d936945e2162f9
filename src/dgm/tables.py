"""Tables of numbers that show themselves as Markdown in a notebook, on the site and in the edition."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """A table of numbers that shows itself as Markdown in a notebook."""

    columns: tuple[str, ...]
    rows: dict[str, tuple[float, ...]]
    digits: int = 4

    def to_markdown(self) -> str:
        """The table as Markdown, numbers rounded to ``digits`` decimals."""
        if any("|" in name for name in (*self.columns, *self.rows)):
            raise ValueError("a '|' in a column or row name would break the Markdown table")
        lines = ["| | " + " | ".join(self.columns) + " |", "|---" * (len(self.columns) + 1) + "|"]
        for name, values in self.rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{v:.{self.digits}f}" for v in values) + " |")
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()
