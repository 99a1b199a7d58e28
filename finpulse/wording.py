"""How counts read in what people see: "1 alert", "3 alerts", never "3 alert(s)"."""

from __future__ import annotations


def counted(n: int, noun: str) -> str:
    """`n` and the noun in the number it takes ("1 story", "3 stories", "1,204 alerts")."""
    return f"{n:,} {noun if n == 1 else plural(noun)}"


def plural(noun: str) -> str:
    """English plural of the nouns finpulse counts: a consonant's -y takes -ies, others -s."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"
