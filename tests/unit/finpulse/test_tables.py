"""finpulse.tables: the CLI's borderless tables, as a terminal of 80 columns shows them."""

from __future__ import annotations

from rich.console import Console

from finpulse.tables import compact_table, first_fitting

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

    def table(drop: tuple[str, ...]) -> object:
        columns = [
            c for c in ("published (UTC)", "score", "source", "topic", "tickers", "title") if c not in drop
        ]
        made = compact_table("headlines", columns, wraps=("title",), least={"title": 36})
        cells = {
            "published (UTC)": "2026-12-06 11:49", "score": "-0.86", "source": "wire-a",
            "topic": "Company | Product News", "tickers": "ACME",
        }  # fmt: skip
        made.add_row(*(cells.get(c, title) for c in columns))
        return made

    console = Console(width=80)
    narrow = first_fitting(console, (table(drop) for drop in ((), ("topic",), ("topic", "source"))))
    assert [c.header for c in narrow.columns] == ["published (UTC)", "score", "source", "tickers", "title"]
    assert "…" not in "\n".join(_printed(narrow))
    wide = first_fitting(Console(width=160), (table(drop) for drop in ((), ("topic",))))
    assert len(wide.columns) == 6
    assert title in "\n".join(_printed(wide, 160))  # the title on one line
