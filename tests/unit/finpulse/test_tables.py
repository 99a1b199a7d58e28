"""finpulse.tables: the CLI's borderless tables, as a terminal of 80 columns shows them."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from finpulse.tables import compact_table, fitting_table

TITLE = "alerts of acme-desk on ticker:ACME, newest first, 2026-11-30 – 2026-12-07"


def _printed(table: object, width: int = 80) -> list[str]:
    console = Console(width=width, record=True)
    console.print(table)
    return [line.rstrip() for line in console.export_text().splitlines()]


def test_a_long_title_takes_the_terminals_width_not_its_narrow_tables() -> None:
    table = compact_table(TITLE, ("state", "p"))
    table.add_row("fired", "1e-9")
    lines = _printed(table)
    assert lines[0] == TITLE  # one line, though the table is 12 columns wide
    assert max(len(line) for line in lines[1:]) < 20


def test_the_first_table_that_fits_with_nothing_cut() -> None:
    title = "The Fed holds rates steady and signals two cuts later this year as inflation eases"

    rows = [
        {
            "published (UTC)": "2026-12-06 11:49", "score": "-0.86", "source": "wire-a",
            "topic": "Company | Product News", "tickers": "ACME", "title": title,
        }
    ]  # fmt: skip

    def table(console: Console, drops: tuple[tuple[str, ...], ...]) -> Table:
        return fitting_table(console, "headlines", rows, drops, wraps=("title",), least={"title": 36})

    console = Console(width=80)
    narrow = table(console, ((), ("topic",), ("topic", "source")))
    assert [str(c.header) for c in narrow.columns] == [
        "published (UTC)",
        "score",
        "source",
        "tickers",
        "title",
    ]
    assert "…" not in "\n".join(_printed(narrow))
    wide = table(Console(width=160), ((), ("topic",)))
    assert len(wide.columns) == 6
    assert title in "\n".join(_printed(wide, 160))  # the title on one line


def test_cells_that_do_not_wrap_count_whole() -> None:
    """The demo's alerts at 80 columns: the alert's id goes rather than every cell being cut."""
    rows = [
        {
            "sent (UTC)": "2026-12-07 07:50", "window end": "07:35", "state": state, "negative": negative,
            "p": p, "verdict": "", "alert": alert_id,
        }
        for state, negative, p, alert_id in (
            ("resolved", "12% vs 25%", "1", "c5e8f6a7a9b1"), ("fired", "69% vs 6%", "8.2e-11", "4ee9d4224211")
        )
    ]  # fmt: skip
    console = Console(width=80)
    table = fitting_table(console, "alerts", rows, ((), ("alert",), ("alert", "window end")))
    assert "alert" not in [str(c.header) for c in table.columns]
    printed = "\n".join(_printed(table))
    assert "…" not in printed
    assert "2026-12-07 07:50" in printed
