"""The store's read queries, one frozen model per question.

A query model holds the filters (validated: a time range with start < end,
paging bounds) and renders its SQL with bound parameters. The same model
backs the API's query parameters, the pandas facade and the exports, so the
three always agree. Only validated literals (entity kinds, a fixed interval
table) are ever formatted into SQL text; user values are bound parameters.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from finpulse.schema import ENTITY_KINDS, EntityKind, Sentiment, WindowKind, normalise_entity, parse_entity
from store.dialect import BUCKET_ORIGIN, DUCKDB, Dialect
from store.records import (
    AlertRecord,
    EntityCount,
    Headline,
    LabelledAlert,
    Mover,
    Row,
    TrendPoint,
    UtcTime,
    Verdict,
    VolumePoint,
    WindowRow,
)

Granularity = Literal["5min", "hour", "day"]
# The filters several queries take, described once for the API docs.
OnlyKind = Annotated[EntityKind | None, Field(description="only of this kind: topic, ticker, source")]
OnlyEntity = Annotated[str | None, Field(min_length=1, max_length=200, description="only this entity's")]
# SQL interval literals for each granularity (the only values formatted into SQL).
INTERVALS: dict[str, str] = {"5min": "5 minutes", "hour": "1 hour", "day": "1 day"}
STEPS: dict[str, timedelta] = {
    "5min": timedelta(minutes=5),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
# The range a query covers when it names no start: the last week.
DEFAULT_RANGE = timedelta(days=7)
# Where a list of the alerts open now starts by default: any time.
OPEN_SINCE = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LIMIT = 10_000
# Which column holds an item's entity of each kind (tickers: one row per ticker).
_ENTITY_COLUMN: dict[str, str] = {"topic": "topic", "source": "source", "ticker": "unnest(tickers)"}

Params = list[Any]


def bucket_start(at: datetime, granularity: str) -> datetime:
    """The start of the bucket holding `at` (aware, UTC), as the database computes it."""
    return at - (at - BUCKET_ORIGIN) % STEPS[granularity]


def earlier(at: datetime, span: timedelta) -> datetime:
    """`at - span`, or the earliest time there is where that is before it (a range from year 1)."""
    try:
        return at - span
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def naive_utc(value: datetime) -> datetime:
    """The database stores UTC as TIMESTAMP without zone: bind naive UTC values."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


class Query(BaseModel):
    """Base: a time range [start, end) in UTC and limit/offset paging."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    row: ClassVar[type[Row]]

    start: UtcTime | None = Field(default=None, description="inclusive, ISO 8601; default end - 7 days")
    end: UtcTime | None = Field(default=None, description="exclusive, ISO 8601; default now")
    limit: int = Field(default=500, ge=1, le=MAX_LIMIT, description="rows in the page")
    offset: int = Field(default=0, ge=0, le=1_000_000_000, description="rows to skip: the page's start")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        """Every text filter, here and in subclasses: PostgreSQL text cannot hold a NUL (the query
        failed there; DuckDB found nothing), and no stored name, id or title has one."""
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("holds a NUL character (\\x00): remove it (no stored text holds one)")
        return value

    @model_validator(mode="after")
    def _entity_as_stored(self) -> Self:
        """An entity filter names its kind (`entity_kind`, or `entity=ticker:ACME`) and the entity
        as windows and alerts carry it (" $acme " is ACME): without a kind it matched one by chance
        (a topic called AAPL: nothing) or none."""
        kind, entity = getattr(self, "entity_kind", None), getattr(self, "entity", None)
        if entity is None:
            return self
        if kind is None or "entity_kind" not in self.model_fields_set:
            prefix, sep, _ = entity.partition(":")
            if not sep or prefix.strip() not in ENTITY_KINDS:
                raise ValueError(
                    "entity needs entity_kind (topic, ticker or source), or KIND:NAME (ticker:AAPL)"
                )
            kind, entity = parse_entity(entity.strip())
            object.__setattr__(self, "entity_kind", kind)
        object.__setattr__(self, "entity", normalise_entity(kind, entity))
        return self

    @model_validator(mode="after")
    def _range(self) -> Self:
        end = self.end or datetime.now(UTC).replace(microsecond=0)
        start = self.start or earlier(end, DEFAULT_RANGE)
        if start >= end:
            raise ValueError(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        return self

    def bounds(self) -> Params:
        """[start, end] as naive UTC for binding."""
        # Both are set by the validator.
        assert self.start is not None
        assert self.end is not None
        return [naive_utc(self.start), naive_utc(self.end)]

    def select(self, dialect: Dialect = DUCKDB) -> tuple[str, Params]:
        """SQL (ordered, without LIMIT) in `dialect`, and its parameters."""
        raise NotImplementedError


class _Searchable(Query):
    """`search`: only the stories whose title holds each of its words (any case, any order, as
    parts of words: "rate cut" finds "Rate cuts"; LIKE's wildcards in a word are taken as written)."""

    search: str | None = Field(
        default=None, min_length=1, max_length=200, description="words each story's title holds"
    )

    @model_validator(mode="after")
    def _search_has_words(self) -> Self:
        if self.search is not None and not self.search.split():
            raise ValueError("search needs a word")
        return self

    def _title_filter(self) -> tuple[str, Params]:
        words = (self.search or "").split()
        escaped = [f"%{_literal(word)}%" for word in words]
        return " AND title ILIKE ? ESCAPE '\\'" * len(words), escaped

    def _stories(
        self,
        dialect: Dialect,
        column: str,
        start: datetime,
        end: datetime,
        only: tuple[str, Params] = ("", []),
    ) -> tuple[str, Params]:
        """The (searched) stories of [start, end) with their entity (`column`), and its parameters:
        a syndicated story once per entity, as its windows count it. `only`: a condition on the
        stories (one entity's)."""
        words, params = self._title_filter()
        return _once(
            dialect,
            f"published_at, sentiment, sentiment_score, {column} AS entity",
            f"published_at >= ? AND published_at < ?{words}{only[0]}",
            [start, end, *params, *only[1]],
            per="entity",
        )


def _once(dialect: Dialect, columns: str, where: str, params: Params, per: str = "") -> tuple[str, Params]:
    """SQL for `columns` of the scored items `where` holds, with its parameters: a syndicated
    story once (per `per`, one of the columns). Originals pass straight through; a copy counts
    only where its original is not among them (for that `per`), the first such copy alone:
    numbering every story of the range cost trends several times their time."""
    named = [c.split(" AS ")[-1].strip() for c in columns.split(", ")]
    names = ", ".join(named)
    numbered = ", ".join([columns, *(c for c in ("duplicate_of", "story_id") if c not in named)])
    same = f" AND o.{per} = c.{per}" if per else ""
    partition = f"duplicate_of, {per}" if per else "duplicate_of"
    sql = (
        f"WITH s AS (SELECT {numbered} FROM scored_items WHERE {where}) "  # noqa: S608
        # A row naming itself its original (a replay file may) is an original.
        f"SELECT {names} FROM s WHERE duplicate_of IS NULL OR duplicate_of = story_id UNION ALL "
        f"SELECT {names} FROM (SELECT *, row_number() OVER (PARTITION BY {partition} "
        f"ORDER BY published_at, {dialect.bytewise('story_id')}) AS nth "
        "FROM s c WHERE duplicate_of <> story_id AND NOT EXISTS "
        f"(SELECT 1 FROM s o WHERE o.story_id = c.duplicate_of{same})) f WHERE nth = 1"
    )
    return sql, params


def _literal(text: str) -> str:
    """`text` for a LIKE pattern with `ESCAPE '\\'`: its own `%`, `_` and `\\` taken as written."""
    return re.sub(r"([\\%_])", r"\\\1", text)


def _entity_filter(kind: str | None, entity: str | None, column: str = "entity") -> tuple[str, Params]:
    if entity is None:
        return "", []
    if kind == "ticker" and column != "entity":
        # Both databases have array_position; DuckDB runs it 14x faster than `? = ANY(tickers)`.
        return " AND array_position(tickers, ?) IS NOT NULL", [entity]
    return f" AND {column} = ?", [entity]


class _EntityQuery(_Searchable):
    entity_kind: EntityKind = Field(default="topic", description="topic, ticker or source")
    entity: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="one entity of that kind (Earnings, ACME or $ACME, reuters); default: all of them",
    )

    def _items(self, dialect: Dialect) -> tuple[str, Params]:
        """The range's (searched) stories with their entity of this kind, and its parameters; only
        those of the entity, when one is asked for (an index finds them, not a scan of the range)."""
        only = _entity_filter(self.entity_kind, self.entity, column=self.entity_kind)
        start, end = self.bounds()
        return self._stories(dialect, _ENTITY_COLUMN[self.entity_kind], start, end, only)


# The share of a group's items that are negative (a float in both databases).
_NEGATIVE_SHARE = "CAST(count(*) FILTER (WHERE sentiment = 'negative') AS DOUBLE PRECISION) / count(*)"
# A group of items' volume and sentiment (trend buckets, entities).
_SENTIMENT_COUNTS = (
    "count(*) AS count, count(*) FILTER (WHERE sentiment = 'negative') AS negative_count, "
    "count(*) FILTER (WHERE sentiment = 'positive') AS positive_count, "
    f"{_NEGATIVE_SHARE} AS negative_share, avg(sentiment_score) AS mean_score"
)


class TrendQuery(_EntityQuery):
    """Sentiment per entity and time bucket, from the scored items."""

    row: ClassVar[type[Row]] = TrendPoint
    measures: ClassVar[str] = _SENTIMENT_COUNTS  # each bucket's columns
    granularity: Granularity = Field(default="hour", description="bucket size: 5min, hour or day")

    def _bucket(self, dialect: Dialect) -> str:
        return dialect.bucket(INTERVALS[self.granularity], "published_at")

    def select(self, dialect: Dialect = DUCKDB) -> tuple[str, Params]:
        where, params = _entity_filter(self.entity_kind, self.entity)
        items, item_params = self._items(dialect)
        sql = (
            f"WITH e AS ({items}) "  # noqa: S608
            f"SELECT {self._bucket(dialect)} AS bucket_start, "
            f"'{self.entity_kind}' AS entity_kind, entity, {self.measures} "
            f"FROM e WHERE entity IS NOT NULL{where} GROUP BY 1, entity "
            f"ORDER BY bucket_start, {dialect.bytewise('entity')}"
        )
        return sql, [*item_params, *params]


class VolumeQuery(TrendQuery):
    """Item counts per entity and time bucket."""

    row: ClassVar[type[Row]] = VolumePoint
    measures: ClassVar[str] = "count(*) AS count"


class EntitiesQuery(_EntityQuery):
    """The entities of one kind with items in the range, busiest first, with their sentiment."""

    row: ClassVar[type[Row]] = EntityCount

    def select(self, dialect: Dialect = DUCKDB) -> tuple[str, Params]:
        where, params = _entity_filter(self.entity_kind, self.entity)
        items, item_params = self._items(dialect)
        sql = (
            f"WITH e AS ({items}) "  # noqa: S608
            f"SELECT '{self.entity_kind}' AS entity_kind, entity, {_SENTIMENT_COUNTS} FROM e "
            f"WHERE entity IS NOT NULL{where} GROUP BY entity "
            f"ORDER BY count DESC, {dialect.bytewise('entity')}"
        )
        return sql, [*item_params, *params]


class MoversQuery(_Searchable):
    """The entities whose negative share rose most (`direction` up) or fell most (down) in the range
    against the range of equal length just before it; both ranges need `min_stories` for a change.
    Only risers (up) or fallers (down) are listed, or every entity (any); rising, those with too
    few stories before (new in the news) follow, by negative share."""

    row: ClassVar[type[Row]] = Mover
    entity_kind: EntityKind = Field(default="ticker", description="topic, ticker or source")
    min_stories: int = Field(
        default=10, ge=1, le=1_000_000, description="stories each range needs for a change"
    )
    direction: Literal["up", "down", "any"] = Field(
        default="up", description="up: risers and entities new in the range; down: fallers; any: every entity"
    )

    def previous_start(self) -> datetime:
        """The start of the range before (as far back as datetimes go)."""
        assert self.start is not None  # both set by the validator
        assert self.end is not None
        span = self.end - self.start
        floor = datetime.min.replace(tzinfo=UTC)
        return self.start - span if self.start - floor > span else floor

    def select(self, dialect: Dialect = DUCKDB) -> tuple[str, Params]:
        start, end = self.bounds()
        before = naive_utc(self.previous_start())
        order, keep = {
            "up": ("DESC", "change > 0 OR change IS NULL"),
            "down": ("ASC", "change < 0"),
            "any": ("DESC", "TRUE"),  # every entity with its change (a digest's day)
        }[self.direction]
        # Each range's stories on its own, as the entities query counts them: a copy in this range
        # whose original is in the range before is this range's first of its kind.
        column = _ENTITY_COLUMN[self.entity_kind]
        items, item_params = self._stories(dialect, column, start, end)
        earlier, earlier_params = self._stories(dialect, column, before, start)
        sql = (
            f"WITH e AS ({items}), p AS ({earlier}), "  # noqa: S608
            f"now AS (SELECT entity, {_SENTIMENT_COUNTS} FROM e "
            "WHERE entity IS NOT NULL GROUP BY entity HAVING count(*) >= ?), "
            f"was AS (SELECT entity, count(*) AS n, {_NEGATIVE_SHARE} AS share "
            "FROM p WHERE entity IS NOT NULL GROUP BY entity) "
            f"SELECT '{self.entity_kind}' AS entity_kind, entity, count, negative_count, negative_share, "
            "mean_score, coalesce(n, 0) AS previous_count, "
            "CASE WHEN n >= ? THEN share END AS previous_share, "
            "CASE WHEN n >= ? THEN negative_share - share END AS change "
            "FROM now LEFT JOIN was USING (entity)"
        )
        ranked = (
            f"SELECT * FROM ({sql}) m WHERE {keep} "  # noqa: S608
            f"ORDER BY change {order} NULLS LAST, negative_share DESC, count DESC, "
            f"{dialect.bytewise('entity')}"
        )
        return ranked, [*item_params, *earlier_params, self.min_stories, self.min_stories, self.min_stories]


class HeadlinesQuery(_Searchable):
    """Stored headlines: of one sentiment (default negative), the most extreme score first, or of
    any sentiment (or `newest`), the newest first."""

    row: ClassVar[type[Row]] = Headline
    entity_kind: EntityKind | None = Field(default=None, description="with entity: topic, ticker or source")
    entity: OnlyEntity = None
    sentiment: Literal[Sentiment, "any"] = Field(
        default="negative", description="one sentiment, the most extreme first; any: newest first"
    )
    newest: bool = Field(default=False, description="newest first instead of the most extreme score")

    @property
    def newest_first(self) -> bool:
        """Newest first (any sentiment, or `newest`), else the most extreme score first."""
        return self.newest or self.sentiment == "any"

    def select(self, dialect: Dialect = DUCKDB) -> tuple[str, Params]:
        where, params = _entity_filter(self.entity_kind, self.entity, column=self.entity_kind or "topic")
        if self.sentiment != "any":
            where, params = f" AND sentiment = ?{where}", [self.sentiment, *params]
        words, word_params = self._title_filter()
        where, params = where + words, [*params, *word_params]
        order = f"published_at DESC, {dialect.bytewise('story_id')}"
        if not self.newest_first:
            order = f"sentiment_score {'DESC' if self.sentiment == 'positive' else 'ASC'}, {order}"
        stories, params = _once(
            dialect,
            "story_id, title, url, source, topic, tickers, published_at, sentiment, sentiment_score",
            f"published_at >= ? AND published_at < ?{where}",
            [*self.bounds(), *params],
        )
        return f"SELECT * FROM ({stories}) h ORDER BY {order}", params  # noqa: S608


# The fired alerts a resolve has ended, joined once (a subquery per row scanned every alert's
# JSON on PostgreSQL); a fired alert without one is still open while its subscription exists.
_ENDED = (
    "LEFT JOIN (SELECT DISTINCT record->>'fired_alert_id' AS fired_id FROM alerts WHERE state = 'resolved') "
    "ended ON ended.fired_id = a.alert_id"
)
# A deleted subscription's alerts can never resolve: not open.
_OPEN = (
    "a.state = 'fired' AND ended.fired_id IS NULL "
    "AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.id = a.subscription_id)"
)
_ALERT_COLUMNS = (
    "a.alert_id, a.subscription_id, a.state, a.entity_kind, a.entity, a.window_start, a.window_end, "
    "a.count, a.negative_count, a.negative_share, a.baseline_negative_share, a.p_value, a.channel, "
    "a.created_at, f.verdict, f.note, f.author AS feedback_by, f.created_at AS feedback_at, "
    # From the kept message (no column of its own): the fired alert a resolved one ends.
    "a.record->>'fired_alert_id' AS fired_alert_id, a.record->>'resolved_because' AS resolved_because, "
    f"({_OPEN}) AS still_open"
)


class AlertsQuery(Query):
    """Alert history, newest first, with feedback: the alerts sent in the range (`timed_by`
    created), or those whose windows start in it (window: a trend's, however late they were sent,
    as after a replay or a worker's lag)."""

    row: ClassVar[type[Row]] = AlertRecord
    subscription_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="only its alerts"
    )
    entity_kind: OnlyKind = None
    entity: OnlyEntity = None
    state: Literal["fired", "resolved", "open"] | None = Field(
        default=None,
        description="fired, resolved, or open (fired and not resolved yet: sent at any time unless "
        "start is given); default all",
    )
    timed_by: Literal["created", "window"] = Field(
        default="created", description="created: alerts sent in the range; window: whose windows start in it"
    )
    alert_id: str | None = Field(
        default=None, min_length=1, max_length=200,
        description="only the alert whose id starts so (a message shows its first 12 characters)",
    )  # fmt: skip

    @model_validator(mode="before")
    @classmethod
    def _open_at_any_time(cls, data: Any) -> Any:
        """Open alerts are those open now, however long ago they fired: no default week."""
        if isinstance(data, dict) and data.get("state") == "open" and data.get("start") is None:
            return {**data, "start": OPEN_SINCE}
        return data

    def select(self, dialect: Dialect = DUCKDB) -> tuple[str, Params]:
        clauses, params = [], []
        for column, value in (
            ("a.subscription_id", self.subscription_id),
            ("a.entity_kind", self.entity_kind),
            ("a.entity", self.entity),
            ("a.state", None if self.state == "open" else self.state),
        ):
            if value is not None:
                clauses.append(f" AND {column} = ?")
                params.append(value)
        if self.state == "open":
            clauses.append(f" AND {_OPEN}")
        if self.alert_id is not None:  # LIKE's wildcards in it are taken as written
            clauses.append(" AND a.alert_id LIKE ? ESCAPE '\\'")
            params.append(f"{_literal(self.alert_id)}%")
        column = "a.created_at" if self.timed_by == "created" else "a.window_start"
        sql = (
            f"SELECT {_ALERT_COLUMNS} FROM alerts a LEFT JOIN feedback f USING (alert_id) {_ENDED} "  # noqa: S608
            f"WHERE {column} >= ? AND {column} < ?{''.join(clauses)} "
            f"ORDER BY a.created_at DESC, {dialect.bytewise('a.alert_id')}"
        )
        return sql, [*self.bounds(), *params]


class FeedbackQuery(Query):
    """Labelled alerts (feedback joined with its alert) whose window starts in the range."""

    row: ClassVar[type[Row]] = LabelledAlert
    verdict: Verdict | None = Field(default=None, description="tp or fp; default both")
    subscription_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="only its alerts' verdicts"
    )

    def select(self, dialect: Dialect = DUCKDB) -> tuple[str, Params]:
        clauses: list[str] = []
        params: Params = []
        if self.verdict is not None:
            clauses.append(" AND f.verdict = ?")
            params.append(self.verdict)
        if self.subscription_id is not None:
            clauses.append(" AND a.subscription_id = ?")
            params.append(self.subscription_id)
        sql = (
            "SELECT f.alert_id, f.verdict, f.note, f.author, f.created_at, a.subscription_id, "  # noqa: S608
            "a.state, a.entity_kind, a.entity, a.window_start, a.window_end, a.negative_share, "
            "a.baseline_negative_share, a.p_value FROM feedback f JOIN alerts a USING (alert_id) "
            f"WHERE a.window_start >= ? AND a.window_start < ?{''.join(clauses)} "
            f"ORDER BY a.window_start, {dialect.bytewise('f.alert_id')}"
        )
        return sql, [*self.bounds(), *params]


# How a stored story names an entity of each kind (a story counts for its topic, each ticker, its source).
_STORY_NAMES: dict[str, str] = {
    "topic": "topic = ?",
    "source": "source = ?",
    "ticker": "array_position(tickers, ?) IS NOT NULL",
}
# The entities of the stories published in a range, each (kind, name) once.
STORY_ENTITIES = " UNION ".join(
    f"SELECT DISTINCT '{kind}' AS entity_kind, {column} AS entity FROM scored_items "  # noqa: S608
    "WHERE published_at >= ? AND published_at < ?"
    for kind, column in (("topic", "topic"), ("ticker", "unnest(tickers)"), ("source", "source"))
)


def only_entities(
    entities: Collection[tuple[EntityKind, str]], table: Literal["windows", "scored_items"]
) -> tuple[str, Params]:
    """` AND (...)` keeping the rows of these entities, named exactly as stored: their windows, or
    the stories that count for one of them; none at all keeps no row."""
    if table == "windows":
        terms = ["(entity_kind = ? AND entity = ?)"] * len(entities)
        params: Params = [value for entity in entities for value in entity]
    else:
        terms = [_STORY_NAMES[kind] for kind, _ in entities]
        params = [name for _, name in entities]
    return f" AND ({' OR '.join(terms) or 'FALSE'})", params


def window_order(dialect: Dialect = DUCKDB) -> str:
    """The windows' order: complete, so pages neither skip nor repeat (a hopping and a tumbling
    window of one entity start together)."""
    return f"window_start, {dialect.bytewise('entity_kind', 'entity', 'window_kind', 'key')}"


class WindowsQuery(Query):
    """Stored window aggregates (by window start, oldest first): the backtest's input."""

    row: ClassVar[type[Row]] = WindowRow
    entity_kind: OnlyKind = None
    entity: OnlyEntity = None
    window_kind: WindowKind | None = Field(default=None, description="tumbling or hopping; default both")

    def where(self) -> tuple[str, Params]:
        clauses, params = [], []
        for column, value in (
            ("entity_kind", self.entity_kind),
            ("entity", self.entity),
            ("window_kind", self.window_kind),
        ):
            if value is not None:
                clauses.append(f" AND {column} = ?")
                params.append(value)
        return "WHERE window_start >= ? AND window_start < ?" + "".join(clauses), [*self.bounds(), *params]

    def select(self, dialect: Dialect = DUCKDB) -> tuple[str, Params]:
        where, params = self.where()
        columns = ", ".join(WindowRow.model_fields)
        sql = f"SELECT {columns} FROM windows {where} ORDER BY {window_order(dialect)}"  # noqa: S608
        return sql, params
