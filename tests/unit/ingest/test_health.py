"""ingest.health: a source's health from its saved state (plain data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.health import judge
from ingest.state import SourceState

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def state(**kw: object) -> SourceState:
    return SourceState.model_validate({"source": "s", **kw})


def test_health_follows_the_last_poll() -> None:
    assert judge(None, interval_s=300, once=False, now=NOW) == "waiting"
    assert judge(state(), interval_s=300, once=False, now=NOW) == "waiting"
    polled = NOW - timedelta(minutes=5)
    assert (
        judge(state(last_poll_at=polled, last_success_at=polled), interval_s=300, once=False, now=NOW) == "ok"
    )
    failing = state(last_poll_at=polled, consecutive_errors=2, last_error="http: 503")
    assert judge(failing, interval_s=300, once=False, now=NOW) == "failing"
    # Nothing failed, but no poll for over three intervals: the ingestor is not running.
    stale = state(last_poll_at=NOW - timedelta(minutes=16), last_success_at=NOW - timedelta(minutes=16))
    assert judge(stale, interval_s=300, once=False, now=NOW) == "late"
    assert judge(stale, interval_s=600, once=False, now=NOW) == "ok"
    assert judge(stale, interval_s=300, once=True, now=NOW) == "ok", "a replay file is read once"
