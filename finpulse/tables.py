"""The CLI's tables: borderless, so that a row reads whole in more terminals (80 columns)."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.table import Table


def compact_table(
    title: str, columns: Sequence[str], right: Sequence[str] = (), wraps: Sequence[str] = ()
) -> Table:
    """Columns in `right` are right-justified; on a narrow terminal the `wraps` columns take more
    lines (a word too long folds), the others are cut."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
        pad_edge=False,
        collapse_padding=True,
    )
    for name in columns:
        wrap = name in wraps
        table.add_column(
            name,
            justify="right" if name in right else "left",
            no_wrap=not wrap,
            overflow="fold" if wrap else "ellipsis",
        )
    return table
