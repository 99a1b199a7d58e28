"""Migrations and opening modes on a real DuckDB file."""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pytest

from store import DuckDBStore, StoreConfigError, StoreError
from store.migrations import LATEST_VERSION, Migration, current_version, migrate

TABLES = {
    "schema_version", "scored_items", "windows", "alerts", "feedback", "subscriptions", "store_meta",
}  # fmt: skip


def _tables(path: Path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def test_migrates_an_empty_file_once(store_path: Path) -> None:
    with DuckDBStore(store_path) as db:
        assert db.stats().schema_version == LATEST_VERSION
    assert _tables(store_path) == TABLES
    with DuckDBStore(store_path) as db:  # reopening applies nothing twice
        assert db.stats().schema_version == LATEST_VERSION
    with duckdb.connect(str(store_path)) as con:
        assert con.execute("SELECT count(*) FROM schema_version").fetchone() == (LATEST_VERSION,)


def test_syndicated_copies_stored_before_their_column_get_it(store_path: Path) -> None:
    from store.migrations import MIGRATIONS
    from tests.fixtures.store import T0, scored

    copy = scored("copy", T0, "markets", "negative", -0.9, ("ACME",), duplicate_of="wire")
    with duckdb.connect(str(store_path)) as con:
        migrate(con, "test", migrations=MIGRATIONS[:3])
        for s in (copy, scored("wire", T0, "markets", "negative", -0.9, ("ACME",))):
            con.execute(
                "INSERT INTO scored_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [s.item.story_id, "reuters", "t", None, T0.replace(tzinfo=None), ["ACME"], "markets",
                 "negative", -0.9, "m1", T0.replace(tzinfo=None), s.model_dump_json()],
            )  # fmt: skip
    with DuckDBStore(store_path) as db:
        assert db.stats().schema_version == LATEST_VERSION
    with duckdb.connect(str(store_path)) as con:
        rows = con.execute("SELECT story_id, duplicate_of FROM scored_items ORDER BY 1").fetchall()
    assert rows == [("copy", "wire"), ("wire", None)]


def test_a_file_older_than_first_record_reads_and_copies_read_only(store_path: Path, tmp_path: Path) -> None:
    """`finpulse store copy` and `backtest --from-store` open it read-only: never migrated."""
    from store.migrations import MIGRATIONS
    from tests.fixtures.store import T0, window

    old = window("earnings", T0, 4, 1, revision=1)
    with duckdb.connect(str(store_path)) as con:
        migrate(con, "test", migrations=MIGRATIONS[:1])  # no store_meta, duplicate_of, first_record
        columns = "key, entity_kind, entity, window_kind, window_start, window_end, count, negative_count, "
        columns += "negative_share, mean_score, baseline_negative_share, baseline_volume, revision, record"
        con.execute(
            f"INSERT INTO windows ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [old.key, "topic", "earnings", "tumbling", old.window_start.replace(tzinfo=None),
             old.window_end.replace(tzinfo=None), 4, 1, 0.25, 0.0, None, None, 1, old.model_dump_json()],
        )  # fmt: skip
    with DuckDBStore(store_path, read_only=True) as db:
        assert db.window_series("topic", "earnings", start=T0, end=old.window_end, as_tested=True) == [old]
        with DuckDBStore(tmp_path / "copy.duckdb") as target:
            assert db.copy_to(target)["windows"] == 1
            assert target.window_series(
                "topic", "earnings", start=T0, end=old.window_end, as_tested=True
            ) == [old]


def test_a_failing_step_rolls_back_and_keeps_the_version(store_path: Path) -> None:
    good = Migration(1, "one", ("CREATE TABLE a (x INTEGER)",))
    bad = Migration(2, "two", ("CREATE TABLE b (x INTEGER)", "CREATE TABLE a (x INTEGER)"))
    with duckdb.connect(str(store_path)) as con:
        assert migrate(con, "test", migrations=(good,)) == [1]
        with pytest.raises(duckdb.CatalogException):
            migrate(con, "test", migrations=(good, bad))
        assert current_version(con) == 1
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert "b" not in names
        assert migrate(con, "test", migrations=(good,)) == []


def test_a_step_for_another_database_is_recorded_and_an_optional_one_that_fails_is_skipped(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = Migration(1, "one", ("CREATE TABLE a (x INTEGER)",))
    elsewhere = Migration(2, "postgres only", ("CREATE EXTENSION nothing_duckdb_has",), only="postgresql")
    faster = Migration(3, "faster", ("CREATE INDEX a_y ON a (y)",), optional=True)  # no column y
    steps = (good, elsewhere, faster)
    with duckdb.connect(str(store_path)) as con, caplog.at_level(logging.WARNING, logger="store.migrations"):
        assert migrate(con, "test", migrations=steps) == [1, 2]
        assert "store step skipped where=test version=3 (faster)" in caplog.text
        assert current_version(con) == 2  # tried again at the next start
        caplog.clear()
        assert migrate(con, "test", migrations=steps) == []
        assert "version=3 (faster)" in caplog.text
        # A later step lands; the skipped one is still tried at each start, and lands once it can.
        later = Migration(4, "later", ("CREATE TABLE c (x INTEGER)",))
        assert migrate(con, "test", migrations=(*steps, later)) == [4]
        assert current_version(con) == 4
        con.execute("ALTER TABLE a ADD COLUMN y INTEGER")
        assert migrate(con, "test", migrations=(*steps, later)) == [3]
        assert migrate(con, "test", migrations=(*steps, later)) == []
        versions = con.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
        assert [v for (v,) in versions] == [1, 2, 3, 4]


def test_a_newer_schema_is_refused(store_path: Path) -> None:
    with DuckDBStore(store_path):
        pass
    with duckdb.connect(str(store_path)) as con:
        con.execute(
            "INSERT INTO schema_version (version, description) VALUES (?, 'future')", [LATEST_VERSION + 1]
        )
    with pytest.raises(StoreConfigError, match="newer than this finpulse knows"):
        DuckDBStore(store_path).start()


def test_read_only_needs_an_existing_file_and_refuses_writes(store_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist yet"):
        DuckDBStore(store_path, read_only=True).start()
    with DuckDBStore(store_path):
        pass
    with DuckDBStore(store_path, read_only=True) as db:
        assert db.stats().alerts == 0
        with pytest.raises(StoreError, match="opened read-only"):
            db.apply_retention()


def test_use_before_start_says_so(store_path: Path) -> None:
    with pytest.raises(StoreError, match="not started"):
        DuckDBStore(store_path).stats()


@pytest.mark.parametrize("keep_open", [False, True])
def test_stop_is_idempotent_and_the_data_stays(store_path: Path, keep_open: bool) -> None:
    db = DuckDBStore(store_path, keep_open=keep_open)
    db.start()
    db.start()
    db.put_subscription("desk", {"channel": "#desk"})
    db.stop()
    db.stop()
    with DuckDBStore(store_path) as again:
        assert [s.id for s in again.list_subscriptions()] == ["desk"]


def test_in_memory_store_works() -> None:
    with DuckDBStore("duckdb:///:memory:") as db:
        db.put_subscription("a", {"x": 1})
        assert db.stats().subscriptions == 1
