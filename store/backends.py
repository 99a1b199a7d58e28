"""Which history store a URL names: a DuckDB file (the default) or a PostgreSQL server."""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.base import HistoryStore

if TYPE_CHECKING:
    from finpulse.settings import StoreSettings

_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url: str) -> bool:
    return url.strip().startswith(_POSTGRES_SCHEMES)


def open_store(settings: StoreSettings, *, read_only: bool = False) -> HistoryStore:
    """The store FINPULSE_STORE_URL names (not started: `start()` it, or use it in a `with`)."""
    if is_postgres(settings.url):
        from store.postgres import PostgresStore  # psycopg: only where a server is configured

        return PostgresStore.from_settings(settings, read_only=read_only)
    from store.duckdb import DuckDBStore

    return DuckDBStore.from_settings(settings, read_only=read_only)
