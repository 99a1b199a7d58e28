"""finpulse.terminal: a message printed as written, whatever brackets it holds."""

from __future__ import annotations

from rich.console import Console

from finpulse.terminal import labelled


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
