"""Lines the CLI prints around a message it did not write (an exception's, a report's), and
text from outside (titles, names) made safe to print."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

# C0 and C1 control characters and DEL: ESC (and C1's CSI, OSC) start the terminal's escape
# sequences, which would clear the screen or retitle the window; a tab or line break reads as a space.
_CONTROLS = {c: None for c in (*range(0x20), *range(0x7F, 0xA0))} | {ord(c): " " for c in "\t\n\r"}


def untrusted(value: object, style: str = "", link: str | None = None) -> Text:
    """Text from outside (a feed's title, a source's or subscription's name) for rich output: as
    written, never read as markup ("[/]wire" failed the table), its control characters left out;
    `link`: a web address it opens (a terminal's hyperlink, an escape sequence too)."""
    text = Text(str(value).translate(_CONTROLS), style=style)
    if link:
        text.stylize(Style(link=link.translate(_CONTROLS)))
    return text


def labelled(label: str, message: object, style: str = "red") -> Text:
    """`label` styled, then `message` as written: not read as rich markup, which drops a bracketed
    word ("or remove [subscription.digest]", "[[subscription]]") and fails on "[/path]"."""
    return Text.assemble((label, style), " ", str(message))
