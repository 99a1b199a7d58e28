"""How counts and ranges read in what people see: "1 alert", "3 alerts", never "3 alert(s)"."""

from __future__ import annotations

from typing import Any


def counted(n: int, noun: str) -> str:
    """`n` and the noun in the number it takes ("1 story", "3 stories", "1,204 alerts")."""
    return f"{n:,} {noun if n == 1 else plural(noun)}"


def plural(noun: str) -> str:
    """English plural of the nouns finpulse counts: a consonant's -y takes -ies, others -s."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"


def range_text(query: Any) -> str:
    """A history query's range, and the words its stories' titles hold when it has a search (the
    terminal's and the API's messages word it alike)."""
    assert query.start is not None  # both set by the query's validator
    assert query.end is not None
    search = getattr(query, "search", None)
    held = f", titles holding {search!r}" if search else ""
    return f"{query.start:%Y-%m-%d %H:%M} – {query.end:%Y-%m-%d %H:%M} UTC{held}"
