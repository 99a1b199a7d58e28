"""ingest.health: a source's health from its latest published status (plain data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finpulse.schema import SourceStatus
from ingest.health import SourceHealth, judge

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def status(**kw: object) -> SourceStatus:
    base = {"source": "s", "source_kind": "feed", "interval_s": 300, "published_at": NOW}
    return SourceStatus.model_validate(base | kw)


def test_health_follows_the_last_poll() -> None:
    assert judge(status(), NOW) == "waiting"
    polled = NOW - timedelta(minutes=5)
    assert judge(status(last_poll_at=polled, last_success_at=polled), NOW) == "ok"
    failing = status(last_poll_at=polled, consecutive_errors=2, last_error="http: 503")
    assert judge(failing, NOW) == "failing"
    assert SourceHealth(failing, "failing").detail() == "2 failed polls in a row: http: 503"
    # Nothing failed, but no poll for over three intervals: the ingestor is not running.
    ago = NOW - timedelta(minutes=16)
    stale = status(last_poll_at=ago, last_success_at=ago, host="ingest-2")
    assert judge(stale, NOW) == "late"
    assert SourceHealth(stale, "late").detail() == (
        "no poll for over 3 x 300 s: is `finpulse ingest` on ingest-2 running?"
    )
    assert judge(status(last_poll_at=ago, interval_s=600), NOW) == "ok"
    assert judge(status(last_poll_at=ago, source_kind="replay"), NOW) == "ok", "a replay file is read once"
    assert judge(status(last_poll_at=ago, enabled=False), NOW) == "disabled"
