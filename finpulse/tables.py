"""The CLI's tables: borderless, so that a row reads whole in more terminals (80 columns)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich import box
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text


class _Table(Table):
    """A table whose title takes the console's width: a narrow table's own width wrapped a long
    title (an entity and a date range) into several short lines."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        title, self.title = self.title, None
        try:
            if title:
                style = Style.pick_first(self.title_style, "table.title")
                # As written: a title holds names and searches from outside ("[/]wire" is no markup).
                text = Text(title, style=style) if isinstance(title, str) else title
                yield from console.render(text, options.update(justify="left"))
            yield from super().__rich_console__(console, options)
        finally:
            self.title = title


def compact_table(
    title: str | Text,
    columns: Sequence[str],
    right: Sequence[str] = (),
    wraps: Sequence[str] = (),
    least: Mapping[str, int] | None = None,
) -> Table:
    """Columns in `right` are right-justified; on a narrow terminal the `wraps` columns take more
    lines (a word too long folds), the others are cut. `least`: a wrapping column's narrowest
    width (say a title's, so that it reads as a line, not as a tower of words)."""
    table = _Table(
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
            Text(name),  # a header may be an entity's name: as written, not markup
            justify="right" if name in right else "left",
            no_wrap=not wrap,
            overflow="fold" if wrap else "ellipsis",
            min_width=(least or {}).get(name),
        )
    return table


def fitting_table(
    console: Console,
    title: str | Text,
    rows: Sequence[Mapping[str, RenderableType]],
    drops: Sequence[Sequence[str]],
    right: Sequence[str] = (),
    wraps: Sequence[str] = (),
    least: Mapping[str, int] | None = None,
) -> Table:
    """`rows` (a cell per column) in a compact_table of their columns less the first of `drops`
    that fits the console with nothing cut: every column whole, the wrapping ones at their
    narrowest (the last of `drops` where none does)."""
    # A cut column's narrowest is its longest cell or header: rich measures them by their longest
    # word ("2026-12-07 07:50" as 10, "window end" as 6), so a table of cut cells seemed to fit.
    whole = {
        c: max(len(c), *(console.measure(row[c]).maximum for row in rows)) for c in rows[0] if c not in wraps
    }
    for drop in drops:
        columns = [c for c in rows[0] if c not in drop]
        table = compact_table(title, columns, right=right, wraps=wraps, least={**whole, **(least or {})})
        for row in rows:
            table.add_row(*(row[c] for c in columns))
        if console.measure(table, options=console.options.update_width(1_000)).minimum <= console.width:
            break
    return table
