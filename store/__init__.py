"""The history store: scored items, window aggregates, alerts, feedback, subscriptions.

from store import TrendQuery, open_store
with open_store(settings.store) as db:  # a DuckDB file, or a PostgreSQL server
    db.upsert_windows(windows)
    points = db.fetch(TrendQuery(entity_kind="ticker", entity="AAPL", granularity="hour"))
"""

from store.backends import open_store
from store.base import ExportFormat, HistoryStore
from store.duckdb import DuckDBStore
from store.errors import Changed, NotFound, StoreConfigError, StoreError, StoreLocked, StoreUnavailable
from store.queries import (
    MAX_LIMIT,
    STEPS,
    AlertsQuery,
    EntitiesQuery,
    FeedbackQuery,
    Granularity,
    HeadlinesQuery,
    MoversQuery,
    Query,
    TrendQuery,
    VolumeQuery,
    WindowsQuery,
    bucket_start,
)
from store.records import (
    AlertRecord,
    EntityCount,
    Feedback,
    Headline,
    LabelledAlert,
    Mover,
    StoreStats,
    SubscriptionRecord,
    TrendPoint,
    Verdict,
    VolumePoint,
    WindowRow,
)

__all__ = [
    "MAX_LIMIT",
    "STEPS",
    "AlertRecord",
    "AlertsQuery",
    "Changed",
    "DuckDBStore",
    "EntitiesQuery",
    "EntityCount",
    "ExportFormat",
    "Feedback",
    "FeedbackQuery",
    "Granularity",
    "Headline",
    "HeadlinesQuery",
    "HistoryStore",
    "LabelledAlert",
    "Mover",
    "MoversQuery",
    "NotFound",
    "Query",
    "StoreConfigError",
    "StoreError",
    "StoreLocked",
    "StoreStats",
    "StoreUnavailable",
    "SubscriptionRecord",
    "TrendPoint",
    "TrendQuery",
    "Verdict",
    "VolumePoint",
    "VolumeQuery",
    "WindowRow",
    "WindowsQuery",
    "bucket_start",
    "open_store",
]
