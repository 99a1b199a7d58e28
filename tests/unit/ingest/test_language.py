"""A story's language: guessed from its text when confident, else its poll's, else as declared."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from finpulse.settings import IngestSettings, ModelSettings
from ingest.cli import languages_text
from ingest.language import detect_language, poll_language
from ingest.normalize import RawEntry, normalize_entries, normalize_entry
from ingest.rss import parse_feed
from ingest.sources import FeedSource
from model.text import normalize_text

FEEDS = IngestSettings().feeds_dir / "real-world"
SOURCE = FeedSource(name="test", url="https://example.com/feed")
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _languages(feed: str) -> list[str | None]:
    parsed = parse_feed((FEEDS / feed).read_bytes(), SOURCE)
    return [normalize_entry(raw, fetched_at=NOW).language for raw in parsed.entries]


def test_english_headlines_are_almost_never_taken_for_another_language() -> None:
    # The labelled headlines are English but for a handful of posts in French, German, Italian...
    data = ModelSettings().train_data_dir
    texts = [t for task in ("topic", "sentiment") for t in pd.read_csv(data / task / "train.csv")["text"]]
    guesses = [detect_language(normalize_text(str(t))) for t in texts]
    other = [g for g in guesses if g not in ("en", None)]
    assert len(texts) > 26_000
    assert len(other) <= 25, other  # 18 at the 0.95 confidence floor (0.5 would flag 84)
    assert guesses.count("en") > 8_000  # most short headlines are left unknown, not guessed


def test_real_feeds_get_the_language_of_their_posts() -> None:
    assert set(_languages("heise.atom")) == {"de"}  # declares none
    assert set(_languages("guardian.rss")) == {"en"}
    assert set(_languages("encoding.rss")) == {"pt"}
    # Declares Kannada for English posts: the text wins where the guess is confident.
    customfields = _languages("customfields.rss")
    assert customfields.count("en") >= len(customfields) - 2


def test_no_confident_guess_keeps_the_declared_language() -> None:
    assert detect_language("") is None
    assert detect_language("$ACME 4.2% 10:30") is None  # no letters to read but a ticker
    item = normalize_entry(RawEntry(source="s", title="$ACME 4.2%", language="fr-CA"), fetched_at=NOW)
    assert item.language == "fr"
    item = normalize_entry(RawEntry(source="s", title="$ACME 4.2%"), fetched_at=NOW)
    assert item.language is None


def _poll_languages(feed: str) -> list[str | None]:
    parsed = parse_feed((FEEDS / feed).read_bytes(), SOURCE)
    return [item.language for item, _ in normalize_entries(parsed.entries, NOW)[0]]


def test_a_story_without_a_confident_guess_takes_its_polls_language_before_the_declared_one() -> None:
    # uolNoticias declares an empty language: 5 of its 15 Portuguese headlines are too short to guess.
    assert _languages("uolNoticias.rss").count(None) == 5
    assert set(_poll_languages("uolNoticias.rss")) == {"pt"}
    # customfields declares Kannada: its one unsure English post is no longer taken for Kannada.
    assert "kn" in _languages("customfields.rss")
    assert set(_poll_languages("customfields.rss")) == {"en"}


def test_a_language_declared_for_the_entry_itself_comes_before_its_polls() -> None:
    english = [f"{t} shares rose after the company reported strong quarterly results" for t in "ABCD"]
    entries = [RawEntry(source="api", title=t) for t in english]
    entries.append(RawEntry(source="api", title="Dax im Minus", language="de"))  # an API item's field
    entries.append(RawEntry(source="api", title="Dax im Plus", channel_language="de"))  # the feed's
    languages = [item.language for item, _ in normalize_entries(entries, NOW)[0]]
    assert languages == ["en", "en", "en", "en", "de", "en"]


@pytest.mark.parametrize(
    ("guesses", "language"),
    [
        (["pt"] * 10 + [None] * 5, "pt"),
        (["en", "en", "en", "de"], "en"),  # over two thirds
        (["en", "en", "de"], None),  # a feed split between languages has none
        (["de", None, None, None], None),  # one confident guess is no poll's language
        ([None, None], None),
        ([], None),
    ],
)
def test_poll_language_is_a_clear_majority_of_confident_guesses(
    guesses: list[str | None], language: str | None
) -> None:
    assert poll_language(guesses) == language


def test_the_ingest_summary_lists_languages_most_first() -> None:
    # In the order first seen, a demo's one German headline came first ("de 1, en 267").
    assert languages_text({"de": 1, "en": 267, "it": 1, "unknown": 3}) == "en 267, unknown 3, de 1, it 1"
