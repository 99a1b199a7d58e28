"""DuckDB store URLs: `duckdb:///absolute/path.duckdb`, `duckdb://relative.duckdb`,
`duckdb:///:memory:`, or a plain file path (`postgresql://...` names a server: store/backends.py)."""

from __future__ import annotations

from pathlib import Path

from store.errors import StoreConfigError

MEMORY = ":memory:"
_SCHEME = "duckdb://"


def duckdb_path(url: str | Path) -> Path | None:
    """The database file a URL names; None for an in-memory database.

    Raises:
        StoreConfigError: another scheme or an empty path.
    """
    if isinstance(url, Path):
        return url
    text = url.strip()
    if text.startswith(_SCHEME):
        # duckdb:///abs/path -> /abs/path ; duckdb://rel/path -> rel/path ; SQLAlchemy's
        # duckdb:////abs/path -> /abs/path too (not //abs/path, which reads as a network path)
        text = text[len(_SCHEME) :]
        if text.startswith("//"):
            text = "/" + text.lstrip("/")
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreConfigError(
            f"store URL scheme {scheme!r} is not supported; use duckdb:///path/to/history.duckdb "
            "or postgresql://user:password@host:5432/dbname"
        )
    if text in (MEMORY, "/" + MEMORY):
        return None
    if not text:
        raise StoreConfigError("store URL names no file; use duckdb:///path/to/history.duckdb")
    return Path(text).expanduser()
