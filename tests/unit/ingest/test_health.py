"""ingest.health: a source's health from its latest published status (plain data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from finpulse.schema import SourceStatus
from ingest.health import SourceHealth, due, judge

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def status(**kw: object) -> SourceStatus:
    base = {"source": "s", "source_kind": "feed", "interval_s": 300, "published_at": NOW}
    return SourceStatus.model_validate(base | kw)


def test_health_follows_the_last_poll() -> None:
    assert judge(status(), NOW) == "waiting"
    polled = NOW - timedelta(minutes=5)
    assert judge(status(last_poll_at=polled, last_success_at=polled, last_new_at=polled), NOW) == "ok"
    failing = status(last_poll_at=polled, consecutive_errors=2, last_error="http: 503")
    assert judge(failing, NOW) == "failing"
    assert SourceHealth(failing, "failing").detail() == "2 failed polls in a row: http: 503"
    # Nothing failed, but no poll for over three intervals: the ingestor is not running.
    ago = NOW - timedelta(minutes=16)
    stale = status(last_poll_at=ago, last_success_at=ago, last_new_at=ago, host="ingest-2")
    assert judge(stale, NOW) == "late"
    assert SourceHealth(stale, "late").detail() == (
        "its poll is over 2 x 300 s overdue: is `finpulse ingest` on ingest-2 running?"
    )
    planned = stale.model_copy(update={"next_poll_at": ago + timedelta(minutes=6)})  # 5 + jitter
    assert judge(planned, NOW) == "ok"
    assert judge(planned, NOW + timedelta(minutes=1)) == "late"
    assert judge(status(last_poll_at=ago, interval_s=600), NOW) == "ok"
    assert judge(status(last_poll_at=ago, source_kind="replay"), NOW) == "ok", "a replay file is read once"
    assert judge(status(last_poll_at=ago, enabled=False), NOW) == "disabled"


def test_a_failing_source_backed_off_is_late_only_past_its_planned_poll() -> None:
    polled = NOW - timedelta(hours=5)
    backed_off = status(
        last_poll_at=polled, next_poll_at=polled + timedelta(hours=1), consecutive_errors=8,
        last_error="unreachable: cannot connect",
    )  # fmt: skip
    assert judge(backed_off, polled + timedelta(minutes=69)) == "failing"  # 1 h backoff + 2 x 300 s
    assert judge(backed_off, polled + timedelta(minutes=71)) == "late"
    # Its ingestor stopped hours ago (`status` said "failing", next poll "5 h ago"): late, and why it failed.
    assert judge(backed_off, NOW) == "late"
    assert SourceHealth(backed_off, "late").detail() == (
        "its poll is over 2 x 300 s overdue: is `finpulse ingest` running? "
        "Its last poll failed (8 failed polls in a row): unreachable: cannot connect"
    )


def test_the_next_poll_is_the_ingestors_plan_or_an_interval_after_a_success() -> None:
    polled = NOW - timedelta(minutes=1)
    assert due(status()) is None  # never polled
    assert due(status(last_poll_at=polled)) == polled + timedelta(seconds=300)  # ok: an interval on
    backed_off = polled + timedelta(hours=1)
    assert due(status(last_poll_at=polled, next_poll_at=backed_off, consecutive_errors=5)) == backed_off
    assert due(status(last_poll_at=polled, source_kind="replay")) is None  # read once


def test_a_source_that_polls_fine_but_gives_nothing_usable_says_so() -> None:
    polled = NOW - timedelta(minutes=1)
    fine = {"last_poll_at": polled, "last_success_at": polled}
    # Every entry dead-lettered: a field map that misses (API `fields.title` not in its items).
    missed = status(**fine, last_entries=20, last_invalid=20, last_new_at=polled - timedelta(days=1))
    assert judge(missed, NOW) == "invalid"
    assert (
        SourceHealth(missed, "invalid")
        .detail()
        .startswith("all 20 entries of its last poll were dead-lettered")
    )
    assert judge(missed.model_copy(update={"last_invalid": 19}), NOW) == "ok"
    # Nothing new for days, or ever: quiet; a weekend is not.
    stopped = status(**fine, items_published=40, last_new_at=NOW - timedelta(days=4))
    assert judge(stopped, NOW) == "quiet"
    assert SourceHealth(stopped, "quiet").detail() == (
        "no new item since 2026-12-01 10:00 UTC: is the feed still updated?"
    )
    assert judge(stopped.model_copy(update={"last_new_at": NOW - timedelta(days=2)}), NOW) == "ok"
    never = status(**fine, last_entries=0)
    assert judge(never, NOW) == "quiet"
    assert SourceHealth(never, "quiet").detail().startswith("no item published yet")
    # A status from an ingestor before these fields: items published, no time of the last new one.
    assert judge(status(**fine, items_published=40), NOW) == "ok"
    assert judge(status(**fine, source_kind="replay"), NOW) == "ok", "a replay file is read once"
