"""Opening DuckDB files: lock retries across processes, sharing within one.

Across processes DuckDB allows one writer: `open_database` retries a held
file lock with jittered backoff for `lock_timeout_s`, then raises
StoreLocked. Within a process DuckDB refuses to attach one file twice at the
same moment, so every store in the process shares one open database per
file (reference counted, closed when the last user lets go, which releases
the file lock for other processes); each user works on its own cursor.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from store.errors import StoreError, StoreLocked

# Lock retry backoff: first wait and cap, in seconds (jittered).
BACKOFF_FIRST_S = 0.02
BACKOFF_MAX_S = 0.5


def open_database(path: Path | None, *, read_only: bool, lock_timeout_s: float) -> duckdb.DuckDBPyConnection:
    """Connect to the file (None: a new in-memory database), waiting out another process's lock."""
    database = str(path) if path is not None else ":memory:"
    began, delay = time.monotonic(), BACKOFF_FIRST_S
    while True:
        try:
            return duckdb.connect(database, read_only=read_only)
        except duckdb.IOException as exc:
            waited = time.monotonic() - began
            if path is None or "lock" not in str(exc).lower():
                raise StoreError(f"cannot open history store {database}: {exc}") from exc
            if waited >= lock_timeout_s:
                raise StoreLocked(path, waited, str(exc).split(". See also")[0]) from exc
            time.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, BACKOFF_MAX_S)
        except duckdb.ConnectionException as exc:
            raise StoreError(
                f"cannot open history store {database}: {exc}. In one process, open a file "
                "either read-only everywhere or read-write everywhere."
            ) from exc


@dataclass
class _Shared:
    connection: duckdb.DuckDBPyConnection
    users: int = 0


class SharedDatabases:
    """Open databases of this process by key, shared by reference count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[object, _Shared] = {}

    def acquire(self, key: object, path: Path | None, *, read_only: bool, lock_timeout_s: float) -> None:
        """Take one reference on the database, opening it if nobody holds it."""
        with self._lock:
            shared = self._open.get(key)
            if shared is None:
                shared = _Shared(open_database(path, read_only=read_only, lock_timeout_s=lock_timeout_s))
                self._open[key] = shared
            shared.users += 1

    def release(self, key: object) -> None:
        """Drop one reference; the last one closes the database (and frees the file lock)."""
        with self._lock:
            shared = self._open.get(key)
            if shared is None:
                return
            shared.users -= 1
            if shared.users <= 0:
                del self._open[key]
                shared.connection.close()

    @contextmanager
    def cursor(
        self, key: object, path: Path | None, *, read_only: bool, lock_timeout_s: float
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor of its own on the shared database, for the duration of one operation."""
        self.acquire(key, path, read_only=read_only, lock_timeout_s=lock_timeout_s)
        try:
            with self._lock:
                cursor = self._open[key].connection.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        finally:
            self.release(key)


DATABASES = SharedDatabases()
