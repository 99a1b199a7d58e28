"""The connection the store's shared SQL runs on, whichever database is behind it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol


class Cursor(Protocol):
    """What the store reads from a statement (a DuckDB connection or a PostgreSQL cursor)."""

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """One connection, `?` parameters; a data-changing statement answers one row: its row count."""

    def execute(self, sql: str, params: Sequence[Any] | None = None, /) -> Cursor: ...


@contextmanager
def transaction(con: Connection) -> Iterator[None]:
    """The statements inside commit together or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
