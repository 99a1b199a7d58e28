"""Text normalisation shared by training and inference (one rule, both sides).

News posts carry HTML entities (`&amp;`), t.co links and runs of whitespace.
Links hold no topic or sentiment but cost ~20 tokens each, so every URL
becomes the single word `http`; entities are decoded; control characters and
whitespace runs collapse to one space. Changing this changes the model, so
`NORMALISATION_VERSION` is part of its config and version hash.
"""

from __future__ import annotations

import html
import re
from typing import Final

NORMALISATION_VERSION: Final[int] = 1

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


def normalize_text(text: str, max_chars: int | None = None) -> str:
    """Decode entities, replace links by `http`, collapse whitespace; cap at max_chars.

    The cap comes first so a megabyte of text costs no more than a headline.
    """
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars]
    # Twice: feeds often double-escape (`&amp;amp;`).
    text = html.unescape(html.unescape(text)) if "&" in text else text
    text = _URL.sub(" http ", text)
    return _SPACE.sub(" ", text).strip()


def group_key(text: str) -> str:
    """Near-duplicate key: the same post re-shared with another link or casing.

    Used to keep copies of one post on one side of the validation split.
    """
    return re.sub(r"\W+", " ", normalize_text(text).replace("http", " ")).strip().lower()
