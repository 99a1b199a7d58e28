"""Retention on a real DuckDB file: the delete itself, and the API applying it on a schedule."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.retention import RetentionScheduler
from finpulse.settings import Settings, StoreSettings
from store import AlertsQuery, DuckDBStore, HeadlinesQuery, HistoryStore
from tests.fixtures.store import (
    LOCAL,
    LOCAL_URL,
    T0,
    alert,
    another_process_holding,
    scored,
    seed_known,
    window,
)

REPO = Path(__file__).resolve().parents[2]


def test_retention_deletes_what_is_older_than_the_cutoff(store: HistoryStore) -> None:
    store.retention_days = 1
    with store as db:  # a DuckDB file, and a PostgreSQL database
        seed_known(db)
        db.put_feedback("a1", "tp")
        db.put_feedback("a3", "fp")
        # cutoff = T0 + 2 h: items s1..s6 (<= 10:59), all windows, alerts a1 and a2 go.
        deleted = db.apply_retention(now=T0 + timedelta(days=1, hours=2))
        assert deleted == {"feedback": 1, "alerts": 2, "windows": 5, "scored_items": 6}
        stats = db.stats()
        assert (stats.scored_items, stats.windows, stats.alerts, stats.feedback) == (1, 0, 1, 1)
        span = {"start": T0 - timedelta(days=1), "end": T0 + timedelta(days=3)}
        assert [a.alert_id for a in db.fetch(AlertsQuery(**span))] == ["a3"]  # type: ignore[attr-defined]
        assert db.fetch(HeadlinesQuery(sentiment="positive", **span))[0].story_id == "s7"  # type: ignore[attr-defined]
        assert db.apply_retention(now=T0 + timedelta(days=1, hours=2)) == {
            "feedback": 0, "alerts": 0, "windows": 0, "scored_items": 0,
        }  # fmt: skip


def test_default_retention_keeps_recent_history(store_path: Path) -> None:
    with DuckDBStore(store_path) as db:
        seed_known(db)
        assert db.retention_days == 365
        assert sum(db.apply_retention(now=T0 + timedelta(days=30)).values()) == 0


# -- scheduled retention in the API --------------------------------------------------------------

OLD, RECENT = timedelta(days=40), timedelta(days=2)


def _seed_old_and_recent(path: Path, now: datetime) -> None:
    with DuckDBStore(path) as db:
        db.upsert_scored([scored("old", now - OLD, "macro", "negative", -0.5)])
        db.upsert_scored([scored("recent", now - RECENT, "macro", "negative", -0.5)])
        db.upsert_windows([window("macro", now - OLD, 4, 2), window("macro", now - RECENT, 4, 2)])
        db.upsert_alerts(
            [alert("old-alert", "macro", now - OLD), alert("recent-alert", "macro", now - RECENT)]
        )
        db.put_feedback("old-alert", "tp")
        db.put_feedback("recent-alert", "fp")


def _story_ids(path: Path) -> list[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return [r[0] for r in con.execute("SELECT story_id FROM scored_items ORDER BY story_id").fetchall()]


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_api_prunes_at_start_and_then_on_schedule(store_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = datetime.now(UTC)
    _seed_old_and_recent(store_path, now)
    settings = Settings(store=StoreSettings(url=f"duckdb:///{store_path}", retention_days=30))
    caplog.set_level(logging.INFO, logger="api.retention")
    # 0.3 s between runs so the test sees the start run and a scheduled one.
    app = create_app(settings, retention_interval_h=0.3 / 3600)
    with TestClient(app, client=LOCAL, base_url=LOCAL_URL) as client:
        retention = app.state.retention
        _wait(lambda: retention.runs >= 1, "the run at start")
        assert retention.last_deleted == {"feedback": 1, "alerts": 1, "windows": 1, "scored_items": 1}
        stats = client.get("/api/v1/health").json()["store"]
        assert (stats["scored_items"], stats["windows"], stats["alerts"], stats["feedback"]) == (1, 1, 1, 1)
        assert "retention deleted total=4 feedback=1 alerts=1 windows=1 scored_items=1" in caplog.text
        # History that ages past the cutoff later goes at a later run, without a restart.
        with DuckDBStore(store_path) as db:
            db.upsert_scored([scored("aged", now - OLD, "macro", "neutral", 0.0)])
        runs = retention.runs
        _wait(lambda: retention.runs > runs and "aged" not in _story_ids(store_path), "a scheduled run")
        assert _story_ids(store_path) == ["recent"]
    assert not retention.running  # stopped with the app
    with DuckDBStore(store_path) as db:
        assert db.get_alert("recent-alert") is not None
        assert db.get_alert("old-alert") is None
        feedback = db.get_feedback("recent-alert")
        assert feedback is not None
        assert feedback.verdict == "fp"


def test_a_run_while_another_process_holds_the_file_is_skipped_then_retried(
    store_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _seed_old_and_recent(store_path, datetime.now(UTC))
    caplog.set_level(logging.INFO, logger="api.retention")
    db = DuckDBStore(store_path, retention_days=30, lock_timeout_s=0.2)
    db.start()
    retention = RetentionScheduler(db, interval_h=24)
    with another_process_holding(store_path):
        assert asyncio.run(retention.run_once()) is None
        assert retention.runs == 0
        assert "retention skipped" in caplog.text
        assert "StoreLocked" in caplog.text
    assert asyncio.run(retention.run_once()) == {"feedback": 1, "alerts": 1, "windows": 1, "scored_items": 1}
    assert retention.runs == 1
    db.stop()
    assert _story_ids(store_path) == ["recent"]


def test_app_without_an_interval_schedules_nothing(store_path: Path) -> None:
    now = datetime.now(UTC)
    _seed_old_and_recent(store_path, now)
    settings = Settings(store=StoreSettings(url=f"duckdb:///{store_path}", retention_days=30))
    app = create_app(settings)
    with TestClient(app, client=LOCAL, base_url=LOCAL_URL):
        assert app.state.retention is None
    assert _story_ids(store_path) == ["old", "recent"]


def test_finpulse_api_applies_retention_at_start(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    _seed_old_and_recent(path, datetime.now(UTC))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ, "FINPULSE_STORE_URL": f"duckdb:///{path}", "FINPULSE_STORE_RETENTION_DAYS": "30",
        "FINPULSE_API_PORT": str(port), "FINPULSE_LOG_LEVEL": "INFO",
    }  # fmt: skip
    env.pop("FINPULSE_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from finpulse.cli import main; main()", "api"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def pruned() -> bool:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            stats = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).json()["store"]
        except httpx.TransportError:
            return False
        return bool(stats["scored_items"] == 1)

    try:
        _wait(pruned, "finpulse api to prune the old rows", timeout_s=30)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert "retention deleted total=4" in out
    assert _story_ids(path) == ["recent"]
