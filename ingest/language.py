"""The language of a story, guessed from its text (py3langid, offline).

Only a confident guess is kept: on the 26,533 English training headlines a guess
of another language at >= 0.95 was made 18 times, each a real French, German,
Italian, Spanish, Dutch, Czech, Hungarian, Portuguese or Japanese post; below
that, English headlines full of names and figures start to pass for Nigerian
Pidgin (0.92). No confident guess: None, and normalisation takes the language
declared for the story, else that of the poll's stories where a clear majority of
their confident guesses agree (`poll_language`), else the language the feed
declares: that one is channel-wide and may be missing or wrong (a sample feed
declares none for Portuguese posts, another Kannada for English ones).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

MIN_CONFIDENCE = 0.95
# A poll's language: that of over two thirds of its confident guesses, and of at least three (one
# German headline in an English feed is no German feed; a feed split between two languages has none).
POLL_SHARE = 2 / 3
POLL_MIN_STORIES = 3


@cache
def _identifier() -> LanguageIdentifier:
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of `text`'s language when the guess is confident, else None."""
    if not any(c.isalpha() for c in text):
        return None
    language, confidence = _identifier().classify(text)
    return str(language) if confidence >= MIN_CONFIDENCE else None


def poll_language(guesses: Iterable[str | None]) -> str | None:
    """The language of a clear majority of one poll's confident guesses (None: not guessed), else None."""
    counts = Counter(guess for guess in guesses if guess)
    if not counts:
        return None
    language, stories = counts.most_common(1)[0]
    return language if stories >= POLL_MIN_STORIES and stories > POLL_SHARE * counts.total() else None
