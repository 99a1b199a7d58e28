"""Watermarks (stream/watermark.py): the score stage's while batches are in flight, and the
aggregate stage's over news.raw's partitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from stream import watermark
from stream.watermark import LowWatermark, Mark, PartitionMarks, SourceProgress, headers_for, mark_from

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _at(mark: Mark | None) -> datetime | None:
    return mark.at if mark else None


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The watermark's clock, moved by the test (`wall[0] += 5`)."""
    now = [1000.0]
    monkeypatch.setattr(watermark.time, "time", lambda: now[0])
    return now


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
    # Known to hold records past those read (the consumer skipped its tail): never silent.
    assert marks.value(wall=106.5, drained_at=106.5, behind={1}) == at(3)


def test_a_story_dated_ahead_marks_no_later_than_now() -> None:
    """One story dated 2099 must not close every open window and make all later stories late."""
    progress = SourceProgress(idle_s=60)
    progress.assign({0, 1})
    progress.observe(0, datetime(2099, 1, 1, tzinfo=UTC))
    progress.caught_up({1: datetime(2099, 1, 1, tzinfo=UTC)})
    before = datetime.now(UTC)
    mark = progress.heartbeat_mark()
    assert mark is not None
    assert before - timedelta(minutes=1) < mark.at <= datetime.now(UTC)


def test_heartbeat_holds_the_published_mark_while_any_batch_is_in_flight() -> None:
    progress = SourceProgress(idle_s=60)
    progress.begin_batch(64, 64)
    progress.observe(0, at(1))
    first = progress.batch_mark(at(1))
    progress.end_batch(first)
    assert _at(progress.heartbeat_mark()) == at(1)

    # Batch 2 is classified while batch 3 is read: both in flight at once.
    progress.begin_batch(64, 64)
    progress.observe(0, at(5))
    second = progress.batch_mark(at(5))
    progress.begin_batch(64, 64)
    progress.observe(0, at(9))
    third = progress.batch_mark(at(9))
    assert _at(progress.heartbeat_mark()) == at(1)
    progress.end_batch(second)
    # Batch 3 (stories at minute 9) is not published yet: the heartbeat must not pass it.
    assert _at(progress.heartbeat_mark()) == at(5)
    progress.end_batch(third)
    assert _at(progress.heartbeat_mark()) == at(9)


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
    assert _at(progress.batch_mark(at(30))) == at(30)


def test_an_unread_partition_holds_the_watermark_after_the_stage_drains_until_caught_up() -> None:
    progress = SourceProgress(idle_s=60)
    progress.assign({0, 1})
    progress.begin_batch(5, 32)  # short: drained, as far as the stage can tell
    progress.observe(0, at(10))
    # Partition 1 may be empty, or the consumer skipped all of it (stream/skipped.py): only the
    # broker can tell.
    assert progress.batch_mark(at(10)) is None
    progress.caught_up({1: None})  # empty
    assert _at(progress.batch_mark(at(10))) == at(10)


def test_a_revoked_partition_no_longer_holds_the_watermark() -> None:
    progress = SourceProgress(idle_s=60)
    progress.assign({0, 1})
    progress.begin_batch(32, 32)
    progress.observe(0, at(50))
    progress.observe(1, at(5))
    mark = progress.batch_mark(at(5))
    assert _at(mark) == at(5)
    progress.end_batch(mark)
    progress.assign({0})
    assert _at(progress.heartbeat_mark()) == at(50)
    # Assigned again later: unknown until read.
    progress.assign({0, 1})
    assert progress.heartbeat_mark() is None


def test_partitions_processed_before_a_restart_mark_their_last_story_and_close_the_last_windows(
    wall: list[float],
) -> None:
    # The worker before the restart scored everything: this one reads nothing, and learns
    # from the broker how far each partition got (its last story; partition 2 is empty).
    progress = SourceProgress(idle_s=5)
    progress.assign({0, 1, 2})
    assert progress.heartbeat_mark() is None
    progress.caught_up({0: at(40)})
    assert progress.heartbeat_mark() is None  # partitions 1 and 2 still unknown
    progress.caught_up({1: at(55), 2: None})
    assert _at(progress.heartbeat_mark()) == at(40)  # both active: the slower one
    wall[0] += 5
    assert _at(progress.heartbeat_mark()) == at(55)  # silent since the stage ran dry: the greatest mark


def test_a_caught_up_partition_does_not_drain_a_stage_that_reads_others() -> None:
    progress = SourceProgress(idle_s=0.0001)
    progress.assign({0, 1})
    progress.begin_batch(32, 32)
    progress.observe(0, at(10))
    progress.end_batch(progress.batch_mark(at(10)))
    progress.caught_up({1: at(50)})
    assert progress.drained_at is None
    assert _at(progress.heartbeat_mark()) == at(10)


def test_a_mark_covers_the_assigned_partitions_and_travels_in_headers() -> None:
    progress = SourceProgress(idle_s=60)
    progress.assign({0, 2})
    progress.begin_batch(32, 32)
    progress.observe(0, at(10))
    progress.observe(2, at(20))
    mark = progress.batch_mark(at(10))
    assert mark == Mark(at(10), frozenset({0, 2}))
    assert mark_from(headers_for(mark)) == mark
    assert headers_for(None) == {}
    assert mark_from({"fp-wm": b"2026-01-01T00:00:00+00:00"}) is None  # covering nothing said


def test_the_aggregate_watermark_is_the_least_partition_mark_whoever_gave_it() -> None:
    marks = PartitionMarks(partitions=3)
    marks.observe(Mark(at(30), frozenset({0, 1})))  # worker A
    assert marks.value() is None  # partition 2 never covered: it may hold anything
    marks.observe(Mark(at(50), frozenset({2})))  # worker B
    assert marks.value() == at(30)
    # A stops; B takes partitions 0 and 1 over: until it read them it gives no mark (its
    # own later one must not close A's windows), then a lower one, which changes nothing.
    marks.observe(Mark(at(20), frozenset({0, 1, 2})))
    assert marks.value() == at(30)
    marks.observe(Mark(at(60), frozenset({0, 1, 2})))
    assert marks.value() == at(60)


def test_a_partition_known_to_hold_more_than_was_read_holds_the_watermark_after_the_stage_drains(
    wall: list[float],
) -> None:
    # The two-worker e2e failure: the consumer handed over partition 1 up to 10:18, skipped the
    # rest, and a short batch then looked like the end of the input.
    progress = SourceProgress(idle_s=5)
    progress.assign({0, 1})
    progress.begin_batch(32, 32)
    progress.observe(1, at(18))
    progress.end_batch(progress.batch_mark(at(18)))
    wall[0] += 1
    progress.begin_batch(3, 32)  # short: drained, as far as the stage can tell
    progress.observe(0, at(29))
    progress.end_batch(progress.batch_mark(at(29)))
    progress.behind = frozenset({1})  # its end lies past the records read (SkippedTail.behind)
    wall[0] += 10
    assert _at(progress.heartbeat_mark()) == at(18)  # partition 1 holds the windows open
    progress.behind = frozenset()
    assert _at(progress.heartbeat_mark()) == at(29)  # without it: silent, its stories would come late


def test_the_partitions_of_the_short_batch_that_drained_the_stage_fall_silent(wall: list[float]) -> None:
    # The end of a replay: the last, short batch holds stories of several partitions, and
    # then nothing comes. Each fell silent with it, so the latest story closes the last windows.
    progress = SourceProgress(idle_s=5)
    progress.assign({0, 1})
    progress.begin_batch(3, 32)  # short: drained, as far as the stage can tell
    progress.observe(0, at(24))
    progress.observe(1, at(29))
    progress.end_batch(progress.batch_mark(at(24)))
    assert _at(progress.heartbeat_mark()) == at(24)  # both just read: the slower one
    wall[0] += 5
    assert _at(progress.heartbeat_mark()) == at(29)
