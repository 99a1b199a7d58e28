"""Markdown tables, for the reports finpulse writes (model card, backtest report)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def cell(text: str) -> str:
    """A table cell's text: a `|` in it is escaped, or it would end the cell (topic names
    such as "Fed | Central Banks" hold one)."""
    return text.replace("|", r"\|")


def table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table: header, rule, one line per row of cells."""
    lines = [f"| {' | '.join(cell(c) for c in cells)} |" for cells in (columns, *rows)]
    return [lines[0], "|---" * len(columns) + "|", *lines[1:]]
