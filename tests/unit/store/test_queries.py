"""Query models: validation and the SQL they render (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from store.dialect import DUCKDB, POSTGRES
from store.queries import (
    DEFAULT_RANGE,
    AlertsQuery,
    EntitiesQuery,
    FeedbackQuery,
    HeadlinesQuery,
    MoversQuery,
    Query,
    TrendQuery,
    VolumeQuery,
    WindowsQuery,
    naive_utc,
)

T = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def test_default_range_is_the_last_week_ending_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    q = TrendQuery()
    assert q.end is not None
    assert q.start is not None
    assert before <= q.end <= datetime.now(UTC)
    assert q.end - q.start == DEFAULT_RANGE


def test_start_alone_keeps_it_and_ends_now() -> None:
    q = TrendQuery(start=T)
    assert q.start == T
    assert q.end is not None
    assert q.end > T


@pytest.mark.parametrize(("start", "end"), [(T, T), (T + timedelta(hours=1), T)])
def test_empty_or_reversed_range_is_rejected(start: datetime, end: datetime) -> None:
    with pytest.raises(ValidationError, match="must be before end"):
        TrendQuery(start=start, end=end)


def test_naive_times_are_taken_as_utc_and_offsets_converted() -> None:
    q = TrendQuery(start="2024-03-04T09:00:00", end="2024-03-04T12:00:00+02:00")
    assert q.start == T
    assert q.end == T + timedelta(hours=1)
    assert naive_utc(T) == datetime(2024, 3, 4, 9, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("limit", 0), ("limit", 10_001), ("offset", -1), ("granularity", "minute"), ("entity_kind", "sector")],
)
def test_bad_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        TrendQuery.model_validate({field: value})


def test_ticker_entities_are_upper_cased_and_dollar_stripped() -> None:
    assert TrendQuery(entity_kind="ticker", entity="$aapl").entity == "AAPL"
    assert TrendQuery(entity_kind="topic", entity="m&a").entity == "m&a"
    assert HeadlinesQuery(entity_kind="ticker", entity="tsla").entity == "TSLA"
    # Every query that names an entity: alerts and windows too, and spaces around it.
    assert TrendQuery(entity_kind="ticker", entity=" $acme ").entity == "ACME"
    assert AlertsQuery(entity_kind="ticker", entity="acme").entity == "ACME"
    assert WindowsQuery(entity_kind="topic", entity=" Earnings ").entity == "Earnings"
    # The kind in the name; without either the filter is refused (it matched one by chance, or none).
    assert (AlertsQuery(entity="ticker:acme ").entity_kind, AlertsQuery(entity="ticker:acme ").entity) == (
        "ticker", "ACME",
    )  # fmt: skip
    assert TrendQuery(entity="ticker:$aapl").model_dump(include={"entity_kind", "entity"}) == {
        "entity_kind": "ticker", "entity": "AAPL",
    }  # fmt: skip
    for query in (TrendQuery, AlertsQuery, WindowsQuery, HeadlinesQuery):
        with pytest.raises(ValidationError, match=r"entity needs entity_kind .*or KIND:NAME"):
            query(entity="AAPL")


def test_headline_entity_needs_a_kind() -> None:
    with pytest.raises(ValidationError, match="entity needs entity_kind"):
        HeadlinesQuery(entity="AAPL")


def test_a_headline_search_needs_a_word() -> None:
    with pytest.raises(ValidationError, match="search needs a word"):
        HeadlinesQuery(search="   ")
    with pytest.raises(ValidationError, match="sentiment"):
        HeadlinesQuery.model_validate({"sentiment": "bad"})
    sql, params = HeadlinesQuery(search="x' OR 1=1 --", start=T, end=T + timedelta(days=1)).select()
    assert "x'" not in sql
    assert "1=1" not in sql
    assert params[-4:] == ["%x'%", "%OR%", "%1=1%", "%--%"]
    assert sql.count("?") == len(params)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (TrendQuery, "entity"),
        (TrendQuery, "search"),
        (EntitiesQuery, "search"),
        (MoversQuery, "search"),
        (HeadlinesQuery, "entity"),
        (HeadlinesQuery, "search"),
        (AlertsQuery, "entity"),
        (AlertsQuery, "subscription_id"),
        (AlertsQuery, "alert_id"),
        (FeedbackQuery, "subscription_id"),
        (WindowsQuery, "entity"),
    ],
)
def test_a_nul_in_any_text_filter_is_rejected_naming_it(query: type[Query], field: str) -> None:
    # PostgreSQL text cannot hold one: the query failed there (a 500) while DuckDB found nothing.
    with pytest.raises(ValidationError) as raised:
        query.model_validate({"entity_kind": "topic", field: "Earn\x00ings"})
    [error] = raised.value.errors()
    assert error["loc"] == (field,)
    assert "NUL character" in error["msg"]


def test_user_values_are_bound_never_formatted() -> None:
    evil = "x' OR 1=1 --"
    for q in (
        TrendQuery(entity_kind="topic", entity=evil, start=T, end=T + timedelta(days=1)),
        VolumeQuery(entity_kind="topic", entity=evil, start=T, end=T + timedelta(days=1)),
        HeadlinesQuery(entity_kind="source", entity=evil, start=T, end=T + timedelta(days=1)),
        AlertsQuery(
            entity_kind="source", entity=evil, subscription_id=evil, start=T, end=T + timedelta(days=1)
        ),
        WindowsQuery(entity_kind="topic", entity=evil, start=T, end=T + timedelta(days=1)),
    ):
        sql, params = q.select()
        assert evil not in sql
        assert evil in params
        assert sql.count("?") == len(params)


def test_trend_sql_uses_the_granularity_interval_and_ticker_unnest() -> None:
    sql, params = TrendQuery(entity_kind="ticker", granularity="5min", start=T, end=T + timedelta(1)).select()
    assert "INTERVAL '5 minutes'" in sql
    assert "unnest(tickers)" in sql
    assert params == [naive_utc(T), naive_utc(T + timedelta(1))]


# The queries that count a syndicated story once: its first copy by time, then story id.
_ONCE = (TrendQuery, EntitiesQuery, MoversQuery, HeadlinesQuery)


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        (TrendQuery(), ["entity"]),
        (VolumeQuery(), ["entity"]),
        (EntitiesQuery(), ["entity"]),
        (MoversQuery(), ["entity"]),
        (HeadlinesQuery(), ["story_id"]),
        (AlertsQuery(), ["a.alert_id"]),
        (FeedbackQuery(), ["f.alert_id"]),
        (WindowsQuery(), ["entity_kind", "entity", "window_kind", "key"]),
    ],
)
def test_text_ties_order_by_bytes_in_postgres_as_in_duckdb(query: Query, keys: list[str]) -> None:
    """PostgreSQL's text order follows the database's collation (en-US: "apnews" before "Bloomberg");
    DuckDB's compares bytes: PostgreSQL's text sort keys say COLLATE "C"."""
    on_postgres, _ = query.select(POSTGRES)
    on_duckdb, _ = query.select(DUCKDB)
    order = on_postgres.rsplit("ORDER BY", 1)[1]
    assert [k for k in keys if f'{k} COLLATE "C"' in order] == keys
    assert "COLLATE" not in on_duckdb
    if isinstance(query, _ONCE):  # the first copy of a story, too
        assert 'ORDER BY published_at, story_id COLLATE "C")' in on_postgres


def test_a_time_as_an_export_writes_it_reads_back_as_start() -> None:
    # CSV files write `2024-03-04 09:00:00+00`; an unencoded `+` in a query string arrives as a space.
    q = TrendQuery(start="2024-03-04 09:00:00+00", end="2024-03-05T04:00:00 00:00")  # type: ignore[arg-type]
    assert (q.start, q.end) == (datetime(2024, 3, 4, 9, tzinfo=UTC), datetime(2024, 3, 5, 4, tzinfo=UTC))
    assert TrendQuery(start="2024-03-04T04:00:00-05", end=q.end).start == q.start  # type: ignore[arg-type]
