"""Rows the store returns: frozen models, times in UTC.

These are the store's read side; the write side takes the messages of
`finpulse.schema` (ScoredItem, WindowAggregate, AlertEvent) as they are.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from finpulse.schema import EntityKind, Resolution, Sentiment, in_utc

Verdict = Literal["tp", "fp"]
VERDICTS: tuple[Verdict, ...] = ("tp", "fp")


def as_utc(value: datetime) -> datetime:
    """Naive datetimes (the database's, or a user's) are UTC; aware ones are converted to UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else in_utc(value)


# A time with its zone as the CSV exports write it (`+00`, PostgreSQL's and DuckDB's own form) or as an
# unencoded `+` arrives in a query string (a space).
_SHORT_OFFSET = re.compile(
    r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)([+ -])(\d{2})(?::?(\d{2}))?$"
)


def _offset_spelt_out(value: object) -> object:
    """`2024-03-04 09:00:00+00` (or `... 00:00`, a `+` read as a space) as ISO 8601's `+00:00`."""
    if isinstance(value, str) and (m := _SHORT_OFFSET.match(value.strip())):
        return f"{m[1]}{'-' if m[2] == '-' else '+'}{m[3]}:{m[4] or '00'}"
    return value


UtcTime = Annotated[datetime, BeforeValidator(_offset_spelt_out), AfterValidator(as_utc)]


class Row(BaseModel):
    """Base of the store's result rows."""

    model_config = ConfigDict(frozen=True, extra="ignore")


# What the rows' numbers mean (the API docs show these).
Stories = Annotated[int, Field(description="stories (a story counts for each of its tickers)")]
NegativeShare = Annotated[float, Field(description="negative stories / stories, 0 to 1")]
BucketStart = Annotated[
    UtcTime, Field(description="the bucket's start (UTC); it holds [start, start + granularity)")
]
MeanScore = Annotated[float, Field(description="mean sentiment score (P(positive) - P(negative)), -1 to +1")]


class EntityCount(Row):
    """One entity, how many items it has in a range (what there is to chart) and their sentiment."""

    entity_kind: EntityKind
    entity: str
    count: Stories
    negative_count: int
    positive_count: int
    negative_share: NegativeShare
    mean_score: MeanScore


class Mover(Row):
    """One entity's negative share in a range against the range of equal length just before it.
    `previous_share` and `change` are None when the range before had too few stories."""

    entity_kind: EntityKind
    entity: str
    count: Stories
    negative_count: int
    negative_share: NegativeShare
    mean_score: MeanScore
    previous_count: int = Field(description="stories in the range of equal length just before")
    previous_share: float | None = Field(description="negative share then; None: too few stories")
    change: float | None = Field(description="negative_share - previous_share (0.25: 25 points up)")


class TrendPoint(EntityCount):
    """Sentiment of one entity in one time bucket, computed from scored items."""

    bucket_start: BucketStart


class VolumePoint(Row):
    """How many items mentioned one entity in one time bucket."""

    bucket_start: BucketStart
    entity_kind: EntityKind
    entity: str
    count: Stories


class Headline(Row):
    """One stored headline with its classification."""

    story_id: str
    title: str
    url: str | None
    source: str
    topic: str
    tickers: tuple[str, ...]
    published_at: UtcTime
    sentiment: Sentiment
    sentiment_score: float = Field(description="P(positive) - P(negative), -1 to +1")


class AlertRecord(Row):
    """One stored alert event with the analysts' verdict on it, if any."""

    alert_id: str
    subscription_id: str
    state: Literal["fired", "resolved"]
    entity_kind: EntityKind
    entity: str
    window_start: UtcTime = Field(description="the window the detector tested (UTC)")
    window_end: UtcTime
    count: Stories
    negative_count: int
    negative_share: NegativeShare
    baseline_negative_share: float = Field(description="the entity's usual negative share, 0 to 1")
    p_value: float = Field(description="one-sided binomial test against the baseline, adjusted")
    channel: str | None
    created_at: UtcTime = Field(description="when the alert was sent (UTC)")
    verdict: Verdict | None = Field(
        default=None, description="an analyst's: tp a real event, fp a false alarm"
    )
    note: str | None = None
    feedback_by: str | None = None
    feedback_at: UtcTime | None = None
    fired_alert_id: str | None = Field(
        default=None, description="on a resolved alert: the fired alert it ends"
    )
    resolved_because: Resolution | None = Field(
        default=None,
        description="on a resolved alert: calm (back near its baseline), few_stories, quiet (no stories) "
        "or unwatched (its subscription stopped testing it)",
    )
    still_open: bool = Field(default=False, description="a fired alert no resolve has ended yet")


class Feedback(Row):
    """An analyst's verdict on an alert: true positive (tp) or false positive (fp)."""

    alert_id: str = Field(min_length=1, max_length=200)
    verdict: Verdict
    note: str = Field(default="", max_length=2_000)
    author: str = Field(default="anonymous", min_length=1, max_length=200)
    created_at: UtcTime


class LabelledAlert(Row):
    """Feedback joined with its alert: a labelled event for the backtest and training data."""

    alert_id: str
    verdict: Verdict
    note: str
    author: str
    created_at: UtcTime
    subscription_id: str
    state: Literal["fired", "resolved"]
    entity_kind: EntityKind
    entity: str
    window_start: UtcTime
    window_end: UtcTime
    negative_share: float
    baseline_negative_share: float
    p_value: float


class WindowRow(Row):
    """A stored window aggregate without its headline evidence (flat, for tables)."""

    key: str
    entity_kind: EntityKind
    entity: str
    window_kind: Literal["tumbling", "hopping"]
    window_start: UtcTime
    window_end: UtcTime
    count: int
    negative_count: int
    negative_share: float
    mean_score: float
    baseline_negative_share: float | None
    baseline_volume: float | None
    revision: int


class SubscriptionRecord(Row):
    """A subscription stored as JSON, validated by the caller's model (alerts.subscriptions)."""

    id: str
    body: dict[str, Any]
    updated_at: UtcTime


class StoreStats(Row):
    """Schema version and row counts: what a health check reports."""

    schema_version: int
    scored_items: int
    windows: int
    alerts: int
    feedback: int
    subscriptions: int
    latest_scored_at: UtcTime | None = Field(default=None, description="when the newest story was scored")
