"""How counts read in what people see: "1 alert", "3 alerts", never "3 alert(s)"."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun in the number it takes: `counted(1, "story", "stories")` is "1 story";
    thousands are grouped ("1,204 alerts")."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
