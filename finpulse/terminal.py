"""Lines the CLI prints around a message it did not write (an exception's, a report's)."""

from __future__ import annotations

from rich.text import Text


def labelled(label: str, message: object, style: str = "red") -> Text:
    """`label` styled, then `message` as written: not read as rich markup, which drops a bracketed
    word ("or remove [subscription.digest]", "[[subscription]]") and fails on "[/path]"."""
    return Text.assemble((label, style), " ", str(message))
