"""DuckDBStore: the history store on an embedded DuckDB file (the default).

Concurrency: DuckDB allows ONE process to open a file for writing (and no
readers in other processes while it does). By default (`keep_open=False`)
every operation opens the file, works and closes it, so the stream's sink and
the API, in two processes, take turns; a conflicting lock is retried with
backoff for `lock_timeout_s`, then `StoreLocked` says what to do. With
`keep_open=True` the file stays open from `start()` to `stop()` (fastest;
other processes are locked out). Inside one process all stores and threads
share one open database per file, each operation on its own cursor
(store/connections.py). An in-memory store is always kept open. Deployments
with several writers (workers on several hosts) use store/postgres.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from store import exports, writes
from store.base import ExportFormat, HistoryStore
from store.connections import DATABASES
from store.dialect import DUCKDB
from store.errors import StoreError
from store.sql import Connection
from store.url import duckdb_path

if TYPE_CHECKING:
    import pandas as pd

    from finpulse.settings import StoreSettings

logger = logging.getLogger(__name__)

__all__ = ["DuckDBStore", "ExportFormat"]


class DuckDBStore(HistoryStore):
    """The history store in a DuckDB file (or in memory)."""

    dialect = DUCKDB
    record_errors = (
        duckdb.ConversionException, duckdb.ConstraintException, duckdb.InvalidInputException,
        duckdb.OutOfRangeException,
    )  # fmt: skip
    database_errors = (duckdb.Error,)

    def __init__(
        self,
        path: str | Path | None,
        *,
        read_only: bool = False,
        keep_open: bool = False,
        lock_timeout_s: float = 10.0,
        retention_days: int = 365,
    ) -> None:
        super().__init__(read_only=read_only, retention_days=retention_days)
        self.path = duckdb_path(path) if path is not None else None
        self.keep_open = keep_open or self.path is None
        self.lock_timeout_s = lock_timeout_s
        self._held = False
        # Stores of one file share its open database in this process; memory stores are their own.
        self._key: object = (str(self.path.resolve()), read_only) if self.path is not None else object()

    @classmethod
    def from_settings(cls, settings: StoreSettings, *, read_only: bool = False) -> DuckDBStore:
        return cls(
            settings.url,
            read_only=read_only,
            keep_open=settings.keep_open,
            lock_timeout_s=settings.lock_timeout_s,
            retention_days=settings.retention_days,
        )

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else ":memory:"

    def _open(self) -> None:
        if self.path is not None:
            if self.read_only and not self.path.is_file():
                raise StoreError(f"history store {self.path} does not exist yet; start the stream worker")
            if not self.read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.keep_open:
            self._acquire()
            self._held = True

    def _close(self) -> None:
        if self._held:
            self._held = False
            DATABASES.release(self._key)

    @contextmanager
    def session(self) -> Iterator[None]:
        """Keep the file open across the operations inside (one open and close for all of them:
        each costs a few ms, and closing writes a checkpoint)."""
        self._require_started()
        self._acquire()
        try:
            yield
        finally:
            DATABASES.release(self._key)

    def _acquire(self) -> None:
        DATABASES.acquire(self._key, self.path, read_only=self.read_only, lock_timeout_s=self.lock_timeout_s)

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with DATABASES.cursor(
            self._key, self.path, read_only=self.read_only, lock_timeout_s=self.lock_timeout_s
        ) as con:
            yield con

    def _write_rows(self, con: Connection, table: writes.Table, rows: list[tuple[Any, ...]]) -> None:
        writes.upsert_frame(_duckdb(con), table, rows)

    def _frame(self, con: Connection, sql: str, params: list[Any]) -> pd.DataFrame:
        return _duckdb(con).execute(sql, params).df()

    def _export(self, con: Connection, sql: str, params: list[Any], path: Path, fmt: ExportFormat) -> None:
        con = _duckdb(con)
        exports.write(con, con.sql(sql, params=params), path, fmt)


def _duckdb(con: Connection) -> duckdb.DuckDBPyConnection:
    assert isinstance(con, duckdb.DuckDBPyConnection), "DuckDBStore's connections are DuckDB's"
    return con
