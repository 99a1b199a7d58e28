"""`finpulse copy-history`: the whole history from one real store into another (a DuckDB file into
a PostgreSQL database and back), page by page, safe to run again."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import typer
from typer.testing import CliRunner

from api.cli import register
from store import DuckDBStore, HistoryStore, TrendQuery
from store.migrations import MIGRATIONS, migrate
from store.postgres import PostgresStore
from store.writes import TABLES
from tests.fixtures.store import T0, scored, seed_known

runner = CliRunner()
app = typer.Typer()
register(app)


def _seed(db: HistoryStore) -> None:
    seed_known(db)
    db.put_feedback("a1", "fp", note="season", author="ann")
    db.put_subscription("desk", {"id": "desk", "channel": "#desk", "filter": {"topics": ["earnings"]}})
    db.put_meta("subscriptions_file_sha256", "abc123")


def _tables(db: HistoryStore) -> dict[str, list[tuple[object, ...]]]:
    return {t.name: db._page(t, None, 10_000) for t in TABLES}


def test_the_cli_copies_a_file_into_a_server_and_a_second_run_changes_nothing(
    store_path: Path, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DuckDBStore(store_path) as db:
        _seed(db)
        expected = _tables(db)
    (tmp_path / "empty.toml").write_text("")
    monkeypatch.setenv("FINPULSE_CONFIG", str(tmp_path / "empty.toml"))
    monkeypatch.setenv("FINPULSE_STORE_URL", f"duckdb:///{store_path}")
    monkeypatch.setenv("COLUMNS", "300")
    target = postgres_url.replace("postgres@", "postgres:pw-x9@", 1)  # trusted: any password gets in
    for _ in range(2):
        result = runner.invoke(app, ["copy-history", target])
        assert result.exit_code == 0, result.output
        assert (
            "scored_items 7, windows 5, alerts 3, feedback 1, subscriptions 1, store_meta 1" in result.output
        )
        assert "pw-x9" not in result.output
        with PostgresStore(postgres_url, read_only=True) as copy:
            assert _tables(copy) == expected
    with PostgresStore(postgres_url, read_only=True) as copy, DuckDBStore(store_path, read_only=True) as db:
        query = TrendQuery(entity_kind="ticker", start=T0, end=T0.replace(day=T0.day + 2))
        assert copy.fetch(query) == db.fetch(query)
        assert copy.alert_events() == db.alert_events()
        assert copy.get_feedback("a1") == db.get_feedback("a1")
        assert copy.list_subscriptions() == db.list_subscriptions()
    same = runner.invoke(app, ["copy-history", f"duckdb:///{store_path}"])
    assert same.exit_code != 0
    assert "the target is the store being copied" in str(same.exception or same.output)


def test_a_server_copies_into_a_file_page_by_page(postgres_url: str, tmp_path: Path) -> None:
    with PostgresStore(postgres_url) as server, DuckDBStore(tmp_path / "copy.duckdb") as file:
        _seed(server)
        seen: list[tuple[str, int]] = []
        copied = server.copy_to(file, page=2, progress=lambda table, n: seen.append((table, n)))
        assert copied == {
            "scored_items": 7, "windows": 5, "alerts": 3, "feedback": 1, "subscriptions": 1, "store_meta": 1,
        }  # fmt: skip
        assert [n for table, n in seen if table == "scored_items"] == [2, 4, 6, 7]
        assert _tables(file) == _tables(server)


def test_a_file_from_before_duplicate_of_copies_its_syndicated_copies_as_such(
    store_path: Path, tmp_path: Path
) -> None:
    """The copy's target is migrated already: its backfill never sees the copied rows (a syndicated
    copy counted twice in trends, as an original of its own)."""
    stories = [
        scored("wire", T0, "markets", "negative", -0.9, ("ACME",), source="wire"),
        scored("copy", T0, "markets", "negative", -0.9, ("ACME",), source="yahoo", duplicate_of="wire"),
        scored("other", T0, "markets", "neutral", 0.0, ("ACME",), source="wire"),
    ]
    with duckdb.connect(str(store_path)) as con:
        migrate(con, "test", migrations=MIGRATIONS[:3])  # a file written before duplicate_of
        for s in stories:
            con.execute(
                "INSERT INTO scored_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [s.item.story_id, s.item.source, s.item.title, s.item.url, T0.replace(tzinfo=None),
                 list(s.item.tickers), s.topic, s.sentiment, s.sentiment_score, "m1",
                 T0.replace(tzinfo=None), s.model_dump_json()],
            )  # fmt: skip
    query = TrendQuery(entity_kind="ticker", start=T0, end=T0.replace(hour=T0.hour + 1))
    with DuckDBStore(store_path, read_only=True) as old, DuckDBStore(tmp_path / "copy.duckdb") as copy:
        old.copy_to(copy)
        copied = copy.fetch(query)
    with DuckDBStore(store_path) as in_place:  # migrated where it is: the backfill runs
        assert copied == in_place.fetch(query)
    assert [(p.count, p.negative_count) for p in copied] == [(2, 1)]


def test_a_catch_up_copy_deletes_the_subscriptions_deleted_since_and_keeps_pruned_history(
    store_path: Path, postgres_url: str
) -> None:
    """README: copy again just before the switch; upserts alone brought a deleted subscription back."""
    with DuckDBStore(store_path) as db, PostgresStore(postgres_url) as server:
        _seed(db)
        db.put_subscription("energy", {"id": "energy", "channel": "#energy", "filter": {"tickers": ["XOM"]}})
        db.copy_to(server)
        db.delete_subscription("energy")
        db.apply_retention(now=T0 + timedelta(days=db.retention_days, hours=12))  # s1-s6, a1, a2
        server.put_meta("made_on_the_server", "x")
        db.copy_to(server)
        assert [s.id for s in server.list_subscriptions()] == ["desk"]
        assert _tables(server)["store_meta"] == _tables(db)["store_meta"]
        assert server.stats().scored_items == 7  # the source's retention is not the target's to apply


def test_a_row_the_server_cannot_hold_is_skipped_and_named_and_the_rest_copied(
    store_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A NUL in PostgreSQL text: the page's transaction failed, and every run again stopped there."""
    with DuckDBStore(store_path) as db, PostgresStore(postgres_url) as server:
        _seed(db)
        db.put_feedback("a2", "tp", note="pasted from a PDF\x00", author="bob")
        with caplog.at_level(logging.WARNING, logger="store"):
            copied = db.copy_to(server)
        assert copied["feedback"] == 1
        assert server.get_feedback("a1") == db.get_feedback("a1")
        assert server.get_feedback("a2") is None
        assert _tables(server)["scored_items"] == _tables(db)["scored_items"]
    assert "skipped feedback a2" in caplog.text
    assert "NUL" in caplog.text
