"""Upsert SQL and batch deduplication (no database)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from store import writes
from store.errors import StoreConfigError
from store.url import duckdb_path
from tests.fixtures.store import T0, window


def test_window_upsert_only_replaces_with_equal_or_higher_revision() -> None:
    sql = writes.WINDOWS.upsert_sql("incoming")
    assert f"SELECT {', '.join(writes.WINDOWS.columns)} FROM incoming" in sql
    assert "ON CONFLICT (key) DO UPDATE" in sql
    assert sql.endswith("WHERE excluded.revision >= windows.revision")
    assert "key = excluded.key" not in sql


def test_dedupe_keeps_highest_revision_then_latest() -> None:
    a0 = window("earnings", T0, 2, 1, revision=0)
    a2 = window("earnings", T0, 5, 1, revision=2)
    a1 = window("earnings", T0, 4, 1, revision=1)
    b = window("earnings", T0 + timedelta(minutes=5), 1, 0)
    out = writes.dedupe([a0, a2, b, a1], key=lambda w: w.key, rank=lambda w: w.revision)
    assert out == [a2, b]
    later = window("earnings", T0, 7, 1, revision=2)
    assert writes.dedupe([a2, later], key=lambda w: w.key, rank=lambda w: w.revision) == [later]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("duckdb:///var/data/h.duckdb", Path("/var/data/h.duckdb")),
        ("duckdb:////var/data/h.duckdb", Path("/var/data/h.duckdb")),  # SQLAlchemy's absolute form
        ("duckdb://rel/h.duckdb", Path("rel/h.duckdb")),
        ("duckdb:///:memory:", None),
        (":memory:", None),
        ("/plain/path.duckdb", Path("/plain/path.duckdb")),
    ],
)
def test_store_urls(url: str, expected: Path | None) -> None:
    assert duckdb_path(url) == expected


@pytest.mark.parametrize("url", ["postgresql://db/finpulse", "duckdb://", "  "])
def test_bad_store_urls_say_what_to_use(url: str) -> None:
    with pytest.raises(StoreConfigError, match="duckdb:///"):
        duckdb_path(url)
