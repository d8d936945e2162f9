"""dgm.tables: Markdown tables of numbers."""

from __future__ import annotations

import pytest

from dgm.tables import Table


def test_table_refuses_names_that_break_markdown():
    assert Table(("a",), {"r": (1.0,)}, digits=2).to_markdown().splitlines()[-1] == "| r | 1.00 |"
    with pytest.raises(ValueError, match="Markdown"):
        Table(("p(z|x)",), {"r": (1.0,)}).to_markdown()


def test_cells_can_be_text_or_empty_and_rows_must_fill_the_columns():
    table = Table(("mean", "SE"), {"K = 1": (0.5, None), "max \\|z\\|": ("1.2 ± 0.1", 3)}, digits=1)
    assert table.to_markdown().splitlines() == [
        "| | mean | SE |",
        "|---|---|---|",
        "| K = 1 | 0.5 |  |",
        "| max \\|z\\| | 1.2 ± 0.1 | 3.0 |",
    ]
    with pytest.raises(ValueError, match="2 cells for 1 columns"):
        Table(("a",), {"r": (1.0, 2.0)}).to_markdown()
    with pytest.raises(ValueError, match="unescaped"):
        Table(("a",), {"r": ("x | y",)}).to_markdown()
