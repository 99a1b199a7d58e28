"""PostgresStore: the history store on a PostgreSQL server (14 or newer).

For deployments with several writers: workers on several hosts each run a
history sink, the API and the dispatchers read, all at once (a DuckDB file
takes one writer process at a time). Set FINPULSE_STORE_URL to
`postgresql://user:password@host:5432/finpulse`; the first process to start
creates the schema (the migrations run under an advisory lock, so processes
starting together apply each step once).

Connections come from a small pool (psycopg_pool), in autocommit with the
session's time zone UTC (timestamps are stored as UTC without zone, as in
DuckDB). A read-only store's sessions are read-only on the server too. A
connection the server dropped is replaced when next taken; the server
unreachable raises StoreUnavailable (a transient error: the sink retries, the
API answers 503), as the server refusing the URL's database, user or password
does (the message says the server's own words and what to check).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from finpulse import redact
from store import exports, writes
from store.base import ExportFormat, HistoryStore
from store.dialect import POSTGRES
from store.errors import StoreConfigError, StoreError, StoreUnavailable
from store.sql import Connection

if TYPE_CHECKING:
    import pandas as pd

    from finpulse.settings import StoreSettings

logger = logging.getLogger(__name__)

# Connections per process: the API's worker threads take turns beyond this.
POOL_MAX = 8
# How often a process waiting for another's migrations tries their lock again.
MIGRATION_POLL_S = 0.2
# Any fixed number: the key of the advisory lock the migrations take.
MIGRATION_LOCK = 5_148_211
# A process waiting for another's migrations says so again, naming it, this often.
MIGRATION_REPORT_S = 30.0
# The transaction lock one retention pass takes: API replicas do not prune the same rows at once.
RETENTION_LOCK = 5_148_212
# Who holds an advisory lock (its 64-bit key is classid's 32 bits over objid's).
_HOLDER_SQL = (
    "SELECT a.pid, a.application_name, a.client_addr::text FROM pg_locks l "
    "JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.granted "
    "AND ((l.classid::bigint << 32) | l.objid::bigint) = ?"
)
# The server's refusals the URL or the server's setup mends: a database that does not exist
# (3D000), a wrong password (28P01), a role it does not know or pg_hba.conf turns away (28000), a
# password the URL lacks. libpq gives a failed connection no SQLSTATE, only its message (the
# server's in English unless its lc_messages says otherwise: then it reads as no answer).
_REFUSED = re.compile(
    r'database ".*" does not exist|password authentication failed|role ".*" does not exist'
    r"|pg_hba\.conf|no password supplied"
)
# date_bin (the trend buckets) came with PostgreSQL 14.
MIN_SERVER_VERSION = 140000
# PostgreSQL's float type ids: their NULLs read as NaN in frames, as DuckDB's do.
_FLOAT_OIDS = {700, 701, 1700}
# PostgreSQL's type ids -> the DuckDB type the same column has in the embedded store's results:
# an export's columns keep them (through pandas, a column of NULLs, or any column of no rows,
# has no type: Parquet's would be NULL).
_DUCKDB_TYPES = {
    16: "BOOLEAN",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    **dict.fromkeys((19, 25, 114, 1042, 1043, 3802), "VARCHAR"),  # name, text, json, char, varchar, jsonb
    700: "FLOAT",
    701: "DOUBLE",
    1700: "DOUBLE",  # numeric (as frames read it)
    1082: "DATE",
    1114: "TIMESTAMP",
    1184: "TIMESTAMPTZ",
    1000: "BOOLEAN[]",
    1005: "SMALLINT[]",
    1007: "INTEGER[]",
    1016: "BIGINT[]",
    1009: "VARCHAR[]",
    1015: "VARCHAR[]",
    1022: "DOUBLE[]",
}


class PostgresStore(HistoryStore):
    """The history store in a PostgreSQL database."""

    dialect = POSTGRES
    record_errors = (psycopg.DataError, psycopg.IntegrityError)
    database_errors = (psycopg.Error,)

    def __init__(
        self, url: str, *, read_only: bool = False, connect_timeout_s: float = 10.0, retention_days: int = 365
    ) -> None:
        super().__init__(read_only=read_only, retention_days=retention_days)
        self.url = url.strip()
        self.connect_timeout_s = connect_timeout_s
        self._pool: ConnectionPool | None = None

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, read_only: bool = False) -> PostgresStore:
        return cls(
            settings.url,
            read_only=read_only,
            connect_timeout_s=settings.lock_timeout_s,
            retention_days=settings.retention_days,
        )

    @property
    def where(self) -> str:
        return redacted(self.url)

    def _open(self) -> None:
        try:  # a URL libpq cannot read: said at once, not retried until the connect timeout
            host = str(conninfo_to_dict(self.url).get("host", ""))
            said = "an @ in the password ends it: libpq reads the rest as the host" if "@" in host else ""
        except psycopg.ProgrammingError as exc:
            said = masked(str(exc), self.url)
        if said:
            raise StoreConfigError(
                f"history store {self.where}: FINPULSE_STORE_URL cannot be read ({said}); "
                "percent-encode %, @, / and spaces in its password (%25, %40, %2F, %20)"
            ) from None
        options = "-c TimeZone=UTC" + (" -c default_transaction_read_only=on" if self.read_only else "")
        pool = _Pool(
            self.url,
            min_size=1,
            max_size=POOL_MAX,
            kwargs={"autocommit": True, "options": options},
            configure=_configure,
            # A connection the server dropped (a restart, a failover) is replaced when taken, not
            # failed on: one round trip per operation, ~0.1 ms on a local network.
            check=ConnectionPool.check_connection,
            timeout=self.connect_timeout_s,
            name="finpulse-store",
            open=False,
        )
        try:
            pool.open(wait=True, timeout=self.connect_timeout_s)
        except PoolTimeout as exc:
            pool.close()
            raise unopened(self.where, self.connect_timeout_s, pool.last_error, self.url) from exc
        try:
            with pool.connection() as raw:
                check_server_version(raw.info.server_version, self.where)
        except BaseException:
            pool.close()
            raise
        self._pool = pool

    def _close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        assert self._pool is not None, "HistoryStore._connection checks the store is started"
        try:
            with self._pool.connection() as raw:
                yield _PgConnection(raw)
        except PoolTimeout as exc:
            raise StoreUnavailable(f"history store {self.where}: no connection free: {exc}") from exc
        except psycopg.errors.UndefinedTable as exc:
            raise StoreError(
                f"history store {self.where} has no history tables yet: start the stream worker ({exc})"
            ) from exc
        except psycopg.OperationalError as exc:  # the server went away, or a deadlock between writers
            raise StoreUnavailable(f"history store {self.where}: {exc}") from exc

    @contextmanager
    def _migrating(self, con: Connection) -> Iterator[None]:
        # Tried, not waited for inside one statement: a waiting statement is a transaction, which
        # the holder's CREATE INDEX CONCURRENTLY waits for in turn (a deadlock).
        since = time.monotonic()
        said = since - MIGRATION_REPORT_S  # the first wait is said at once
        while con.execute("SELECT pg_try_advisory_lock(?)", [MIGRATION_LOCK]).fetchone() != (True,):
            if time.monotonic() - said >= MIGRATION_REPORT_S:
                said = time.monotonic()
                holder = con.execute(_HOLDER_SQL, [MIGRATION_LOCK]).fetchone()
                who = (
                    f"pid {holder[0]} ({holder[1] or 'no application name'}, from {holder[2] or 'local'})"
                    if holder else "another process"
                )  # fmt: skip
                logger.warning(
                    "store %s: %s is migrating its schema; waited %.0f s (a CREATE INDEX waits for long "
                    "transactions: pg_stat_activity shows them)", self.where, who, said - since,
                )  # fmt: skip
            time.sleep(MIGRATION_POLL_S)
        try:
            yield
        finally:
            con.execute("SELECT pg_advisory_unlock(?)", [MIGRATION_LOCK])

    def _may_prune(self, con: Connection) -> bool:
        """One retention pass at a time (API replicas prune every day): the transaction's lock."""
        row = con.execute("SELECT pg_try_advisory_xact_lock(?)", [RETENTION_LOCK]).fetchone()
        return row is not None and row[0] is True

    def _write_rows(self, con: Connection, table: writes.Table, rows: list[tuple[Any, ...]]) -> None:
        raw = _raw(con)
        at = table.columns.index(table.key)
        # Rows in key order: writers that share keys lock them in the same order (no deadlocks).
        ordered: list[tuple[Any, ...]] = sorted(rows, key=lambda row: row[at])
        with raw.transaction(), raw.cursor() as cur:
            cur.executemany(table.upsert_row_sql("%s"), ordered)

    def _frame(self, con: Connection, sql: str, params: list[Any]) -> pd.DataFrame:
        return self._read(con, sql, params)[0]

    def _read(self, con: Connection, sql: str, params: list[Any]) -> tuple[pd.DataFrame, dict[str, str]]:
        """The rows as a frame, and the DuckDB type of each column whose type is known."""
        import pandas as pd

        with _raw(con).cursor() as cur:
            cur.execute(_pg(sql), params)
            described = cur.description or []
            df = pd.DataFrame.from_records(
                cur.fetchall(), columns=[d.name for d in described], coerce_float=True
            )
        for d in described:
            if d.type_code in _FLOAT_OIDS:
                df[d.name] = df[d.name].astype("float64")
        types = {d.name: _DUCKDB_TYPES[d.type_code] for d in described if d.type_code in _DUCKDB_TYPES}
        return df, types

    def _export(self, con: Connection, sql: str, params: list[Any], path: Path, fmt: ExportFormat) -> None:
        # Written by DuckDB, as the embedded store's exports are: the same CSV and Parquet either way,
        # each column of the type the query gives it (pandas knows none for a column of NULLs).
        frame, types = self._read(con, sql, params)
        exports.write_frame(frame, path, fmt, types)


class _Pool(ConnectionPool[psycopg.Connection[Any]]):
    """A pool that keeps why its last connection attempt failed: psycopg_pool only logs it and
    tries again until `open` times out, saying nothing of why."""

    last_error: psycopg.Error | None = None

    def _connect(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        try:
            return super()._connect(timeout)
        except psycopg.Error as exc:
            self.last_error = exc
            raise


class _PgConnection:
    """A psycopg connection as the store's Connection: `?` parameters, and a data-changing
    statement answering its row count, as DuckDB's do."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] | None = None, /) -> Any:
        cur = self.raw.execute(_pg(sql), params)
        return cur if cur.description is not None else _RowCount(cur.rowcount)


class _RowCount:
    description = None

    def __init__(self, count: int) -> None:
        self._rows = [(count,)]

    def fetchone(self) -> tuple[int]:
        return self._rows[0]

    def fetchall(self) -> list[tuple[int]]:
        return self._rows


def _pg(sql: str) -> str:
    """The store's `?` parameters as psycopg's `%s` (the store's SQL holds no literal `?`)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _raw(con: Connection) -> psycopg.Connection[Any]:
    assert isinstance(con, _PgConnection), "PostgresStore's connections are its own"
    return con.raw


def _configure(raw: psycopg.Connection[Any]) -> None:
    # JSON columns come back as their text (the store parses records with pydantic).
    for json_type in ("json", "jsonb"):
        raw.adapters.register_loader(json_type, TextLoader)


def check_server_version(version: int, where: str) -> None:
    """Refuse a server too old for the store's SQL (`version` as libpq gives it: 150018 is 15.18)."""
    if version < MIN_SERVER_VERSION:
        raise StoreConfigError(
            f"history store {where} runs PostgreSQL {version // 10000}; the store needs 14 or newer"
        )


def unopened(where: str, waited_s: float, error: psycopg.Error | None, url: str = "") -> StoreUnavailable:
    """The error for a pool that did not open in `waited_s`, in the last connection error's words
    (without `url`'s password): the server refusing the database, user or password (what to
    check), or not answering. Both transient: a database created after the worker started (a new
    deployment) is waited for."""
    said = masked(str(error), url) if error is not None else ""
    if _REFUSED.search(said):
        return StoreUnavailable(
            f"history store {where} refused the connection ({said}): check FINPULSE_STORE_URL's "
            "database name, user and password (the database must exist: createdb makes one)"
        )
    return StoreUnavailable(
        f"history store {where} did not answer in {waited_s:g} s{f' ({said})' if said else ''}: is the "
        "PostgreSQL server running, and are the URL's host, port, user and password right?"
    )


def masked(text: str, url: str) -> str:
    """`text` on one line without the URL's password: libpq quotes it back alone ("invalid
    percent-encoded token: "Xy7%Qp2""), where `redact` finds none (it looks in URLs)."""
    written = re.findall(r"^\s*postgres(?:ql)?://[^:/?#@\s]*:(.*)@", url)
    written += re.findall(r"(?:^|[?&\s])password=([^&\s]*)", url)
    # As written, percent-decoded, and each long part of one holding `@` (libpq took the rest for
    # the host: "failed to resolve host 'ssW0rd@db'").
    forms = {form for pw in written for form in (pw, unquote(pw), *pw.split("@")) if len(form) >= 4}
    text = redact.redacted(" ".join(text.split()))
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "***")
    return text


def redacted(url: str) -> str:
    """The URL without its password (`user:pass@` or libpq's `password=`), for messages and logs."""
    return masked(url, url)
