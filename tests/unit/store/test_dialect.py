"""The two dialects' spellings: the rest of the store's SQL is shared (tests on both databases)."""

from __future__ import annotations

from store.dialect import DUCKDB, POSTGRES


def test_migrations_keep_duckdb_types_and_rename_them_for_postgres() -> None:
    ddl = "CREATE TABLE t (a DOUBLE NOT NULL, b DOUBLE PRECISION, c VARCHAR[], doubled INTEGER)"
    assert DUCKDB.ddl(ddl) == ddl
    assert POSTGRES.ddl(ddl) == (
        "CREATE TABLE t (a DOUBLE PRECISION NOT NULL, b DOUBLE PRECISION, c VARCHAR[], doubled INTEGER)"
    )


def test_buckets_count_from_the_same_monday_in_both() -> None:
    origin = "TIMESTAMP '2000-01-03 00:00:00'"
    assert (
        DUCKDB.bucket("1 hour", "published_at") == f"time_bucket(INTERVAL '1 hour', published_at, {origin})"
    )
    assert POSTGRES.bucket("5 minutes", "x") == f"date_bin(INTERVAL '5 minutes', x, {origin})"
