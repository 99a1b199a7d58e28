"""Queries over the known data set (tests/fixtures/store.py), expectations worked out by hand."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from store import (
    AlertsQuery,
    EntitiesQuery,
    HeadlinesQuery,
    HistoryStore,
    Mover,
    MoversQuery,
    TrendQuery,
    VolumeQuery,
    WindowsQuery,
)
from tests.fixtures.store import T0, scored

DAY1, DAY2 = T0.replace(hour=0), T0.replace(hour=0) + timedelta(days=1)
RANGE = {"start": T0 - timedelta(hours=9), "end": T0 + timedelta(days=2)}


def _trend(db: HistoryStore, **kw: object) -> list[tuple[object, ...]]:
    rows = db.fetch(TrendQuery.model_validate({**RANGE, **kw}))
    return [(r.bucket_start, r.entity, r.count, r.negative_count, r.positive_count, round(r.mean_score, 6))  # type: ignore[attr-defined]
            for r in rows]  # fmt: skip


def test_topic_trend_by_hour(known_store: HistoryStore) -> None:
    h = timedelta(hours=1)
    assert _trend(known_store, entity_kind="topic", granularity="hour") == [
        (T0, "earnings", 2, 1, 1, -0.1),
        (T0, "macro", 1, 1, 0, -0.5),
        (T0 + h, "earnings", 2, 1, 0, -0.45),
        (T0 + h, "macro", 1, 1, 0, -0.2),
        (T0 + 24 * h, "earnings", 1, 0, 1, 0.4),
    ]


def test_negative_share_and_single_entity_filter(known_store: HistoryStore) -> None:
    rows = known_store.fetch(TrendQuery(entity_kind="topic", entity="macro", granularity="day", **RANGE))
    assert [(r.entity, r.count, r.negative_share) for r in rows] == [("macro", 2, 1.0)]  # type: ignore[attr-defined]


def test_ticker_trend_by_day_counts_an_item_for_each_ticker(known_store: HistoryStore) -> None:
    assert _trend(known_store, entity_kind="ticker", granularity="day") == [
        (DAY1, "AAPL", 3, 2, 1, round((-0.8 + 0.6 - 0.2) / 3, 6)),
        (DAY1, "MSFT", 2, 1, 1, round((0.6 - 0.9) / 2, 6)),
        (DAY2, "AAPL", 1, 0, 1, 0.4),
    ]
    assert [r[1] for r in _trend(known_store, entity_kind="ticker", entity="msft", granularity="day")] == [
        "MSFT"
    ]


def test_source_trend_and_five_minute_buckets(known_store: HistoryStore) -> None:
    assert [(r[1], r[2], r[3]) for r in _trend(known_store, entity_kind="source", granularity="day")] == [
        ("bloomberg", 2, 0),
        ("reuters", 4, 4),
        ("reuters", 1, 0),
    ]
    buckets = [r[0] for r in _trend(known_store, entity_kind="topic", entity="earnings", granularity="5min")]
    m = timedelta(minutes=1)
    assert buckets == [T0, T0 + 5 * m, T0 + 60 * m, T0 + 90 * m, T0 + timedelta(days=1)]


def test_time_range_is_start_inclusive_end_exclusive(known_store: HistoryStore) -> None:
    rows = known_store.fetch(TrendQuery(start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=20)))
    assert [(r.entity, r.count) for r in rows] == [("earnings", 2)]  # type: ignore[attr-defined]


def test_volume_and_entities(known_store: HistoryStore) -> None:
    rows = known_store.fetch(VolumeQuery(granularity="day", **RANGE))
    assert [(r.bucket_start, r.entity, r.count) for r in rows] == [  # type: ignore[attr-defined]
        (DAY1, "earnings", 4),
        (DAY1, "macro", 2),
        (DAY2, "earnings", 1),
    ]
    ents = known_store.fetch(EntitiesQuery(entity_kind="ticker", **RANGE))
    assert [
        (e.entity, e.count, e.negative_count, e.positive_count, e.negative_share, round(e.mean_score, 3))  # type: ignore[attr-defined]
        for e in ents
    ] == [("AAPL", 4, 2, 2, 0.5, 0.0), ("MSFT", 2, 1, 1, 0.5, -0.15)]


def test_top_negative_headlines(known_store: HistoryStore) -> None:
    day1 = {"start": T0, "end": T0 + timedelta(days=1)}
    ids = [h.story_id for h in known_store.fetch(HeadlinesQuery(**day1))]  # type: ignore[attr-defined]
    assert ids == ["s4", "s1", "s3", "s6"]
    aapl = known_store.fetch(HeadlinesQuery(entity_kind="ticker", entity="AAPL", **day1))
    assert [(h.story_id, h.title, h.tickers) for h in aapl] == [  # type: ignore[attr-defined]
        ("s1", "Apple misses estimates", ("AAPL",)),
        ("s6", "headline s6", ("AAPL",)),
    ]
    macro = known_store.fetch(HeadlinesQuery(entity_kind="topic", entity="macro", limit=1, offset=1, **day1))
    assert [h.story_id for h in macro] == ["s6"]  # type: ignore[attr-defined]


def test_headlines_searched_by_words_of_any_sentiment_newest_first(known_store: HistoryStore) -> None:
    day1 = {"start": T0, "end": T0 + timedelta(days=1)}

    def ids(**kw: object) -> list[str]:
        return [h.story_id for h in known_store.fetch(HeadlinesQuery.model_validate({**day1, **kw}))]  # type: ignore[attr-defined]

    assert ids(sentiment="any") == ["s6", "s5", "s4", "s3", "s2", "s1"]
    assert ids(sentiment="any", search="ESTIMATES apple") == ["s1"]  # any case, any order
    assert ids(sentiment="any", search="warn") == ["s4"]  # part of a word
    assert ids(sentiment="any", search="apple warns") == []  # every word, not any
    assert ids(search="headline") == ["s3", "s6"]  # negative ones, most negative first
    assert ids(search="headline", newest=True) == ["s6", "s3"]
    assert ids(sentiment="positive", search="headline") == ["s2"]
    assert ids(sentiment="any", search="headline", entity_kind="topic", entity="macro") == ["s6", "s3"]
    # LIKE's wildcards in a word are matched as written.
    known_store.upsert_scored([scored("p1", T0 + timedelta(minutes=30), "macro", "neutral", 0.0,
                                      title="Rates up 0.5% after CPI_report, ok\\maybe")])  # fmt: skip
    assert ids(sentiment="any", search="0.5%") == ["p1"]
    assert ids(sentiment="any", search="%") == ["p1"]
    assert ids(sentiment="any", search="_") == ["p1"]
    assert ids(sentiment="any", search="up_0") == []
    assert ids(sentiment="any", search="ok\\maybe") == ["p1"]


def test_trends_entities_and_movers_of_the_stories_holding_words(known_store: HistoryStore) -> None:
    # Titled "headline sN": s2, s5, s7 (earnings: positive, neutral, positive), s3, s6 (macro, negative).
    ents = known_store.fetch(EntitiesQuery(entity_kind="topic", search="HEADLINE", **RANGE))
    assert [(e.entity, e.count, e.negative_count) for e in ents] == [("earnings", 3, 0), ("macro", 2, 2)]  # type: ignore[attr-defined]
    assert _trend(known_store, entity_kind="ticker", granularity="day", search="headline") == [
        (DAY1, "AAPL", 2, 1, 1, 0.2),  # s2 (0.6), s6 (-0.2)
        (DAY1, "MSFT", 1, 0, 1, 0.6),  # s2
        (DAY2, "AAPL", 1, 0, 1, 0.4),  # s7
    ]
    assert _trend(known_store, entity_kind="topic", search="apple estimates") == [
        (T0, "earnings", 1, 1, 0, -0.8)  # s1 alone
    ]
    day2 = {"start": DAY2, "end": DAY2 + timedelta(days=1), "min_stories": 1, "entity_kind": "topic"}
    [everything] = known_store.fetch(MoversQuery.model_validate({**day2, "direction": "down"}))
    assert (everything.previous_count, everything.change) == (4, -0.5)  # type: ignore[attr-defined]
    # s7 against s2 and s5 the day before (not s1 and s4: other titles): none negative, no move.
    assert known_store.fetch(MoversQuery.model_validate({**day2, "search": "headline"})) == []
    known_store.upsert_scored([scored("s8", DAY2 + timedelta(hours=12), "earnings", "negative", -0.6)])
    [earnings] = known_store.fetch(MoversQuery.model_validate({**day2, "search": "headline"}))
    assert (earnings.count, earnings.previous_count, earnings.previous_share, earnings.change) == (
        2,
        2,
        0.0,
        0.5,
    )  # type: ignore[attr-defined]


def test_a_syndicated_story_counts_once_as_its_windows_count_it(store: HistoryStore) -> None:
    at = T0 + timedelta(hours=1)
    title = "Acme sinks after the warning"
    wire = scored("wire", at, "markets", "negative", -0.9, ("ACME",), title=title)
    copies = [
        scored(f"copy-{i}", at + timedelta(minutes=i), "markets", "negative", -0.9, ("ACME",), source,
               title=title, duplicate_of="wire")
        for i, source in enumerate(("yahoo", "cnbc", "ft"), 1)
    ]  # fmt: skip
    store.upsert_scored([*copies, wire, scored("calm", at, "markets", "neutral", 0.0, ("ACME",))])
    [point] = store.fetch(TrendQuery(entity_kind="ticker", entity="ACME", granularity="day", **RANGE))
    assert (point.count, point.negative_count, point.negative_share) == (2, 1, 0.5)  # type: ignore[attr-defined]
    [topic] = store.fetch(EntitiesQuery(entity_kind="topic", **RANGE))
    assert topic.count == 2  # type: ignore[attr-defined]
    # Each copy is its own source's story, as the windows of each source count it.
    sources = {e.entity: e.count for e in store.fetch(EntitiesQuery(entity_kind="source", **RANGE))}  # type: ignore[attr-defined]
    assert sources == {"reuters": 2, "yahoo": 1, "cnbc": 1, "ft": 1}
    headlines = store.fetch(HeadlinesQuery(entity_kind="ticker", entity="ACME", **RANGE))
    assert [h.story_id for h in headlines] == ["wire"]  # type: ignore[attr-defined]
    # A row naming itself its original (as a replay file may) is an original, not a lost copy.
    store.upsert_scored([scored("self", at, "markets", "negative", -0.5, ("BOLT",), duplicate_of="self")])
    [bolt] = store.fetch(EntitiesQuery(entity_kind="ticker", entity="BOLT", **RANGE))
    assert bolt.count == 1  # type: ignore[attr-defined]
    # The first copy in the range stands for the story when the original is not in it.
    later = {"start": at + timedelta(seconds=30), "end": RANGE["end"]}
    assert [h.story_id for h in store.fetch(HeadlinesQuery(**later))] == ["copy-1"]  # type: ignore[attr-defined]


def test_alert_history_with_filters_and_feedback(known_store: HistoryStore) -> None:
    known_store.put_feedback("a1", "fp", note="expected", author="ann")
    for sub_id in ("desk", "apple"):
        known_store.put_subscription(sub_id, {"channel": "#alerts"})
    rows = known_store.fetch(AlertsQuery(**RANGE))
    assert [a.alert_id for a in rows] == ["a3", "a2", "a1"]  # type: ignore[attr-defined]
    assert [(a.verdict, a.feedback_by) for a in rows] == [(None, None), (None, None), ("fp", "ann")]  # type: ignore[attr-defined]
    assert [a.fired_alert_id for a in rows] == [None, "a1", None]  # type: ignore[attr-defined]  # a2 ends a1
    assert [a.still_open for a in rows] == [True, False, False]  # type: ignore[attr-defined]
    still_open = known_store.fetch(AlertsQuery(state="open", **RANGE))
    assert [a.alert_id for a in still_open] == ["a3"]  # type: ignore[attr-defined]
    # Open now, however long ago it fired (no default week); named as a user writes it.
    month_on = {"end": T0 + timedelta(days=30), "entity_kind": "ticker", "entity": " $aapl"}
    assert [a.alert_id for a in known_store.fetch(AlertsQuery(state="open", **month_on))] == ["a3"]  # type: ignore[attr-defined]
    known_store.delete_subscription("apple")  # nothing watches AAPL now: a3 can never resolve
    assert known_store.fetch(AlertsQuery(state="open", **RANGE)) == []
    assert [a.still_open for a in known_store.fetch(AlertsQuery(**RANGE))] == [False] * 3  # type: ignore[attr-defined]
    known_store.put_subscription("apple", {"channel": "#alerts"})
    by_id = known_store.fetch(AlertsQuery(alert_id="a2", **RANGE))  # a message's id, its first characters
    assert [a.alert_id for a in by_id] == ["a2"]  # type: ignore[attr-defined]
    assert known_store.fetch(AlertsQuery(alert_id="a_%%", **RANGE)) == []  # wildcards taken as written
    fired = known_store.fetch(AlertsQuery(state="fired", **RANGE))
    assert [a.alert_id for a in fired] == ["a3", "a1"]  # type: ignore[attr-defined]
    apple = known_store.fetch(AlertsQuery(subscription_id="apple", **RANGE))
    assert [a.entity for a in apple] == ["AAPL"]  # type: ignore[attr-defined]
    page = known_store.fetch(AlertsQuery(limit=2, offset=2, **RANGE))
    assert [a.alert_id for a in page] == ["a1"]  # type: ignore[attr-defined]
    # a1: window 10:00-10:05, sent 10:05:02; a2: window 10:30, sent 10:35:02.
    since = {"start": T0 + timedelta(minutes=61), "end": T0 + timedelta(hours=2)}
    sent = known_store.fetch(AlertsQuery(**since))
    assert [a.alert_id for a in sent] == ["a2", "a1"]  # type: ignore[attr-defined]
    windows = known_store.fetch(AlertsQuery(timed_by="window", **since))
    assert [a.alert_id for a in windows] == ["a2"]  # type: ignore[attr-defined]


def test_windows_table(known_store: HistoryStore) -> None:
    rows = known_store.fetch(WindowsQuery(entity_kind="topic", **RANGE))
    assert [(w.entity, w.window_start, w.count) for w in rows] == [  # type: ignore[attr-defined]
        ("earnings", T0, 2),
        ("earnings", T0 + timedelta(minutes=5), 1),
        ("macro", T0 + timedelta(minutes=20), 1),
        ("earnings", T0 + timedelta(minutes=60), 1),
    ]


def test_frames_have_utc_times(known_store: HistoryStore) -> None:
    df = known_store.frame(TrendQuery(granularity="day", **RANGE))
    assert list(df.columns) == [
        "bucket_start", "entity_kind", "entity", "count", "negative_count", "positive_count",
        "negative_share", "mean_score",
    ]  # fmt: skip
    assert str(df["bucket_start"].dt.tz) == "UTC"
    assert df["count"].sum() == 7
    assert known_store.frame(TrendQuery(start=T0 - timedelta(days=30), end=T0)).empty


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_exports_read_back(known_store: HistoryStore, tmp_path: Path, fmt: str) -> None:
    path = known_store.export(HeadlinesQuery(**RANGE), tmp_path / f"neg.{fmt}", fmt)  # type: ignore[arg-type]
    reader = "read_csv_auto" if fmt == "csv" else "read_parquet"
    with duckdb.connect() as con:
        rows = con.execute(
            f"SELECT story_id, sentiment_score, published_at FROM {reader}(?)", [str(path)]
        ).fetchall()
    assert [r[:2] for r in rows] == [("s4", -0.9), ("s1", -0.8), ("s3", -0.5), ("s6", -0.2)]
    # Times carry their zone (UTC), so readers get the instant, not a local time.
    assert rows[0][2] == T0 + timedelta(minutes=62)
    if fmt == "csv":
        first = next(csv.DictReader(path.open()))
        assert first["published_at"] == f"{T0 + timedelta(minutes=62):%Y-%m-%d %H:%M:%S}+00"


def test_a_csv_export_keeps_spreadsheets_from_running_titles_as_formulas(
    store: HistoryStore, tmp_path: Path
) -> None:
    titles = ['=HYPERLINK("http://x")', "-5% for Acme", "+3 at open", "@SUM(A1)", "Acme = fine"]
    store.upsert_scored(
        [
            scored(f"f{i}", T0 + timedelta(minutes=i), "m", "negative", -0.5, title=t)
            for i, t in enumerate(titles)
        ]
    )
    query = HeadlinesQuery(start=T0, end=T0 + timedelta(hours=1), newest=True)
    csv_rows = list(csv.DictReader(store.export(query, tmp_path / "h.csv", "csv").open()))
    assert [r["title"] for r in reversed(csv_rows)] == [*(f"'{t}" for t in titles[:4]), "Acme = fine"]
    with duckdb.connect() as con:  # other formats keep the titles as written
        parquet = con.execute(
            "SELECT title FROM read_parquet(?)", [str(store.export(query, tmp_path / "h.parquet", "parquet"))]
        )
        assert sorted(r[0] for r in parquet.fetchall()) == sorted(titles)


def _movers_store(db: HistoryStore) -> tuple[datetime, datetime]:
    """Per ticker (stories, negatives) in the day before [start, end) and in it."""
    end = T0 + timedelta(days=10)
    start = end - timedelta(days=1)
    plan = {
        "AAA": ((10, 1), (10, 6)),
        "BBB": ((10, 5), (10, 1)),
        "CCC": ((2, 0), (12, 3)),
        "DDD": ((10, 9), (5, 5)),
    }
    items = []
    for ticker, periods in plan.items():
        for p, (n, negative) in enumerate(periods):
            for i in range(n):
                at = start - timedelta(days=1) + timedelta(days=p, minutes=30 * i)
                sentiment = "negative" if i < negative else "neutral"
                items.append(
                    scored(
                        f"{ticker}-{p}-{i}",
                        at,
                        "markets",
                        sentiment,
                        -0.5 if i < negative else 0.0,
                        (ticker,),
                    )
                )
    items.append(
        scored("old", start - timedelta(days=3), "markets", "negative", -0.9, ("BBB",))
    )  # out of both
    db.upsert_scored(items)
    return start, end


def test_movers_rank_the_rise_in_negative_share_against_the_range_before(store: HistoryStore) -> None:
    start, end = _movers_store(store)

    def movers(**kw: object) -> list[tuple[object, ...]]:
        q = MoversQuery.model_validate({"start": start, "end": end, "entity_kind": "ticker", **kw})
        rows = [m for m in store.fetch(q) if isinstance(m, Mover)]
        return [
            (
                m.entity,
                m.count,
                m.previous_count,
                m.previous_share,
                None if m.change is None else round(m.change, 6),
            )
            for m in rows
        ]

    # DDD has 5 stories now (under 10): left out; CCC had 2 before: no change, listed last among
    # the risers (new in the news); BBB fell: a faller only.
    assert movers() == [("AAA", 10, 10, 0.1, 0.5), ("CCC", 12, 2, None, None)]
    assert movers(direction="down") == [("BBB", 10, 10, 0.5, -0.4)]
    assert [m[0] for m in movers(min_stories=2)] == ["AAA", "CCC", "DDD"]  # CCC +0.25, DDD +0.1
    assert movers(min_stories=2)[1] == ("CCC", 12, 2, 0.0, 0.25)
    assert [m[0] for m in movers(min_stories=5)] == ["AAA", "DDD", "CCC"]  # DDD 0.9 -> 1.0
    # markets: 15 of 37 negative against 15 of 32 (each ticker's story one row of the topic): fell.
    topics = store.fetch(MoversQuery(start=start, end=end, entity_kind="topic", direction="down"))
    assert [(m.entity, m.count) for m in topics if isinstance(m, Mover)] == [("markets", 37)]


def test_movers_count_each_range_s_stories_as_entities_do(store: HistoryStore) -> None:
    """Each range keeps its own first copy of a story: a copy in this range whose original is in
    the range before counts in this range, as the entities, trends and headlines count it."""
    start, end = T0, T0 + timedelta(hours=12)  # 2024-03-04 09:00 to 21:00
    original = scored("orig", T0 - timedelta(hours=12), "markets", "negative", -0.8, ("ACME",))
    copy = scored("copy", T0 + timedelta(hours=1), "markets", "negative", -0.7, ("ACME",), "cnbc",
                  duplicate_of="orig")  # fmt: skip
    # a0, a2, a4 negative; a1, a3 positive.
    tone = {0: ("negative", -0.5), 1: ("positive", 0.5)}
    more = [
        scored(f"a{i}", T0 + timedelta(hours=2, minutes=i), "markets", *tone[i % 2], ("ACME",))
        for i in range(5)
    ]
    store.upsert_scored([original, copy, *more])
    [entity] = store.fetch(EntitiesQuery(entity_kind="ticker", start=start, end=end))
    q = MoversQuery(entity_kind="ticker", start=start, end=end, min_stories=1, direction="any")
    [mover] = [m for m in store.fetch(q) if isinstance(m, Mover)]
    assert (entity.count, entity.negative_count) == (6, 4)  # type: ignore[attr-defined]
    assert (mover.count, mover.negative_count, mover.negative_share) == (6, 4, entity.negative_share)  # type: ignore[attr-defined]
    assert mover.mean_score == pytest.approx(entity.mean_score)  # type: ignore[attr-defined]
    # The range before holds the original alone.
    assert (mover.previous_count, mover.previous_share) == (1, 1.0)
