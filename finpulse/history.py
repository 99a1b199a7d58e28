"""Analysts' access to the history store: every query as a pandas DataFrame.

    from finpulse import history
    df = history.trend(entity_kind="ticker", entity="AAPL", granularity="hour",
                       start="2024-03-01", end="2024-03-08")
    df.plot(x="bucket_start", y="negative_share")

Each function takes `source` first: a store URL or path, a Settings object, an
open `store.HistoryStore`, or None for the configured store (FINPULSE_STORE_URL).
Times are UTC (naive inputs are taken as UTC); the range is [start, end) and
defaults to the last 7 days. `limit`/`offset` page; `limit=None` returns all. `search`
keeps the stories whose titles hold each of its words ("rate cut"; any case).
Files are opened read-only, one query at a time, so the stream worker keeps
writing meanwhile (DuckDB allows one writer process; see store/duckdb.py).
The same queries back the API and its CSV / Parquet exports.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from finpulse.settings import Settings
    from store import HistoryStore, Query

Time = datetime | str | None


def trend(
    source: str | Path | Settings | HistoryStore | None = None,
    *,
    entity_kind: str | None = None,  # default topic; with an entity, its kind (or entity="ticker:AAPL")
    entity: str | None = None,
    start: Time = None,
    end: Time = None,
    granularity: str = "hour",
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """Sentiment per entity and time bucket (5min / hour / day) from the scored items.

    Columns: bucket_start, entity_kind, entity, count, negative_count, positive_count,
    negative_share, mean_score.
    """
    from store import TrendQuery

    return _frame(source, TrendQuery, locals())


def volume(
    source: str | Path | Settings | HistoryStore | None = None,
    *,
    entity_kind: str | None = None,  # default topic; with an entity, its kind (or entity="ticker:AAPL")
    entity: str | None = None,
    start: Time = None,
    end: Time = None,
    granularity: str = "hour",
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """Item counts per entity and time bucket. Columns: bucket_start, entity_kind, entity, count."""
    from store import VolumeQuery

    return _frame(source, VolumeQuery, locals())


def entities(
    source: str | Path | Settings | HistoryStore | None = None,
    *,
    entity_kind: str = "topic",
    start: Time = None,
    end: Time = None,
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """The entities of one kind with stories in the range, busiest first.

    Columns: entity_kind, entity, count, negative_count, positive_count, negative_share, mean_score.
    """
    from store import EntitiesQuery

    return _frame(source, EntitiesQuery, locals())


def movers(
    source: str | Path | Settings | HistoryStore | None = None,
    *,
    entity_kind: str = "ticker",
    start: Time = None,
    end: Time = None,
    min_stories: int = 10,
    direction: str = "up",
    search: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """Entities whose negative share rose (`direction="down"`: fell) most in [start, end) against
    the range of equal length before it.

    Columns: entity_kind, entity, count, negative_count, negative_share, mean_score, previous_count,
    previous_share, change (the last two NaN where the range before had under `min_stories`).
    """
    from store import MoversQuery

    return _frame(source, MoversQuery, locals())


def headlines(
    source: str | Path | Settings | HistoryStore | None = None,
    *,
    start: Time = None,
    end: Time = None,
    entity_kind: str | None = None,
    entity: str | None = None,
    sentiment: str = "negative",
    search: str | None = None,
    newest: bool = False,
    limit: int | None = 20,
    offset: int = 0,
) -> pd.DataFrame:
    """Headlines in [start, end), optionally for one entity: the most negative (or `sentiment`
    positive / neutral) first, or of any sentiment newest first (`sentiment="any"` or `newest`);
    `search`: words each title holds (any case, any order)."""
    from store import HeadlinesQuery

    return _frame(source, HeadlinesQuery, locals())


def alerts(
    source: str | Path | Settings | HistoryStore | None = None,
    *,
    start: Time = None,
    end: Time = None,
    subscription_id: str | None = None,
    entity_kind: str | None = None,
    entity: str | None = None,
    state: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """Alert history, newest first, with the analysts' verdict (tp / fp) where given."""
    from store import AlertsQuery

    return _frame(source, AlertsQuery, locals())


def windows(
    source: str | Path | Settings | HistoryStore | None = None,
    *,
    entity_kind: str | None = None,
    entity: str | None = None,
    start: Time = None,
    end: Time = None,
    window_kind: str | None = "tumbling",
    limit: int | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """Stored window aggregates (what the detector saw), oldest first."""
    from store import WindowsQuery

    return _frame(source, WindowsQuery, locals())


def feedback(
    source: str | Path | Settings | HistoryStore | None = None,
    *,
    start: Time = None,
    end: Time = None,
    verdict: str | None = None,
    subscription_id: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> pd.DataFrame:
    """Labelled alerts (verdict, note, author with the alert's entity and window): training data."""
    from store import FeedbackQuery

    return _frame(source, FeedbackQuery, locals())


def _frame(source: object, query_type: type[Query], args: dict[str, Any]) -> pd.DataFrame:
    filters = {k: v for k, v in args.items() if k != "source" and v is not None}
    paged = args.get("limit") is not None
    if not paged and args.get("offset"):
        raise ValueError("offset needs a limit: the rows of one page start at offset")
    if not paged:
        filters.pop("limit", None)
        filters.pop("offset", None)
    query = query_type.model_validate(filters)
    with _opened(source) as db:
        return db.frame(query, paged=paged)


@contextmanager
def _opened(source: object) -> Iterator[HistoryStore]:
    from finpulse.settings import Settings, StoreSettings, load_settings
    from store import HistoryStore, open_store

    if isinstance(source, HistoryStore):
        yield source
        return
    if source is None or isinstance(source, Settings):
        settings = (source or load_settings()).store
    elif isinstance(source, str | Path):
        settings = StoreSettings(url=str(source))
    else:
        raise TypeError(
            f"source must be a store URL or path, Settings or HistoryStore, not {type(source).__name__}"
        )
    with open_store(settings, read_only=True) as db:
        yield db
