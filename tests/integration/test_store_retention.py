"""Retention on a real DuckDB file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from store import AlertsQuery, DuckDBStore, HeadlinesQuery
from tests.fixtures.store import T0, seed_known


def test_retention_deletes_what_is_older_than_the_cutoff(store_path: Path) -> None:
    with DuckDBStore(store_path, retention_days=1) as db:
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
