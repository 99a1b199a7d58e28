"""Schemas: JSON round trips, and bad records rejected with a clear reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from finpulse.errors import InvalidRecord
from finpulse.schema import (
    SCHEMA_VERSION,
    AlertEvent,
    DeadLetter,
    HeadlineRef,
    NewsItem,
    ScoredItem,
    SourceStatus,
    WindowAggregate,
    normalise_entity,
    story_id_for,
)

T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def news(**kw: object) -> NewsItem:
    base: dict[str, object] = {
        "story_id": "abc", "source": "reuters", "title": "Fed holds rates",
        "published_at": T0, "fetched_at": T0,
    }  # fmt: skip
    return NewsItem(**(base | kw))


def scored(**kw: object) -> ScoredItem:
    base: dict[str, object] = {
        "item": news(), "topic": "Fed | Central Banks", "topic_probs": {"Fed | Central Banks": 0.9},
        "sentiment": "negative", "sentiment_probs": {"negative": 0.7, "neutral": 0.2, "positive": 0.1},
        "sentiment_score": -0.6, "model_version": "m1", "scored_at": T0,
    }  # fmt: skip
    return ScoredItem(**(base | kw))


def window(**kw: object) -> WindowAggregate:
    base: dict[str, object] = {
        "entity_kind": "topic", "entity": "Macro", "window_start": T0,
        "window_end": T0 + timedelta(minutes=5), "count": 10, "negative_count": 4,
        "negative_share": 0.4, "mean_score": -0.2,
        "top_negative": (HeadlineRef(story_id="a", title="t", sentiment_score=-0.9),),
    }  # fmt: skip
    return WindowAggregate(**(base | kw))


def alert(**kw: object) -> AlertEvent:
    base: dict[str, object] = {
        "alert_id": "sub1:topic:Macro:1", "subscription_id": "sub1", "state": "fired",
        "entity_kind": "topic", "entity": "Macro", "window_start": T0,
        "window_end": T0 + timedelta(minutes=5), "count": 40, "negative_count": 30,
        "negative_share": 0.75, "baseline_negative_share": 0.2, "p_value": 1e-6,
        "significance": 0.01, "created_at": T0,
    }  # fmt: skip
    return AlertEvent(**(base | kw))


def source_status(**kw: object) -> SourceStatus:
    base: dict[str, object] = {
        "source": "reuters", "source_kind": "feed", "interval_s": 300, "host": "ingest-1",
        "published_at": T0, "last_poll_at": T0, "consecutive_errors": 2, "last_error": "http_503: busy",
    }  # fmt: skip
    return SourceStatus(**(base | kw))


@pytest.mark.parametrize("make", [news, scored, window, alert, source_status])
def test_round_trip(make) -> None:  # type: ignore[no-untyped-def]
    msg = make()
    assert type(msg).from_bytes(msg.to_bytes()) == msg
    assert msg.schema_version == SCHEMA_VERSION


def test_timestamps_are_normalised_to_utc() -> None:
    eastern = datetime(2026, 11, 23, 4, 30, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("America/New_York")
    )
    assert news(published_at=eastern).published_at == datetime(2026, 11, 23, 4, 30, tzinfo=UTC)


def test_tickers_are_upper_cased_and_deduplicated() -> None:
    assert news(tickers=["$aapl", "AAPL", "msft", " "]).tickers == ("AAPL", "MSFT")
    # A bare cashtag names nothing: an empty ticker would be a window no message can carry.
    assert news(tickers=["$", " $ ", " $tsla "]).tickers == ("TSLA",)
    # As news APIs write them: an exchange before, a class after a dash; no symbol opens no window.
    assert news(tickers=["NASDAQ:AAPL", "BRK-B", "Apple Inc", "$5", "7203.T", "NYSE: IBM"]).tickers == (
        "AAPL", "BRK.B", "IBM",
    )  # fmt: skip
    # Subscriptions, queries and the backtest name them by the same rule.
    named = [normalise_entity("ticker", t) for t in ("BRK-B", "nasdaq:aapl", "$ibm")]
    assert named == ["BRK.B", "AAPL", "IBM"]
    assert normalise_entity("ticker", "Apple Inc") == "APPLE INC"  # no symbol: as written, said where checked


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    data = news().model_dump(mode="json") | {"added_in_v2_minor": 1}
    assert NewsItem.from_dict(data) == news()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "empty record"),
        (b"", "Invalid JSON"),
        (b"\xff\xfe garbage", "Invalid JSON"),
        (b"[1, 2]", "should be an object"),
        (b'{"story_id": "a"}', "source: Field required"),
        (
            b'{"story_id": "a", "source": "s", "title": "", "published_at": "2026-01-01T00:00:00Z",'
            b' "fetched_at": "2026-01-01T00:00:00Z"}',
            "title",
        ),
        (
            b'{"story_id": "a", "source": "s", "title": "t", "published_at": "2026-01-01T00:00:00",'
            b' "fetched_at": "2026-01-01T00:00:00Z"}',
            "timezone",
        ),
        # out of range: in UTC it is no date at all; Go's "no date" overflows window arithmetic
        (
            b'{"story_id": "a", "source": "s", "title": "t", "published_at": "0001-01-01T00:00:00+01:00",'
            b' "fetched_at": "2026-01-01T00:00:00Z"}',
            "published_at: timestamp out of range in UTC",
        ),
        (
            b'{"story_id": "a", "source": "s", "title": "t", "published_at": "0001-01-01T00:00:00Z",'
            b' "fetched_at": "2026-01-01T00:00:00Z"}',
            "published_at: published time 0001-01-01T00:00:00+00:00 is not between 1900 and 9000",
        ),
        (
            b'{"story_id": "a", "source": "s", "title": "t", "published_at": "2026-01-01T00:00:00Z",'
            b' "fetched_at": "9999-12-31T23:30:00-01:00"}',
            "fetched_at: timestamp out of range in UTC",
        ),
        (
            b'{"schema_version": 99, "story_id": "a", "source": "s", "title": "t",'
            b' "published_at": "2026-01-01T00:00:00Z", "fetched_at": "2026-01-01T00:00:00Z"}',
            "schema_version 99 is not supported",
        ),
    ],
)
def test_bad_news_records_fail_with_a_reason(payload: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidRecord) as info:
        NewsItem.from_bytes(payload)
    assert reason in info.value.reason
    assert info.value.kind == "NewsItem"


def test_huge_title_is_rejected() -> None:
    with pytest.raises(InvalidRecord, match="title"):
        NewsItem.from_dict(news().model_dump(mode="json") | {"title": "x" * 1_000_000})


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"negative_count": 11}, "negative_count cannot exceed count"),
        ({"window_end": T0}, "window_end must be after window_start"),
        ({"negative_share": 1.5}, "negative_share"),
    ],
)
def test_inconsistent_windows_are_rejected(kw: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidRecord, match=reason):
        WindowAggregate.from_dict(window().model_dump(mode="json") | kw)


def test_scored_item_rejects_unknown_sentiment_and_out_of_range_score() -> None:
    good = scored().model_dump(mode="json")
    with pytest.raises(InvalidRecord, match="sentiment"):
        ScoredItem.from_dict(good | {"sentiment": "bearish"})
    with pytest.raises(InvalidRecord, match="sentiment_score"):
        ScoredItem.from_dict(good | {"sentiment_score": -2})


def test_dead_letter_keeps_original_bytes_and_reason() -> None:
    raw = b'{"bad": true}'
    try:
        NewsItem.from_bytes(raw)
    except InvalidRecord as exc:
        letter = DeadLetter.wrap(source_topic="news.raw", stage="ingest", error=exc, value=raw, key=b"k")
    assert DeadLetter.from_bytes(letter.to_bytes()).original_value() == raw
    assert letter.error_type == "InvalidRecord"
    assert "story_id" in letter.reason


def test_a_dead_letter_of_a_huge_record_fits_kafka_and_says_where_the_record_is() -> None:
    raw = b'{"summary": "' + b"x" * 800_000 + b'"}'
    exc = InvalidRecord("NewsItem", "story_id missing")
    letter = DeadLetter.wrap(
        source_topic="news.raw", stage="score", error=exc, value=raw, partition=2, offset=41
    )
    assert len(letter.to_bytes()) < 1_000_000  # the producer's and the broker's default limit
    assert letter.original_value() is None
    assert (
        "story_id missing (the record, 800,015 bytes, is too big to keep here: it stays at news.raw[2]@41)"
        in (letter.reason)
    )


def test_story_id_is_stable_and_separates_parts() -> None:
    assert story_id_for("a", "bc") == story_id_for("a", "bc")
    assert story_id_for("a", "bc") != story_id_for("ab", "c")


printable = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200)


@given(
    title=printable.filter(lambda s: s.strip()),
    summary=st.text(max_size=500),
    tickers=st.lists(st.from_regex(r"[A-Za-z]{1,5}", fullmatch=True), max_size=5),
    offset_s=st.integers(min_value=-(10**9), max_value=10**9),
)
def test_news_round_trip_property(title: str, summary: str, tickers: list[str], offset_s: int) -> None:
    ts = T0 + timedelta(seconds=offset_s)
    item = NewsItem(
        story_id=story_id_for(title), source="s", title=title, summary=summary,
        published_at=ts, fetched_at=ts, tickers=tuple(tickers),
    )  # fmt: skip
    again = NewsItem.from_bytes(item.to_bytes())
    assert again == item
    assert again.published_at.tzinfo is not None


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    try:
        NewsItem.from_bytes(data)
    except InvalidRecord as exc:
        reason = exc.reason
    else:
        reason = "parsed"
    assert reason


def test_a_source_status_of_an_unknown_kind_or_interval_is_rejected() -> None:
    with pytest.raises(InvalidRecord, match="source_kind"):
        SourceStatus.from_bytes(source_status().to_bytes().replace(b'"feed"', b'"ftp"'))
    with pytest.raises(InvalidRecord, match="interval_s"):
        SourceStatus.from_dict(source_status().model_dump() | {"interval_s": 0})
