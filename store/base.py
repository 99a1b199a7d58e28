"""HistoryStore: what the history store does, in SQL that DuckDB and PostgreSQL both run.

A backend (store/duckdb.py: an embedded file; store/postgres.py: a server for
deployments with several writers) opens connections, applies the migrations
and writes batches its fastest way; everything else lives here once. Use
`store.open_store(settings)` to get the one a store URL names.

Methods are blocking: async callers use `await asyncio.to_thread(...)`.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Self, cast

from finpulse.schema import AlertEvent, EntityKind, ScoredItem, WindowAggregate
from store import migrations, retention, writes
from store.dialect import Dialect
from store.errors import Changed, NotFound, StoreError
from store.queries import (
    STORY_ENTITIES,
    AlertsQuery,
    FeedbackQuery,
    Query,
    WindowsQuery,
    naive_utc,
    only_entities,
    window_order,
)
from store.records import Feedback, LabelledAlert, Row, StoreStats, SubscriptionRecord, Verdict, as_utc
from store.sql import Connection, Cursor, transaction

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

ExportFormat = Literal["csv", "parquet"]
# Rows per read and write when copying a store.
COPY_PAGE = 5000
# Columns a store from before their migration lacks, read from each row's `record` as that step's
# backfill does (migration 4): the target is migrated already, so its backfill never runs on them.
FROM_RECORD = {"duplicate_of": migrations.DUPLICATE_OF}
# Tables a copy makes the source's exactly (a catch-up run deletes what the source deleted since):
# the subscriptions, and the facts of the file import that seeded them. History is only added:
# the rows the source's retention pruned stay until the target's own retention prunes them.
MIRRORED = (writes.SUBSCRIPTIONS, writes.META)


class HistoryStore(ABC):
    """History of scored items, window aggregates, alerts, feedback and subscriptions."""

    dialect: ClassVar[Dialect]

    def __init__(self, *, read_only: bool, retention_days: int) -> None:
        self.read_only = read_only
        self.retention_days = retention_days
        self._started = False

    @property
    @abstractmethod
    def where(self) -> str:
        """The database, for messages (a file path, or a server URL without its password)."""

    # -- backend ---------------------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Make the database reachable (check the file, open a pool); `start` migrates after."""

    # Errors that are one record's fault (a value the database cannot hold), not the store's:
    # the history sink dead-letters such a record and writes the rest.
    record_errors: tuple[type[BaseException], ...] = ()
    # The database driver's errors: raised inside a connection, they reach the caller as a
    # StoreError in the database's words (the CLI's one line, the API's 503), theirs as its cause.
    database_errors: tuple[type[BaseException], ...] = ()

    def refuses_record(self, exc: BaseException) -> bool:
        """Whether `exc` came from a value this database cannot hold (a NUL in PostgreSQL text, a
        time out of range), rather than from the store being away or broken."""
        return isinstance(exc, self.record_errors) or isinstance(exc.__cause__, self.record_errors)

    @abstractmethod
    def _close(self) -> None:
        """Let go of what `_open` took; idempotent."""

    @abstractmethod
    def _connect(self) -> AbstractContextManager[Connection]:
        """A connection for one operation."""

    @abstractmethod
    def _write_rows(self, con: Connection, table: writes.Table, rows: list[tuple[Any, ...]]) -> None:
        """Upsert a batch of rows (its backend's fastest way)."""

    @abstractmethod
    def _frame(self, con: Connection, sql: str, params: list[Any]) -> pd.DataFrame:
        """A query's rows as a DataFrame, times as stored (naive UTC)."""

    @abstractmethod
    def _export(self, con: Connection, sql: str, params: list[Any], path: Path, fmt: ExportFormat) -> None:
        """A query's rows into a CSV or Parquet file."""

    def _migrating(self, con: Connection) -> AbstractContextManager[None]:
        """Held while `start` migrates (a server: one process at a time)."""
        return nullcontext()

    def session(self) -> AbstractContextManager[None]:
        """Keep one connection across the operations inside, where the backend gains by it."""
        self._require_started()
        return nullcontext()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Open, creating the schema and applying migrations unless read-only; idempotent."""
        if self._started:
            return
        self._open()
        self._started = True
        try:
            with self._connection() as con:
                if self.read_only:
                    migrations.check_version(migrations.current_version(con), self.where)
                else:
                    with self._migrating(con):
                        migrations.migrate(con, self.where, self.dialect)
        except BaseException:
            self.stop()
            raise
        logger.info("store started path=%s read_only=%s", self.where, self.read_only)

    def require_current(self) -> None:
        """StoreConfigError when older code wrote the store and no writer has updated it since: a
        read-only open takes it as it is (a copy and stored windows read it so), but the history
        queries read columns it may lack."""
        with self._connection() as con:
            migrations.check_current(con, self.where)

    def stop(self) -> None:
        """Let go of the database; idempotent."""
        self._close()
        self._started = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _require_started(self) -> None:
        if not self._started:
            raise StoreError("the store is not started; call start() (or use it as a context manager)")

    @contextmanager
    def _connection(self, *, write: bool = False) -> Iterator[Connection]:
        self._require_started()
        if write and self.read_only:
            raise StoreError(f"history store {self.where} was opened read-only; writes need read_only=False")
        try:
            with self._connect() as con:
                yield con
        except self.database_errors as exc:
            raise StoreError(f"history store {self.where}: {' '.join(str(exc).split())}") from exc

    # -- writes (the stream's sink) ----------------------------------------------------------

    def upsert_scored(self, items: Sequence[ScoredItem]) -> int:
        """Insert or replace scored items by story id; returns distinct items written."""
        unique = writes.dedupe(items, key=lambda s: s.story_id)
        return self._upsert(writes.SCORED_ITEMS, [writes.scored_item_row(s) for s in unique])

    def upsert_windows(self, windows: Sequence[WindowAggregate]) -> int:
        """Insert window aggregates by key; a stored one is replaced only by an equal or higher revision.
        Its first revision stays beside it (what the detector tested, for the backtest)."""
        unique = writes.dedupe(windows, key=lambda w: w.key, rank=lambda w: w.revision)
        first = {w.key: w for w in writes.dedupe(windows, key=lambda w: w.key, rank=lambda w: -w.revision)}
        return self._upsert(writes.WINDOWS, [writes.window_row(w, first[w.key]) for w in unique])

    def upsert_alerts(self, alerts: Sequence[AlertEvent]) -> int:
        """Insert or replace alert events by alert_id."""
        unique = writes.dedupe(alerts, key=lambda a: a.alert_id)
        return self._upsert(writes.ALERTS, [writes.alert_row(a) for a in unique])

    def _upsert(self, table: writes.Table, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        with self._connection(write=True) as con:
            self._write_rows(con, table, rows)
        logger.debug("store upsert table=%s rows=%d", table.name, len(rows))
        return len(rows)

    # -- feedback ------------------------------------------------------------------------------

    def put_feedback(
        self, alert_id: str, verdict: Verdict, *, note: str = "", author: str = "anonymous",
        at: datetime | None = None,
    ) -> Feedback:  # fmt: skip
        """Record an analyst's verdict on an alert (the latest one wins).

        Raises:
            NotFound: no stored alert has that id.
        """
        feedback = Feedback(
            alert_id=alert_id, verdict=verdict, note=note, author=author, created_at=at or datetime.now(UTC)
        )
        with self._connection(write=True) as con:
            if not con.execute("SELECT 1 FROM alerts WHERE alert_id = ?", [alert_id]).fetchone():
                raise NotFound(f"no alert with id {alert_id!r} in the history store")
            con.execute(
                writes.FEEDBACK.upsert_row_sql(),
                [alert_id, verdict, feedback.note, feedback.author, naive_utc(feedback.created_at)],
            )
        logger.info("store feedback alert_id=%s verdict=%s author=%s", alert_id, verdict, feedback.author)
        return feedback

    def get_feedback(self, alert_id: str) -> Feedback | None:
        with self._connection() as con:
            rows = _dicts(con.execute("SELECT * FROM feedback WHERE alert_id = ?", [alert_id]))
        return Feedback.model_validate(rows[0]) if rows else None

    def labelled_alerts(
        self, start: datetime | None = None, end: datetime | None = None, subscription_id: str | None = None
    ) -> list[LabelledAlert]:
        """Every alert with feedback whose window starts in [start, end): the backtest's labels."""
        query = FeedbackQuery(start=start, end=end, subscription_id=subscription_id)
        return [LabelledAlert.model_validate(r) for r in self._rows(query, paged=False)]

    # -- subscriptions (JSON rows; the API validates them with alerts' model) -------------------

    def list_subscriptions(self) -> list[SubscriptionRecord]:
        with self._connection() as con:
            rows = _dicts(con.execute("SELECT id, body, updated_at FROM subscriptions ORDER BY id"))
        return [_subscription(r) for r in rows]

    def get_subscription(self, sub_id: str) -> SubscriptionRecord | None:
        with self._connection() as con:
            rows = _dicts(
                con.execute("SELECT id, body, updated_at FROM subscriptions WHERE id = ?", [sub_id])
            )
        return _subscription(rows[0]) if rows else None

    def put_subscription(
        self, sub_id: str, body: Mapping[str, Any], *, read_at: datetime | None = None
    ) -> SubscriptionRecord:
        """Create or replace a subscription's JSON body; with `read_at` (the `updated_at` of the
        copy the caller changed), only if nothing wrote it since.

        Raises:
            Changed: it was written since `read_at` (a mute from a Slack link, another editor).
        """
        record = SubscriptionRecord(id=sub_id, body=dict(body), updated_at=datetime.now(UTC))
        with self._connection(write=True) as con:
            if read_at is None:
                _put_subscription(con, sub_id, record.body, naive_utc(record.updated_at))
                return record
            sql = "UPDATE subscriptions SET body = ?, updated_at = ? WHERE id = ? AND updated_at = ?"
            params = [json.dumps(record.body), naive_utc(record.updated_at), sub_id, naive_utc(read_at)]
            if not (con.execute(sql, params).fetchone() or (0,))[0]:
                raise Changed(f"subscription {sub_id!r} changed since it was read ({read_at:%H:%M:%S} UTC)")
        return record

    def import_subscriptions(
        self,
        bodies: Mapping[str, Mapping[str, Any]],
        *,
        meta: Mapping[str, str],
        remove: Iterable[str] = (),
    ) -> int:
        """Create or replace these subscriptions, delete those of `remove` and set the `meta`
        facts, in one transaction.

        The seeding of the store from the subscriptions file (alerts/live.py): the rows
        and the file's hash land together, so a crash never records a half import.
        """
        now = naive_utc(datetime.now(UTC))
        with self._connection(write=True) as con, transaction(con):
            for sub_id, body in bodies.items():
                _put_subscription(con, sub_id, body, now)
            for sub_id in remove:
                con.execute("DELETE FROM subscriptions WHERE id = ?", [sub_id])
            for key, value in meta.items():
                _put_meta(con, key, value, now)
        return len(bodies)

    def delete_subscription(self, sub_id: str) -> bool:
        """Delete one subscription; False when there was none."""
        with self._connection(write=True) as con:
            row = con.execute("DELETE FROM subscriptions WHERE id = ?", [sub_id]).fetchone()
        return bool(row and row[0])

    # -- meta (small key/value facts about the store) ----------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A stored fact; None when unset (or the database predates the meta table, read-only)."""
        with self._connection() as con:
            if self.read_only and migrations.current_version(con) < migrations.META_VERSION:
                return None
            row = con.execute("SELECT value FROM store_meta WHERE key = ?", [key]).fetchone()
        return str(row[0]) if row else None

    def put_meta(self, key: str, value: str) -> None:
        with self._connection(write=True) as con:
            _put_meta(con, key, value, naive_utc(datetime.now(UTC)))

    # -- queries ---------------------------------------------------------------------------------

    def fetch(self, query: Query, *, paged: bool = True) -> list[Row]:
        """Rows of a query (TrendQuery, AlertsQuery, ...) as its row model."""
        return [query.row.model_validate(r) for r in self._rows(query, paged=paged)]

    def frame(self, query: Query, *, paged: bool = False) -> pd.DataFrame:
        """A query's rows as a pandas DataFrame; times are UTC-aware."""
        sql, params = self._paged(query, paged)
        with self._connection() as con:
            df = self._frame(con, sql, params)
        for column in df.columns:
            if str(df[column].dtype).startswith("datetime64") and df[column].dt.tz is None:
                df[column] = df[column].dt.tz_localize("UTC")
        return df

    def export(self, query: Query, path: Path, fmt: ExportFormat, *, paged: bool = False) -> Path:
        """Write a query's rows to a CSV or Parquet file."""
        sql, params = self._paged(query, paged)
        with self._connection() as con:
            self._export(con, sql, params, path, fmt)
        return path

    def window_series(
        self, entity_kind: str | None = None, entity: str | None = None, *,
        start: datetime | None = None, end: datetime | None = None, window_kind: str | None = "tumbling",
        as_tested: bool = False, entities: Collection[tuple[EntityKind, str]] | None = None,
    ) -> list[WindowAggregate]:  # fmt: skip
        """Stored windows as full WindowAggregate messages, oldest first: the backtest's series.
        `as_tested`: each as first emitted, before late stories (what the detector tested);
        `entities`: only theirs, named as `window_entities` gives them (the others' are never read)."""
        query = WindowsQuery.model_validate(
            {
                "entity_kind": entity_kind,
                "entity": entity,
                "start": start,
                "end": end,
                "window_kind": window_kind,
            }
        )
        where, params = query.where()
        only, named = only_entities(entities, "windows") if entities is not None else ("", [])
        with self._connection() as con:
            first = as_tested and "first_record" in self._columns(con, writes.WINDOWS)
            column = "coalesce(first_record, record)" if first else "record"
            sql = f"SELECT {column} FROM windows {where}{only} ORDER BY {window_order(self.dialect)}"  # noqa: S608
            records = con.execute(sql, [*params, *named]).fetchall()
        return [WindowAggregate.model_validate_json(r[0]) for r in records]

    def window_entities(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> list[tuple[EntityKind, str]]:
        """The entities with windows starting in [start, end) (default: the last week), named as
        stored: to pick those a filter matches before reading their windows (`window_series`)."""
        sql = "SELECT DISTINCT entity_kind, entity FROM windows WHERE window_start >= ? AND window_start < ?"
        return self._entities(sql, Query(start=start, end=end).bounds())

    def scored_series(
        self, start: datetime | None = None, end: datetime | None = None, *,
        entities: Collection[tuple[EntityKind, str]] | None = None,
    ) -> list[ScoredItem]:  # fmt: skip
        """Stored scored items as full messages published in [start, end) (default: the last week),
        oldest first: the backtest's input when it rebuilds windows. `entities`: only the stories
        that count for one of them, named as `story_entities` gives them."""
        bounds = Query(start=start, end=end).bounds()
        only, named = only_entities(entities, "scored_items") if entities is not None else ("", [])
        sql = (
            f"SELECT record FROM scored_items WHERE published_at >= ? AND published_at < ?{only} "  # noqa: S608
            f"ORDER BY published_at, {self.dialect.bytewise('story_id')}"
        )
        with self._connection() as con:
            records = con.execute(sql, [*bounds, *named]).fetchall()
        return [ScoredItem.model_validate_json(r[0]) for r in records]

    def story_entities(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> list[tuple[EntityKind, str]]:
        """The entities the stories published in [start, end) (default: the last week) count for
        (topics, tickers, sources), named as stored: to pick those a filter matches before
        reading their stories (`scored_series`)."""
        return self._entities(STORY_ENTITIES, Query(start=start, end=end).bounds() * 3)

    def _entities(self, sql: str, params: list[Any]) -> list[tuple[EntityKind, str]]:
        with self._connection() as con:
            return [(cast(EntityKind, kind), str(name)) for kind, name in con.execute(sql, params).fetchall()]

    def stories_span(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> tuple[datetime, datetime] | None:
        """When the first and the last story published in [start, end) (default: the last week)
        were published: how much of the range the history holds (None: no story)."""
        bounds = Query(start=start, end=end).bounds()
        sql = (
            "SELECT min(published_at), max(published_at) FROM scored_items "
            "WHERE published_at >= ? AND published_at < ?"
        )
        with self._connection() as con:
            first, last = con.execute(sql, bounds).fetchone() or (None, None)
        return (as_utc(first), as_utc(last)) if first is not None and last is not None else None

    def get_alert(self, alert_id: str) -> AlertEvent | None:
        """One stored alert as its full AlertEvent message."""
        with self._connection() as con:
            row = con.execute("SELECT record FROM alerts WHERE alert_id = ?", [alert_id]).fetchone()
        return AlertEvent.model_validate_json(row[0]) if row else None

    def alert_events(self, query: AlertsQuery | None = None) -> list[AlertEvent]:
        """Stored alerts as full AlertEvent messages (evidence included), oldest first."""
        sql, params = (query or AlertsQuery()).select(self.dialect)
        sql = (
            f"SELECT a.record FROM ({sql}) s JOIN alerts a USING (alert_id) "  # noqa: S608
            f"ORDER BY a.created_at, {self.dialect.bytewise('a.alert_id')}"
        )
        with self._connection() as con:
            records = con.execute(sql, params).fetchall()
        return [AlertEvent.model_validate_json(r[0]) for r in records]

    # -- maintenance --------------------------------------------------------------------------

    def copy_to(
        self,
        target: HistoryStore,
        *,
        page: int = COPY_PAGE,
        progress: Callable[[str, int], None] | None = None,
    ) -> dict[str, int]:
        """Every row of this store into `target` (a file into a server, say), a page at a time;
        returns rows copied per table. Upserts: a copy stopped midway can be run again, and a
        run again deletes on the target the MIRRORED rows deleted here since. A row holding a
        value the target cannot hold (a NUL in PostgreSQL text) is skipped, a warning naming it."""
        copied: dict[str, int] = {}
        for table in writes.TABLES:
            copied[table.name], last = 0, None
            keys: set[object] = set()
            at = table.columns.index(table.key)
            while rows := self._page(table, last, page):
                copied[table.name] += target._write_copied(table, rows)
                keys.update(row[at] for row in rows)
                last = rows[-1][at]
                if progress is not None:
                    progress(table.name, copied[table.name])
            if table in MIRRORED:
                target._delete_others(table, keys)
        return copied

    def _write_copied(self, table: writes.Table, rows: list[tuple[Any, ...]]) -> int:
        """Upsert a copied page; one holding a value this database cannot hold, row by row,
        skipping those. Returns the rows written."""
        try:
            return self._upsert(table, rows)
        except Exception as exc:
            if not self.refuses_record(exc):
                raise
        written = 0
        at = table.columns.index(table.key)
        for row in rows:
            try:
                written += self._upsert(table, [row])
            except Exception as exc:
                if not self.refuses_record(exc):
                    raise
                logger.warning(
                    "store %s: skipped %s %s, a value it cannot hold (%s); mend it at the source, copy again",
                    self.where, table.name, row[at], exc.__cause__ or exc,
                )  # fmt: skip
        return written

    def _delete_others(self, table: writes.Table, keep: Collection[object]) -> None:
        """Delete the rows of `table` whose keys are not in `keep` (a copy's source lacks them)."""
        with self._connection(write=True) as con, transaction(con):
            stored = con.execute(f"SELECT {table.key} FROM {table.name}").fetchall()  # noqa: S608
            gone = sorted(str(row[0]) for row in stored if row[0] not in keep)
            for key in gone:
                con.execute(f"DELETE FROM {table.name} WHERE {table.key} = ?", [key])  # noqa: S608
        if gone:  # said, not just done: one made on the target alone would be lost unseen
            logger.warning("store %s: deleted %s %s, as the source has them no more", self.where, table.name,
                           ", ".join(gone))  # fmt: skip

    def apply_retention(self, now: datetime | None = None) -> dict[str, int] | None:
        """Delete history older than `retention_days`; returns rows deleted per table, or None when
        another process is applying it now (PostgreSQL)."""
        cutoff = retention.retention_cutoff(self.retention_days, now)
        with self._connection(write=True) as con, transaction(con):
            if not self._may_prune(con):
                logger.info("store %s: another process is applying the retention; skipped", self.where)
                return None
            deleted = retention.delete_before(con, cutoff)
        # Said once committed: a commit that fails (a full disk) deleted nothing.
        logger.info("store retention cutoff=%s deleted=%s", cutoff.isoformat(), deleted)
        return deleted

    def _may_prune(self, con: Connection) -> bool:
        """Whether this process may delete expired rows now (PostgreSQL: none other is)."""
        return True

    def _page(self, table: writes.Table, after: object, limit: int) -> list[tuple[Any, ...]]:
        """Up to `limit` of a table's rows in key order, after the key `after` (None: from the first)."""
        where, params = (f" WHERE {table.key} > ?", [after]) if after is not None else ("", [])
        with self._connection() as con:
            have = self._columns(con, table)  # none of a table it lacks, NULL for a column
            if not have:
                return []
            columns = ", ".join(c if c in have else FROM_RECORD.get(c, "NULL") for c in table.columns)
            sql = f"SELECT {columns} FROM {table.name}{where} ORDER BY {table.key} LIMIT ?"  # noqa: S608
            return [tuple(row) for row in con.execute(sql, [*params, limit]).fetchall()]

    def _columns(self, con: Connection, table: writes.Table) -> set[str]:
        """The columns `table` has here: all once migrated; a store opened read-only (the copy's
        source, the backtest's) is never migrated, and an older one lacks the later tables and
        columns."""
        if not self.read_only:
            return set(table.columns)
        rows = con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = current_schema()", [table.name],
        ).fetchall()  # fmt: skip
        return {str(r[0]) for r in rows}

    def stats(self) -> StoreStats:
        """Schema version, row counts and when the newest story was scored."""
        tables = ("scored_items", "windows", "alerts", "feedback", "subscriptions")
        with self._connection() as con:
            counts = {t: _scalar(con, f"SELECT count(*) FROM {t}") for t in tables}  # noqa: S608
            version = migrations.current_version(con)
            latest = con.execute("SELECT max(scored_at) FROM scored_items").fetchone()
        return StoreStats(schema_version=version, latest_scored_at=latest[0] if latest else None, **counts)

    def _rows(self, query: Query, *, paged: bool) -> list[dict[str, Any]]:
        sql, params = self._paged(query, paged)
        with self._connection() as con:
            return _dicts(con.execute(sql, params))

    def _paged(self, query: Query, paged: bool) -> tuple[str, list[Any]]:
        sql, params = query.select(self.dialect)
        if paged:
            return f"{sql} LIMIT ? OFFSET ?", [*params, query.limit, query.offset]
        return sql, params


def _dicts(cursor: Cursor) -> list[dict[str, Any]]:
    columns = [d[0] for d in cursor.description or ()]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _scalar(con: Connection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _subscription(row: dict[str, Any]) -> SubscriptionRecord:
    return SubscriptionRecord(id=row["id"], body=json.loads(row["body"]), updated_at=row["updated_at"])


def _put_subscription(con: Connection, sub_id: str, body: Mapping[str, Any], at: datetime) -> None:
    con.execute(writes.SUBSCRIPTIONS.upsert_row_sql(), [sub_id, json.dumps(dict(body)), at])


def _put_meta(con: Connection, key: str, value: str, at: datetime) -> None:
    con.execute(writes.META.upsert_row_sql(), [key, value, at])
