"""Message schemas: the only thing stages share besides configuration.

Each message is a frozen pydantic model with `schema_version`, serialises to
JSON bytes with `to_bytes()` and parses with `Model.from_bytes()`, which
raises `InvalidRecord` with a one-line reason (that reason goes on the
dead-letter topic). Unknown fields are ignored so older readers accept newer
minor additions; a newer `schema_version` than the reader knows is rejected.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from finpulse.errors import InvalidRecord

SCHEMA_VERSION = 1

# Limits that keep one record from swamping a batch; news headlines and
# summaries are far shorter (the training texts are under 300 characters).
MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 20_000

SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

# The 20 topics of the "Twitter Financial News" topic set, in the order of its
# label ids (../shared/data/README.md).
TOPICS: tuple[str, ...] = (
    "Analyst Update",
    "Fed | Central Banks",
    "Company | Product News",
    "Treasuries | Corporate Debt",
    "Dividend",
    "Earnings",
    "Energy | Oil",
    "Financials",
    "Currencies",
    "General News | Opinion",
    "Gold | Metals | Materials",
    "IPO",
    "Legal | Regulation",
    "M&A | Investments",
    "Macro",
    "Markets",
    "Politics",
    "Personnel Change",
    "Stock Commentary",
    "Stock Movement",
)
# A ticker symbol as ingestion finds it in news ($AAPL, $BRK.B): what a ticker entity can be.
TICKER = re.compile(r"[A-Z]{1,5}(?:\.[A-Z]{1,2})?")
# How news APIs also write one: an exchange before it (NASDAQ:AAPL), a share class after a dash (BRK-B).
_EXCHANGE = re.compile(r"^[A-Z]{1,10}:\s*")
_CLASS_DASH = re.compile(r"^([A-Z]{1,5})-([A-Z]{1,2})$")


def ticker_symbol(text: str) -> str | None:
    """`text` as a ticker entity (`$aapl`, `NASDAQ:AAPL` -> `AAPL`, `BRK-B` -> `BRK.B`), or None where
    it is no symbol ("Apple Inc", "$5"): no subscription could name it (they take TICKER only)."""
    symbol = _EXCHANGE.sub("", text.strip().lstrip("$").strip().upper())
    symbol = _CLASS_DASH.sub(r"\1.\2", symbol)
    return symbol if TICKER.fullmatch(symbol) else None


Sentiment = Literal["negative", "neutral", "positive"]
EntityKind = Literal["topic", "ticker", "source"]
WindowKind = Literal["tumbling", "hopping"]
ENTITY_KINDS: tuple[EntityKind, ...] = ("topic", "ticker", "source")


def normalise_entity(kind: EntityKind, name: str) -> str:
    """Entity names as windows carry them: tickers as `ticker_symbol` reads them (`$aapl`, `BRK-B`,
    `NYSE: IBM`), one that is no symbol upper-case without '$' (said so where it is checked)."""
    name = name.strip()
    return (ticker_symbol(name) or name.upper().lstrip("$")) if kind == "ticker" else name


def parse_entity(text: str) -> tuple[EntityKind, str]:
    """`"ticker:ACME"` -> ("ticker", "ACME"); ValueError naming the kinds."""
    kind, sep, name = text.partition(":")
    if not sep or kind not in ENTITY_KINDS or not name.strip():
        raise ValueError(
            f"entity {text!r} is not KIND:NAME with KIND one of {', '.join(ENTITY_KINDS)} (e.g. ticker:ACME)"
        )
    return kind, normalise_entity(kind, name)  # `in ENTITY_KINDS` narrowed kind to EntityKind


def in_utc(value: datetime) -> datetime:
    """An aware time in UTC; ValueError where that overflows ("0001-01-01T00:00:00+01:00"): a
    ValueError is pydantic's, a clear error or dead letter, not a crash."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range in UTC") from None


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (use UTC)")
    return in_utc(value)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

# When a story can have been published: Go's and .NET's "no date" (0001-01-01) or a year-9999 typo
# would overflow the window arithmetic downstream and take the story's batch-mates with it.
EARLIEST_PUBLISHED = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_PUBLISHED = datetime(9000, 1, 1, tzinfo=UTC)


def publishable(value: datetime) -> datetime:
    """`value` (UTC) if a story can have been published then, else ValueError saying why."""
    if not EARLIEST_PUBLISHED <= value < LATEST_PUBLISHED:
        first, last = EARLIEST_PUBLISHED.year, LATEST_PUBLISHED.year
        raise ValueError(f"published time {value.isoformat()} is not between {first} and {last}")
    return value


PublishedTime = Annotated[datetime, AfterValidator(_utc), AfterValidator(publishable)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def story_id_for(*parts: str) -> str:
    """A stable story id: the first 16 hex digits of SHA-256 over the parts."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:16]


class Message(BaseModel):
    """Base of every message: versioned, frozen, JSON on the wire."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_strip_whitespace=True)
    kind: ClassVar[str] = "message"

    schema_version: int = SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if not 1 <= v <= SCHEMA_VERSION:
            raise ValueError(f"schema_version {v} is not supported (this reader knows 1..{SCHEMA_VERSION})")
        return v

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes | str | None) -> Self:
        """Parse JSON bytes; raises InvalidRecord with a short reason."""
        if data is None:
            raise InvalidRecord(cls.kind, "empty record (no value)")
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise InvalidRecord(cls.kind, describe_validation_error(exc)) from exc

    @classmethod
    def from_dict(cls, data: object) -> Self:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise InvalidRecord(cls.kind, describe_validation_error(exc)) from exc


# pydantic's words for a config file's reader: what to write instead.
_LISTS = ("list_type", "tuple_type")
_PLAINER = {
    "list_type": 'give a list, e.g. ["A", "B"]',
    "tuple_type": 'give a list, e.g. ["A", "B"]',
    "time_parsing": "give a time as HH:MM:SS, e.g. 08:30:00",
    "time_type": "give a time as HH:MM:SS, e.g. 08:30:00",
}


def describe_validation_error(
    exc: ValidationError, limit: int = 3, where: Callable[[tuple[int | str, ...]], str] | None = None
) -> str:
    """One line naming the first few failing fields; `where` names a field's location as its
    reader knows it (an option, a variable, a source's name), else `a.b.0`."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = where(err["loc"]) if where is not None else ".".join(str(p) for p in err["loc"])
        # A validator's own message reads as it was written, without pydantic's "Value error, ".
        msg = _PLAINER.get(err["type"], err["msg"].removeprefix("Value error, "))
        if err["type"] in _LISTS and isinstance(err.get("input"), str):  # "ACME, AAPL" for a list
            msg = "give a list: " + json.dumps([w.strip() for w in err["input"].split(",") if w.strip()])
        parts.append(f"{loc}: {msg}" if loc else msg)
    more = exc.error_count() - limit
    if more > 0:
        parts.append(f"(+{more} more)")
    return "; ".join(parts)


class NewsItem(Message):
    """One news story as ingested, normalised, before classification."""

    kind: ClassVar[str] = "NewsItem"

    story_id: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    summary: str = Field(default="", max_length=MAX_SUMMARY_CHARS)
    url: str | None = Field(default=None, max_length=4_000)
    published_at: PublishedTime
    fetched_at: UtcDatetime
    # True when the feed gave no usable date and fetch time stands in for it.
    published_estimated: bool = False
    language: str | None = Field(default=None, max_length=16)
    tickers: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    duplicate_of: str | None = None

    @field_validator("tickers")
    @classmethod
    def _symbols(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        # What is no symbol ("$" alone, "Apple Inc" from an API's field) opens no window: none could
        # match a subscription, and an empty one no WindowAggregate can carry.
        symbols = (ticker_symbol(t) for t in v)
        return tuple(dict.fromkeys(s for s in symbols if s))

    @property
    def text(self) -> str:
        """What the classifier reads: the title, then the summary."""
        return f"{self.title}. {self.summary}" if self.summary else self.title


class ScoredItem(Message):
    """A NewsItem with the classifier's topic and sentiment."""

    kind: ClassVar[str] = "ScoredItem"

    item: NewsItem
    topic: str = Field(min_length=1)
    topic_probs: dict[str, float]
    sentiment: Sentiment
    sentiment_probs: dict[Sentiment, float]
    # P(positive) - P(negative), in [-1, 1].
    sentiment_score: float = Field(ge=-1.0, le=1.0)
    model_version: str = Field(min_length=1)
    scored_at: UtcDatetime

    @property
    def story_id(self) -> str:
        return self.item.story_id


# What the number beside a headline is (sentiment_score: P(positive) - P(negative)), where it shows.
SCORE_LEGEND = "(score: -1 most negative, +1 most positive)"


class HeadlineRef(Message):
    """Evidence: one headline with its link and score."""

    kind: ClassVar[str] = "HeadlineRef"

    story_id: str
    title: str
    url: str | None = None
    source: str | None = None
    sentiment_score: float = Field(ge=-1.0, le=1.0)


class WindowAggregate(Message):
    """Sentiment of one entity over one event-time window."""

    kind: ClassVar[str] = "WindowAggregate"

    entity_kind: EntityKind
    entity: str = Field(min_length=1)
    window_kind: WindowKind = "tumbling"
    window_start: UtcDatetime
    window_end: UtcDatetime
    count: int = Field(ge=0)
    negative_count: int = Field(ge=0)
    negative_share: float = Field(ge=0.0, le=1.0)
    mean_score: float = Field(ge=-1.0, le=1.0)
    top_negative: tuple[HeadlineRef, ...] = ()
    baseline_negative_share: float | None = Field(default=None, ge=0.0, le=1.0)
    baseline_volume: float | None = Field(default=None, ge=0.0)
    # How far apart its kind's windows start (hopping: less than their length); None: as long as
    # the window (tumbling, or a window from a version before this field).
    step_s: int | None = Field(default=None, gt=0)
    # Bumped each time a late item updates an already emitted window.
    revision: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        if self.negative_count > self.count:
            raise ValueError("negative_count cannot exceed count")
        return self

    @property
    def key(self) -> str:
        """Kafka / store key: one window of one entity."""
        return f"{self.entity_kind}:{self.entity}:{self.window_kind}:{self.window_start.isoformat()}"


# Why an alert resolved: its windows' share back near the baseline, too few stories to test, or
# no stories at all.
Resolution = Literal["calm", "few_stories", "quiet", "unwatched"]


class AlertEvent(Message):
    """A subscription's alert fired or resolved, with the evidence behind it."""

    kind: ClassVar[str] = "AlertEvent"

    alert_id: str = Field(min_length=1)  # dedup key: one per (subscription, entity, episode, state)
    subscription_id: str = Field(min_length=1)
    state: Literal["fired", "resolved"]
    entity_kind: EntityKind
    entity: str
    window_start: UtcDatetime
    window_end: UtcDatetime
    count: int = Field(ge=0)
    negative_count: int = Field(ge=0)
    negative_share: float = Field(ge=0.0, le=1.0)
    baseline_negative_share: float = Field(ge=0.0, le=1.0)
    p_value: float = Field(ge=0.0, le=1.0)
    significance: float = Field(gt=0.0, lt=1.0)
    top_headlines: tuple[HeadlineRef, ...] = ()
    channel: str | None = None
    created_at: UtcDatetime
    window_kind: WindowKind = "tumbling"
    # On a resolved event: the alert_id of the fired event it closes (its Slack thread).
    fired_alert_id: str | None = None
    resolved_because: Resolution | None = None
    # How p_value was adjusted across the subscription's group (its detector.correction); None on
    # events from before AlertEvent carried it.
    correction: Literal["bh", "holm", "none"] | None = None


class SourceStatus(Message):
    """A news source as its ingestor last saw it: published after each poll (keyed by `source`
    on a compacted topic), so `finpulse status` and the API judge its health from any host."""

    kind: ClassVar[str] = "SourceStatus"

    source: str = Field(min_length=1, max_length=200)
    source_kind: Literal["feed", "api", "replay"]
    enabled: bool = True
    interval_s: float = Field(gt=0)
    host: str = ""  # the ingestor's host name
    published_at: UtcDatetime
    last_poll_at: UtcDatetime | None = None
    last_success_at: UtcDatetime | None = None
    next_poll_at: UtcDatetime | None = None
    consecutive_errors: int = Field(default=0, ge=0)
    errors_total: int = Field(default=0, ge=0)
    last_error: str | None = None
    items_published: int = Field(default=0, ge=0)
    last_new_at: UtcDatetime | None = None  # the last poll that published a new item
    last_entries: int = Field(default=0, ge=0)  # what the last poll that read the source found
    last_invalid: int = Field(default=0, ge=0)  # of those, the ones dead-lettered


# The largest record a dead letter keeps (base64: 800 KB, under Kafka's default 1 MB message).
DEAD_LETTER_MAX_VALUE = 600_000


class DeadLetter(Message):
    """A record a stage could not process: original bytes plus the reason."""

    kind: ClassVar[str] = "DeadLetter"

    source_topic: str
    stage: str
    reason: str
    error_type: str
    partition: int | None = None
    offset: int | None = None
    key_b64: str | None = None
    value_b64: str | None = None
    failed_at: UtcDatetime

    @classmethod
    def wrap(
        cls,
        *,
        source_topic: str,
        stage: str,
        error: BaseException,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> DeadLetter:
        reason = (error.reason if isinstance(error, InvalidRecord) else str(error) or repr(error))[:2_000]
        if value is not None and len(value) > DEAD_LETTER_MAX_VALUE:
            # Base64 adds a third: kept whole, the letter would pass Kafka's 1 MB and fail to send.
            where = f"{source_topic}[{partition}]@{offset}" if offset is not None else source_topic
            reason += f" (the record, {len(value):,} bytes, is too big to keep here: it stays at {where})"
            value = None
        return cls(
            source_topic=source_topic,
            stage=stage,
            reason=reason,
            error_type=type(error).__name__,
            partition=partition,
            offset=offset,
            key_b64=_b64(key),
            value_b64=_b64(value),
            failed_at=utcnow(),
        )

    def original_value(self) -> bytes | None:
        return base64.b64decode(self.value_b64) if self.value_b64 is not None else None

    def original_key(self) -> bytes | None:
        return base64.b64decode(self.key_b64) if self.key_b64 is not None else None


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data is not None else None
