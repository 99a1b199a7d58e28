"""The score stage's watermark while batches are in flight (stream/watermark.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream import watermark
from stream.watermark import LowWatermark, SourceProgress

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_low_watermark_is_the_slowest_active_input() -> None:
    marks = LowWatermark(idle_s=5)
    marks.observe(0, at(10), wall=100.0)
    marks.observe(1, at(3), wall=100.0)
    assert marks.value(wall=101.0) == at(3)
    # Partition 1 silent for longer than idle_s, and the input was drained since: ignored.
    marks.observe(0, at(12), wall=106.0)
    assert marks.value(wall=106.5, drained_at=106.5) == at(12)
    # Not drained since it was last seen: a busy stage's backlog, still holds the mark back.
    assert marks.value(wall=106.5, drained_at=99.0) == at(3)


def test_heartbeat_holds_the_published_mark_while_any_batch_is_in_flight() -> None:
    progress = SourceProgress(idle_s=60)
    progress.begin_batch(64, 64)
    progress.observe(0, at(1))
    first = progress.batch_mark(at(1))
    progress.end_batch(first)
    assert progress.heartbeat_mark() == at(1)

    # Batch 2 is classified while batch 3 is read: both in flight at once.
    progress.begin_batch(64, 64)
    progress.observe(0, at(5))
    second = progress.batch_mark(at(5))
    progress.begin_batch(64, 64)
    progress.observe(0, at(9))
    third = progress.batch_mark(at(9))
    assert progress.heartbeat_mark() == at(1)
    progress.end_batch(second)
    # Batch 3 (stories at minute 9) is not published yet: the heartbeat must not pass it.
    assert progress.heartbeat_mark() == at(5)
    progress.end_batch(third)
    assert progress.heartbeat_mark() == at(9)


def test_an_assigned_partition_not_yet_read_holds_the_watermark_until_read() -> None:
    # After a restart the first batch came from partition 0 only, far ahead of partition 1's backlog.
    progress = SourceProgress(idle_s=60)
    progress.assign({0, 1})
    progress.begin_batch(32, 32)
    progress.observe(0, at(90))
    assert progress.batch_mark(at(80)) is None
    progress.end_batch(None)
    assert progress.heartbeat_mark() is None
    progress.begin_batch(32, 32)
    progress.observe(1, at(30))
    assert progress.batch_mark(at(30)) == at(30)


def test_an_unread_partition_stops_counting_once_the_stage_drains_after_its_assignment() -> None:
    progress = SourceProgress(idle_s=60)
    progress.assign({0, 1})
    progress.begin_batch(5, 32)  # short: every partition was read up, partition 1 is empty
    progress.observe(0, at(10))
    assert progress.batch_mark(at(10)) == at(10)


def test_a_revoked_partition_no_longer_holds_the_watermark() -> None:
    progress = SourceProgress(idle_s=60)
    progress.assign({0, 1})
    progress.begin_batch(32, 32)
    progress.observe(0, at(50))
    progress.observe(1, at(5))
    assert progress.batch_mark(at(5)) == at(5)
    progress.end_batch(at(5))
    progress.assign({0})
    assert progress.heartbeat_mark() == at(50)
    # Assigned again later: unknown until read.
    progress.assign({0, 1})
    assert progress.heartbeat_mark() is None


def test_partitions_processed_before_a_restart_mark_their_last_story_and_close_the_last_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The worker before the restart scored everything: this one reads nothing, and learns
    # from the broker how far each partition got (its last story; partition 2 is empty).
    wall = [1000.0]
    monkeypatch.setattr(watermark.time, "time", lambda: wall[0])
    progress = SourceProgress(idle_s=5)
    progress.assign({0, 1, 2})
    assert progress.heartbeat_mark() is None
    progress.caught_up({0: at(40)})
    assert progress.heartbeat_mark() is None  # partitions 1 and 2 still unknown
    progress.caught_up({1: at(55), 2: None})
    assert progress.heartbeat_mark() == at(40)  # both active: the slower one
    wall[0] += 5
    assert progress.heartbeat_mark() == at(55)  # silent since the stage ran dry: the greatest mark


def test_a_caught_up_partition_does_not_drain_a_stage_that_reads_others() -> None:
    progress = SourceProgress(idle_s=0.0001)
    progress.assign({0, 1})
    progress.begin_batch(32, 32)
    progress.observe(0, at(10))
    progress.end_batch(progress.batch_mark(at(10)))
    progress.caught_up({1: at(50)})
    assert progress.drained_at is None
    assert progress.heartbeat_mark() == at(10)
