"""finpulse.terminal: a message printed as written, whatever brackets it holds; text from outside
without its control characters."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from finpulse.terminal import labelled, untrusted


def test_a_message_is_not_read_as_markup() -> None:
    console = Console(width=200, record=True)
    message = "remove [subscription.digest] or [[subscription]]; [bold]; see [/tmp/x]"
    console.print(labelled("error:", message))  # as markup: words dropped, then a MarkupError
    assert console.export_text().strip() == f"error: {message}"
    line = labelled("recommended:", "[min_rise=0.2]", style="green")
    assert (line.plain, [(s.start, s.end, str(s.style)) for s in line.spans]) == (
        "recommended: [min_rise=0.2]",
        [(0, 12, "green")],  # the label alone styled
    )


def test_untrusted_text_is_a_cell_as_written_without_control_characters() -> None:
    table = Table("source", "title")
    name = "[/]wire[red]"  # as a str cell: a MarkupError
    title = "\x1b[2JFed\tcuts\nrates\x1b]0;owned\x07 \x9b31m\x7f[link=https://evil.example]x[/link]"
    table.add_row(untrusted(name), untrusted(title, style="bold", link="https://news.example/a\x1b\\"))
    console = Console(width=200, record=True, force_terminal=True)
    console.print(table)
    shown = console.export_text()
    assert name in shown
    assert "[2JFed cuts rates]0;owned 31m[link=https://evil.example]x[/link]" in shown
    text = untrusted(title, style="bold", link="https://news.example/a\x1b\\")
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text.plain)
    assert [str(s.style) for s in text.spans] == ["link https://news.example/a\\"]
    assert str(text.style) == "bold"
