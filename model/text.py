"""Text normalisation shared by training and inference (one rule, both sides).

News posts carry HTML entities (`&amp;`), t.co links and runs of whitespace.
Links hold no topic or sentiment but cost ~20 tokens each, so every URL
becomes the single word `http`; entities are decoded; control characters and
whitespace runs collapse to one space; lone surrogates become U+FFFD. Changing
this changes the model, so `NORMALISATION_VERSION` is part of its config and
version hash.
"""

from __future__ import annotations

import html
import re
from typing import Final

from finpulse.unicode import without_surrogates

NORMALISATION_VERSION: Final[int] = 1

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


def cut_raw(text: str, max_chars: int) -> tuple[str, bool]:
    """At most max_chars of text from its first visible character, and whether visible text
    was cut off: normalising a megabyte then costs no more than a headline, and blanks that
    normalising drops anyway count neither against the cap nor as text lost to it."""
    lead = _SPACE.match(text)
    start = lead.end() if lead else 0
    end = start + max_chars
    return text[start:end], len(text) > end and _SPACE.fullmatch(text, end) is None


def normalize_text(text: str, max_chars: int | None = None) -> str:
    """Decode entities, replace links by `http`, collapse whitespace; cap at max_chars
    (first, see cut_raw)."""
    if max_chars is not None:
        text, _ = cut_raw(text, max_chars)
    # Lone surrogates fail the tokenizer. Such texts never reached training: NORMALISATION_VERSION stays.
    text = without_surrogates(text)
    # Twice: feeds often double-escape (`&amp;amp;`).
    text = html.unescape(html.unescape(text)) if "&" in text else text
    text = _URL.sub(" http ", text)
    return _SPACE.sub(" ", text).strip()


def group_key(text: str) -> str:
    """Near-duplicate key: the same post re-shared with another link or casing.

    Used to keep copies of one post on one side of the validation split.
    """
    return re.sub(r"\W+", " ", normalize_text(text).replace("http", " ")).strip().lower()
