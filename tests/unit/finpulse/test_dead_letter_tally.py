"""The dead-letter listing's tally: counts per group and only the newest letters kept."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime, timedelta

from rich.console import Console

from finpulse.deadletters import Filter, Found, Tally, print_dead_letters
from finpulse.errors import InvalidRecord, UnsupportedLanguage
from finpulse.schema import DeadLetter

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def _found(i: int, at: datetime, stage: str) -> Found:
    error = UnsupportedLanguage("de", ("en",)) if stage == "score" else InvalidRecord("NewsItem", "bad")
    letter = DeadLetter.wrap(source_topic="news.raw", stage=stage, error=error, value=b"x" * 1000, offset=i)
    letter = letter.model_copy(update={"failed_at": at})
    return Found("news.raw.dead", i % 3, i, at, letter)


def test_counts_every_letter_and_keeps_only_the_newest() -> None:
    rng = random.Random(5)
    times = [T0 + timedelta(seconds=rng.randrange(86_400)) for _ in range(2_000)]
    tally = Tally(last=5)
    for i, at in enumerate(times):
        tally.add(_found(i, at, "score" if i % 4 else "ingest"))
    tally.add(Found("news.raw.dead", 0, 9_999, T0, None, "not JSON"))
    assert (tally.total, tally.unreadable) == (2_001, 1)
    score = tally.groups[("news.raw", "score", "UnsupportedLanguage")]
    ingest = tally.groups[("news.raw", "ingest", "InvalidRecord")]
    assert (score.count, ingest.count) == (1_500, 500)
    assert score.latest == max(t for i, t in enumerate(times) if i % 4)
    assert [letter.failed_at for letter in tally.newest()] == sorted(times)[-5:]
    assert len(tally._newest) == 5  # memory does not grow with the backlog


def test_last_zero_keeps_no_letters() -> None:
    tally = Tally(last=0)
    tally.add(_found(1, T0, "score"))
    assert tally.total == 1
    assert tally.newest() == []


def test_a_topic_filter_names_a_runs_prefixed_topic_too() -> None:
    def failed_on(topic: str) -> Found:
        letter = DeadLetter.wrap(
            source_topic=topic, stage="score", error=InvalidRecord("NewsItem", "x"), value=b""
        )
        return Found(f"{topic}.dead", 0, 0, T0, letter)

    by_name = Filter(source_topic="news.raw")
    assert by_name(failed_on("news.raw"))
    assert by_name(failed_on("demo-1a2b.news.raw"))  # the demo's topics
    assert not by_name(failed_on("news.raw.tag"))
    assert not by_name(failed_on("fake-news.raw"))


def test_a_letters_text_reaches_the_terminal_without_its_escapes() -> None:
    """A letter's title, topic and reason are anyone's text: ESC [2J cleared the operator's screen,
    ESC ] 0; retitled the window."""
    title = "\x1b[2J\x1b[HAll clear: no dead letters\x1b]0;owned\x1b\\"
    value = json.dumps({"title": title}).encode()
    letter = DeadLetter.wrap(
        source_topic="news.raw\x1b[31m",
        stage="score",
        error=InvalidRecord("NewsItem", "bad\x9b2J"),
        value=value,
    )
    tally = Tally(last=5)
    tally.add(Found("news.raw.dead", 0, 7, T0, letter))
    out = io.StringIO()
    print_dead_letters(Console(file=out, width=200), tally)
    assert "\x1b" not in out.getvalue()
    assert "\x9b" not in out.getvalue()
    assert "[2J[HAll clear: no dead letters]0;owned" in out.getvalue()  # the rest, as written


def test_none_found_says_from_when_it_looked() -> None:
    out = io.StringIO()
    print_dead_letters(Console(file=out, width=200), Tally(last=5), ["news.raw.dead"], since=T0)
    assert (
        out.getvalue().strip() == f"no dead letters on news.raw.dead since {T0:%Y-%m-%d %H:%M} UTC (--since)"
    )
