"""dgm.tables: Markdown tables of numbers."""

from __future__ import annotations

import pytest

from dgm.tables import Table


def test_table_refuses_names_that_break_markdown():
    assert Table(("a",), {"r": (1.0,)}, digits=2).to_markdown().splitlines()[-1] == "| r | 1.00 |"
    with pytest.raises(ValueError, match="Markdown"):
        Table(("p(z|x)",), {"r": (1.0,)}).to_markdown()
