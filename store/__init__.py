"""The history store: scored items, window aggregates, alerts, feedback, subscriptions.

from store import DuckDBStore, TrendQuery
with DuckDBStore("history.duckdb") as db:
    db.upsert_windows(windows)
    points = db.fetch(TrendQuery(entity_kind="ticker", entity="AAPL", granularity="hour"))
"""

from store.duckdb import DuckDBStore, ExportFormat
from store.errors import NotFound, StoreConfigError, StoreError, StoreLocked
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
    "DuckDBStore",
    "EntitiesQuery",
    "EntityCount",
    "ExportFormat",
    "Feedback",
    "FeedbackQuery",
    "Granularity",
    "Headline",
    "HeadlinesQuery",
    "LabelledAlert",
    "Mover",
    "MoversQuery",
    "NotFound",
    "Query",
    "StoreConfigError",
    "StoreError",
    "StoreLocked",
    "StoreStats",
    "SubscriptionRecord",
    "TrendPoint",
    "TrendQuery",
    "Verdict",
    "VolumePoint",
    "VolumeQuery",
    "WindowRow",
    "WindowsQuery",
    "bucket_start",
]
