"""When the aggregate stage closes a window: the close rule over plain dicts as tables.

The stream's end-to-end tests run the same class inside Faust on the real broker;
here the tables are dicts and the windows topic a list, so the rule can be
stepped watermark by watermark.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from alerts.baseline import Baseline
from finpulse.errors import InvalidRecord, TransientError
from finpulse.schema import DeadLetter, WindowAggregate
from finpulse.settings import Settings, StreamSettings
from stream.metrics import LATE_STORY_WINDOWS, WATERMARKS
from stream.skipped import Record, SkippedRecords
from stream.watermark import TICK_KEY, Mark, headers_for
from stream.windowing import Windows
from tests.unit.alerts.synth import T0, scored


@dataclass
class _Topic:
    sent: list[WindowAggregate] = field(default_factory=list)

    async def send(self, *, key: bytes, value: bytes) -> None:
        self.sent.append(WindowAggregate.from_bytes(value))


def _covering(mark: datetime) -> dict[str, bytes]:
    """Headers of a mark covering every news.raw partition."""
    return headers_for(Mark(mark, frozenset(range(Settings().kafka.topics.partitions))))


def _event(key: bytes, value: bytes, offset: int, mark: datetime) -> Any:
    return SimpleNamespace(
        key=key, value=value, headers=_covering(mark), message=SimpleNamespace(partition=0, offset=offset)
    )


class _Log(SkippedRecords):
    """The by-entity partition as the broker holds it, for records the consumer skipped."""

    def __init__(self, records: list[Record] | None = None, resumed: dict[int, int] | None = None) -> None:
        super().__init__(None, "", "entity-batches", "by-entity")  # type: ignore[arg-type]
        self.records = records or []
        self.resumed = resumed or {}
        self.asked: list[tuple[int, int, int]] = []
        self.acked: list[int] = []

    async def read(self, partition: int, start: int, end: int) -> list[Record]:
        self.asked.append((partition, start, end))
        return self.records[start:end]

    async def resumes(self, partition: int) -> dict[int, int]:
        return self.resumed  # where the group resumed (none known: a first event is not compared)

    def ack(self, partition: int, record: Record) -> None:
        self.acked.append(record.offset)


class _Dead:
    """The dead-letter topic: letters kept, each delivered at once."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []

    async def send(self, *, value: bytes) -> asyncio.Future[None]:
        self.letters.append(DeadLetter.from_bytes(value))
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        delivered.set_result(None)
        return delivered


def _windows(
    grace_s: float, log: _Log | None = None, tables: Windows | None = None, dead: _Dead | None = None
) -> tuple[Windows, _Topic]:
    """A fresh aggregate stage; with `tables`, over that one's tables (a restarted worker)."""
    topic = _Topic()
    settings = Settings(stream=StreamSettings(close_grace_s=grace_s, allowed_lateness_s=600))
    windows = Windows(
        slots=tables.slots if tables else {},  # type: ignore[arg-type]
        counted=tables.counted if tables else {},  # type: ignore[arg-type]
        baselines=tables.baselines if tables else {},  # type: ignore[arg-type]
        topics=SimpleNamespace(windows=topic),  # type: ignore[arg-type]
        settings=settings,
        skipped=log or _Log(),
        dead=dead or _Dead(),  # type: ignore[arg-type]
    )
    return windows, topic


async def test_a_window_closes_once_the_watermark_passes_its_end_plus_the_grace() -> None:
    windows, topic = _windows(grace_s=60)
    story = scored("a", "negative", at=T0 + timedelta(minutes=1))
    await windows.on_event(_event(b"ticker:ACME", b"[" + story.to_bytes() + b"]", 0, T0))
    end = T0 + timedelta(minutes=5)

    await windows.on_event(_event(TICK_KEY, b"", 1, end + timedelta(seconds=59)))
    assert not [w for w in topic.sent if w.window_kind == "tumbling"]

    await windows.on_event(_event(TICK_KEY, b"", 2, end + timedelta(seconds=60)))
    [closed] = [w for w in topic.sent if w.window_kind == "tumbling"]
    assert (closed.entity, closed.window_start, closed.count, closed.revision) == ("ACME", T0, 1, 0)


@pytest.mark.parametrize("key", [b"ticker:", b"sector:ACME", b"ticker"])
async def test_a_record_with_no_entity_is_refused_and_later_windows_still_close(key: bytes) -> None:
    # Before: an empty ticker opened a window its WindowAggregate refused at close, and every
    # later window of the partition stayed open behind it.
    windows, topic = _windows(grace_s=0)
    story = b"[" + scored("a", "negative", at=T0).to_bytes() + b"]"
    with pytest.raises(InvalidRecord, match="entity"):
        await windows.on_event(_event(key, story, 0, T0))  # the agent dead-letters it
    await windows.on_event(_event(b"ticker:ACME", story, 1, T0))
    await windows.on_event(_event(TICK_KEY, b"", 2, T0 + timedelta(minutes=5)))
    assert [w.entity for w in topic.sent if w.window_kind == "tumbling"] == ["ACME"]


async def test_a_late_story_does_not_open_a_window_before_one_of_its_entity_that_closed() -> None:
    # ACME had stories in 09:00-09:15 and 09:25, none in 09:20; all closed at 09:30. Three
    # negative stories for 09:20 come then, within the lateness: a window opened for them would
    # close after 09:25, never tested live nor learnt by the baseline, yet tested by a backtest.
    windows, topic = _windows(grace_s=0)
    offset = 0
    for k in (0, 1, 2, 3, 5):
        batch = [scored(f"s{k}{j}", "neutral", at=T0 + timedelta(minutes=5 * k + 1 + j)) for j in range(2)]
        stories = b"[" + b",".join(x.to_bytes() for x in batch) + b"]"
        await windows.on_event(_event(b"ticker:ACME", stories, offset, T0 + timedelta(minutes=5 * k)))
        offset += 1
    await windows.on_event(_event(TICK_KEY, b"", offset, T0 + timedelta(minutes=30)))
    late = [scored(f"late{j}", "negative", at=T0 + timedelta(minutes=21 + j)) for j in range(3)]
    stories = b"[" + b",".join(x.to_bytes() for x in late) + b"]"
    await windows.on_event(_event(b"ticker:ACME", stories, offset + 1, T0 + timedelta(minutes=30)))
    await windows.on_event(_event(TICK_KEY, b"", offset + 2, T0 + timedelta(minutes=31)))
    starts = [w.window_start for w in topic.sent if w.window_kind == "tumbling"]
    assert starts == [T0 + timedelta(minutes=5 * k) for k in (0, 1, 2, 3, 5)]  # no 09:20


class _CountingTable(dict[bytes, bytes]):
    """The counted-records table, counting its full scans."""

    scans = 0

    def items(self) -> Any:
        self.scans += 1
        return super().items()


async def test_after_a_rebalance_the_counted_records_are_decoded_once_for_every_partition() -> None:
    windows, topic = _windows(grace_s=0)
    windows.counted = table = _CountingTable()  # type: ignore[assignment]
    for partition in (0, 1):
        story = b"[" + scored(f"p{partition}", "negative", at=T0).to_bytes() + b"]"
        event = _event(b"ticker:ACME", story, 0, T0)
        event.message.partition = partition
        await windows.on_event(event)
    windows.on_assigned()  # a rebalance: indexes rebuilt from the table
    table.scans = 0
    for partition in (0, 1):  # the same records again (replayed): recognised, not counted twice
        story = b"[" + scored(f"p{partition}", "negative", at=T0).to_bytes() + b"]"
        event = _event(b"ticker:ACME", story, 0, T0)
        event.message.partition = partition
        await windows.on_event(event)
    assert table.scans == 1
    await windows.on_event(_event(TICK_KEY, b"", 1, T0 + timedelta(minutes=5)))
    assert [w.count for w in topic.sent if w.window_kind == "tumbling"] == [1]


async def test_each_partitions_watermark_age_is_a_metric() -> None:
    windows, _ = _windows(grace_s=0)
    WATERMARKS.watch(windows)
    story = b"[" + scored("a", "negative", at=T0).to_bytes() + b"]"
    await windows.on_event(_event(b"ticker:ACME", story, 0, T0 + timedelta(minutes=1)))
    [family] = WATERMARKS.collect()
    ages = {s.labels["partition"]: s.value for s in family.samples}
    assert set(ages) == {"0"}
    assert ages["0"] == pytest.approx(time.time() - (T0 + timedelta(minutes=1)).timestamp(), abs=60)


async def test_a_replayed_record_counts_once_and_a_late_story_revises_the_closed_window() -> None:
    windows, topic = _windows(grace_s=0)
    first = b"[" + scored("a", "negative", at=T0).to_bytes() + b"]"
    await windows.on_event(_event(b"ticker:ACME", first, 0, T0))
    await windows.on_event(_event(b"ticker:ACME", first, 0, T0))  # redelivered after a crash
    await windows.on_event(_event(TICK_KEY, b"", 1, T0 + timedelta(minutes=5)))
    late = b"[" + scored("b", "positive", at=T0 + timedelta(minutes=2)).to_bytes() + b"]"
    await windows.on_event(_event(b"ticker:ACME", late, 2, T0 + timedelta(minutes=5)))
    tumbling = [(w.count, w.revision) for w in topic.sent if w.window_kind == "tumbling"]
    assert tumbling == [(1, 0), (2, 1)]


async def test_only_stories_not_counted_before_are_logged_as_late(caplog: pytest.LogCaptureFixture) -> None:
    windows, _ = _windows(grace_s=0)
    first = scored("a", "negative", at=T0)
    await windows.on_event(_event(b"ticker:ACME", _record(first.to_bytes()), 0, T0))
    # Past the lateness (600 s) of the windows ending at T0 + 5 min: the tumbling one and the
    # hopping one that started 55 minutes before.
    past = T0 + timedelta(minutes=15, seconds=1)
    await windows.on_event(_event(TICK_KEY, b"", 1, past))
    caplog.set_level(logging.INFO, logger="stream.windowing")
    # Story a again, in a new record (a worker that took over scored it again), beside a new one.
    new = scored("b", "negative", at=T0 + timedelta(minutes=1))
    before = LATE_STORY_WINDOWS._value.get()
    await windows.on_event(_event(b"ticker:ACME", _record(first.to_bytes(), new.to_bytes()), 2, past))
    late = [r.getMessage() for r in caplog.records if "past their lateness" in r.getMessage()]
    assert len(late) == 1
    assert "entity=ticker:ACME story-windows=2 " in late[0]  # b's two, not a's
    assert LATE_STORY_WINDOWS._value.get() - before == 2  # and counted for Prometheus


def _window(w: WindowAggregate) -> tuple[str, datetime]:
    return w.window_kind, w.window_start


def _record(*stories: bytes) -> bytes:
    return b"[" + b",".join(stories) + b"]"


async def test_a_story_counts_once_per_window_across_records_restarts_and_lost_entries() -> None:
    windows, topic = _windows(grace_s=0)
    a = scored("a", "negative", at=T0).to_bytes()
    syndicated = scored("a2", "negative", at=T0, duplicate_of="a").to_bytes()
    b = scored("b", "positive", at=T0 + timedelta(minutes=1)).to_bytes()
    await windows.on_event(_event(b"ticker:ACME", _record(a), 0, T0))
    await windows.on_event(_event(b"ticker:ACME", _record(syndicated, b), 1, T0))  # a again: once
    windows.on_assigned()  # a restart: the index is rebuilt from the recovered table
    await windows.on_event(_event(b"ticker:ACME", _record(a, b), 2, T0))  # both re-scored: no count
    # A crash lost record 1's counted entry but not its window write; replaying it repairs
    # the entry without counting anything twice, and a re-scored b still counts once.
    [lost] = [k for k in windows.counted if k.endswith(b"|@1")]
    del windows.counted[lost]
    windows.on_assigned()
    await windows.on_event(_event(b"ticker:ACME", _record(syndicated, b), 1, T0))
    await windows.on_event(_event(b"ticker:ACME", _record(b), 3, T0))
    await windows.on_event(_event(TICK_KEY, b"", 4, T0 + timedelta(minutes=5)))
    [tumbling] = [w for w in topic.sent if w.window_kind == "tumbling"]
    assert (tumbling.count, tumbling.negative_count) == (2, 1)
    assert sorted(k.rpartition(b"|@")[2] for k in windows.counted) == [b"0", b"1"]


async def test_a_record_whose_window_write_was_lost_counts_again_when_replayed() -> None:
    # A crash kept record 1's counted entry but lost its windows' writes (separate changelog
    # records): replayed, its stories must still reach the windows (seen on the real broker).
    windows, topic = _windows(grace_s=0)
    a = scored("a", "negative", at=T0).to_bytes()
    b = scored("b", "positive", at=T0 + timedelta(minutes=1)).to_bytes()
    await windows.on_event(_event(b"ticker:ACME", _record(a), 0, T0))
    before = dict(windows.slots)
    await windows.on_event(_event(b"ticker:ACME", _record(b), 1, T0))
    windows.slots.clear()
    windows.slots.update(before)  # record 1's window writes lost, its counted entry kept
    windows.on_assigned()
    await windows.on_event(_event(b"ticker:ACME", _record(b), 1, T0))
    await windows.on_event(_event(TICK_KEY, b"", 2, T0 + timedelta(minutes=5)))
    [tumbling] = [w for w in topic.sent if w.window_kind == "tumbling"]
    assert (tumbling.count, tumbling.negative_count) == (2, 1)


async def test_records_the_consumer_skipped_are_read_back_and_counted_in_order() -> None:
    # Faust handed the agent offsets 0, then 3 (seen after a restart under load): 1 and 2
    # are read from the broker (here a list) before 3 is processed, and acked to the consumer
    # (which commits only past acked offsets).
    stories = [
        scored(name, "negative", at=T0 + timedelta(minutes=i)).to_bytes() for i, name in enumerate("abcd")
    ]
    log = _Log([Record(i, b"ticker:ACME", _record(story), _covering(T0)) for i, story in enumerate(stories)])
    windows, topic = _windows(grace_s=0, log=log)
    await windows.on_event(_event(b"ticker:ACME", _record(stories[0]), 0, T0))
    await windows.on_event(_event(b"ticker:ACME", _record(stories[3]), 3, T0))
    await windows.on_event(_event(b"ticker:ACME", _record(stories[3]), 3, T0))  # a redelivery: no read
    await windows.on_event(_event(TICK_KEY, b"", 4, T0 + timedelta(minutes=5)))
    assert log.asked == [(0, 1, 3)]
    assert log.acked == [1, 2]
    [tumbling] = [w for w in topic.sent if w.window_kind == "tumbling"]
    assert (tumbling.count, tumbling.negative_count) == (4, 4)


async def test_a_record_read_back_that_fails_is_dead_lettered_alone() -> None:
    """Offset 1 of the gap before 3 is no by-entity record: its own letter; 2 and 3 are counted."""
    stories = [
        scored(name, "negative", at=T0 + timedelta(minutes=i)).to_bytes() for i, name in enumerate("abcd")
    ]
    records = [Record(i, b"ticker:ACME", _record(story), _covering(T0)) for i, story in enumerate(stories)]
    records[1] = Record(1, b"sector:ACME", _record(stories[1]), _covering(T0))
    log, dead = _Log(records), _Dead()
    windows, topic = _windows(grace_s=0, log=log, dead=dead)
    await windows.on_event(_event(b"ticker:ACME", _record(stories[0]), 0, T0))
    await windows.on_event(_event(b"ticker:ACME", _record(stories[3]), 3, T0))
    await windows.on_event(_event(TICK_KEY, b"", 4, T0 + timedelta(minutes=5)))
    [letter] = dead.letters
    assert (letter.offset, letter.stage, letter.error_type) == (1, "aggregate", "InvalidRecord")
    assert log.acked == [1, 2]
    [tumbling] = [w for w in topic.sent if w.window_kind == "tumbling"]
    assert tumbling.count == 3


async def test_an_event_whose_gap_cannot_be_read_back_waits_for_the_next_one() -> None:
    """The broker does not answer the read of offsets 1-2 (every attempt): offset 3 is not counted
    ahead of them (they would then count as replays and be lost); offset 4 reads 1-3 back in order."""
    stories = [
        scored(name, "negative", at=T0 + timedelta(minutes=i)).to_bytes() for i, name in enumerate("abcd")
    ]
    log = _Log([Record(i, b"ticker:ACME", _record(story), _covering(T0)) for i, story in enumerate(stories)])
    log.pause_s = 0.0
    windows, topic = _windows(grace_s=0, log=log)
    await windows.on_event(_event(b"ticker:ACME", _record(stories[0]), 0, T0))
    read = log.read

    async def unreachable(partition: int, start: int, end: int) -> list[Record]:
        raise TransientError("broker unreachable")

    log.read = unreachable  # type: ignore[method-assign]
    await windows.on_event(_event(b"ticker:ACME", _record(stories[3]), 3, T0))
    log.read = read  # type: ignore[method-assign]
    await windows.on_event(_event(TICK_KEY, b"", 4, T0 + timedelta(minutes=5)))
    assert log.asked == [(0, 1, 4)]
    assert log.acked == [1, 2, 3]
    [tumbling] = [w for w in topic.sent if w.window_kind == "tumbling"]
    assert (tumbling.count, tumbling.negative_count) == (4, 4)


async def test_the_sweep_forgets_expired_counted_records_and_keeps_live_ones() -> None:
    windows, topic = _windows(grace_s=0)
    old = scored("old", "negative", at=T0).to_bytes()
    await windows.on_event(_event(b"ticker:ACME", _record(old), 0, T0))  # first sight: sweep due later
    later = T0 + timedelta(hours=3)
    fresh = scored("new", "negative", at=later).to_bytes()
    await windows.on_event(_event(b"ticker:ACME", _record(fresh), 1, later))  # sweeps record 0
    assert [k.rpartition(b"|@")[2] for k in windows.counted if b"|@" in k] == [b"1"]
    # What it forgot, it remembers: windows ending before this took their last story.
    assert windows.counted[b"@swept|0"] == b"%d" % (later - timedelta(minutes=10)).timestamp()
    await windows.on_event(_event(b"ticker:ACME", _record(fresh), 2, later))  # re-scored: once
    await windows.on_event(_event(TICK_KEY, b"", 3, later + timedelta(minutes=5)))
    counts = [w.count for w in topic.sent if w.window_kind == "tumbling" and w.window_start >= later]
    assert counts == [1]


async def test_a_sweep_mark_saved_ahead_of_the_present_is_read_as_the_present() -> None:
    """Saved at 2099 by a story dated ahead (before marks were capped): stories stay countable."""
    first, _ = _windows(grace_s=0)
    first.counted[b"@swept|0"] = b"%d" % datetime(2099, 1, 1, tzinfo=T0.tzinfo).timestamp()
    windows, topic = _windows(grace_s=0, tables=first)  # restarted, over the saved tables
    now = datetime.now(T0.tzinfo).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=now.minute % 5)  # the current 5-minute window
    story = scored("a", "negative", at=now).to_bytes()
    await windows.on_event(_event(b"ticker:ACME", _record(story), 0, now))
    await windows.on_event(_event(TICK_KEY, b"", 1, start + timedelta(minutes=5)))
    assert [w.count for w in topic.sent if w.window_kind == "tumbling"] == [1]


async def test_a_restart_re_emits_the_windows_that_uncommitted_events_emitted() -> None:
    windows, topic = _windows(grace_s=0)
    story = b"[" + scored("a", "negative", at=T0).to_bytes() + b"]"
    await windows.on_event(_event(b"ticker:ACME", story, 0, T0))
    await windows.on_event(_event(TICK_KEY, b"", 1, T0 + timedelta(minutes=5)))  # closes windows
    closed = list(topic.sent)
    assert ("tumbling", T0, 1, 0) in [(w.window_kind, w.window_start, w.count, w.revision) for w in closed]
    # SIGKILL: the slot's close reached the changelog, the windows message did not, and
    # offset 1 was not committed. The restarted worker resumes there and emits it again.
    topic.sent.clear()
    learnt = dict(windows.baselines)
    windows.baselines.clear()  # and the baselines' writes were lost with it
    windows.on_assigned()
    await windows.on_event(_event(TICK_KEY, b"", 1, T0 + timedelta(minutes=5)))
    assert sorted(topic.sent, key=_window) == sorted(closed, key=_window)
    assert windows.baselines == learnt  # folded in again
    # Resuming after a committed close: its message landed, nothing is re-emitted.
    topic.sent.clear()
    windows.on_assigned()
    await windows.on_event(_event(TICK_KEY, b"", 2, T0 + timedelta(minutes=5)))
    assert topic.sent == []


async def test_windows_re_emitted_after_a_crash_are_learnt_in_the_order_they_closed() -> None:
    # Four windows of ACME closed by one tick; their baselines' writes lost with the crash. Folded
    # in again newest first, a baseline took none older than its last: three windows lost for good.
    windows, _ = _windows(grace_s=0)
    for k in range(4):
        story = _record(scored(f"s{k}", "negative", at=T0 + timedelta(minutes=5 * k)).to_bytes())
        await windows.on_event(_event(b"ticker:ACME", story, k, T0))  # the inputs' marks hold them open
    await windows.on_event(_event(TICK_KEY, b"", 4, T0 + timedelta(minutes=20)))
    learnt = dict(windows.baselines)
    assert {Baseline.model_validate_json(raw).windows_seen for raw in learnt.values()} >= {4}
    windows.baselines.clear()
    windows.on_assigned()
    await windows.on_event(_event(TICK_KEY, b"", 4, T0 + timedelta(minutes=20)))  # resumed at offset 4
    assert windows.baselines == learnt


async def test_a_partition_moved_away_is_no_longer_reported() -> None:
    windows, _ = _windows(grace_s=0)
    event = _event(b"ticker:ACME", _record(scored("a", "negative", at=T0).to_bytes()), 0, T0)
    event.message.partition = 3
    await windows.on_event(event)
    assert set(windows.watermarks()) == {3}
    windows.on_assigned({0, 1})  # a rebalance gave partition 3 to another worker
    assert windows.watermarks() == {}


async def test_a_restart_re_emits_what_events_before_the_first_one_handed_over_emitted() -> None:
    # Seen in the two-worker kill test: the survivor resumed a partition at offset 0, as the
    # killed worker had committed none, but Faust first handed it offset 25. The windows closed
    # by the events it read back were lost with the killed worker's unsent messages.
    story = _record(scored("a", "negative", at=T0).to_bytes())
    tick = _covering(T0 + timedelta(minutes=5))
    log = _Log([Record(0, b"ticker:ACME", story, _covering(T0)), Record(1, TICK_KEY, b"", tick),
                Record(2, TICK_KEY, b"", tick)])  # fmt: skip
    windows, topic = _windows(grace_s=0, log=log)
    await windows.on_event(_event(b"ticker:ACME", story, 0, T0))
    await windows.on_event(_event(TICK_KEY, b"", 1, T0 + timedelta(minutes=5)))  # closes windows
    closed = sorted(topic.sent, key=_window)
    assert closed
    log.reset()  # the survivor's own
    log.resumed = {0: 1}  # offset 1 not committed: the closes' messages may be lost
    survivor, again = _windows(grace_s=0, log=log, tables=windows)
    await survivor.on_event(_event(TICK_KEY, b"", 3, T0 + timedelta(minutes=5)))
    assert log.asked == [(0, 1, 3)]
    assert sorted(again.sent, key=_window) == closed


async def test_slots_move_from_open_to_expired_keys_and_a_restart_rebuilds_the_same_sets() -> None:
    windows, topic = _windows(grace_s=0)
    await windows.on_event(_event(b"ticker:ACME", _record(scored("a", "negative", at=T0).to_bytes()), 0, T0))
    keys = windows._keys_of(0)
    assert keys.open == set(windows.slots)
    assert not keys.expired
    past = T0 + timedelta(hours=2)  # beyond every window's end plus the allowed lateness (600 s)
    await windows.on_event(_event(TICK_KEY, b"", 1, past))  # closes them
    await windows.on_event(_event(TICK_KEY, b"", 2, past))  # expires them
    assert topic.sent
    assert not keys.open
    assert keys.expired == set(windows.slots)
    later = scored("b", "negative", at=past).to_bytes()
    await windows.on_event(_event(b"ticker:ACME", _record(later), 3, past))
    assert keys.open == set(windows.slots) - keys.expired != set()
    windows.on_assigned()  # recovery may have changed the table: the sets are rebuilt from it
    rebuilt = windows._keys_of(0)
    assert (rebuilt.open, rebuilt.expired) == (keys.open, keys.expired)


async def test_a_swept_window_takes_no_re_sent_story_when_the_watermark_falls_back() -> None:
    # Seen on the real broker after a SIGKILL: the restarted worker rebuilds its watermark
    # from the records it replays, so it starts far behind the one that closed a window and
    # forgot its counted stories; a story re-sent then must not count twice.
    windows, topic = _windows(grace_s=0)
    story = _record(scored("a", "negative", at=T0).to_bytes())
    await windows.on_event(_event(b"ticker:ACME", story, 0, T0))  # first sight: sweep due later
    await windows.on_event(_event(TICK_KEY, b"", 1, T0 + timedelta(hours=3)))  # closes and sweeps
    assert not [k for k in windows.counted if b"|@" in k]
    restarted, again = _windows(grace_s=0, tables=windows)
    await restarted.on_event(_event(b"ticker:ACME", story, 2, T0))
    counts = {(w.window_kind, w.window_start): (w.count, w.revision) for w in topic.sent + again.sent}
    assert counts[("tumbling", T0)] == (1, 0)
    assert {count for count, _ in counts.values()} == {1}


async def test_a_partition_regained_closes_the_windows_its_other_owner_opened() -> None:
    first, sent = _windows(grace_s=0)
    story = scored("a", "negative", at=T0 + timedelta(minutes=1))
    await first.on_event(_event(b"ticker:ACME", b"[" + story.to_bytes() + b"]", 0, T0))
    for offset, hours in ((1, 2), (2, 3)):  # closed, then past the lateness: nothing due at all
        await first.on_event(_event(TICK_KEY, b"", offset, T0 + timedelta(hours=hours)))
    assert first.partitions[0].next_due is None
    # Another worker owned the partition for a while and opened a window in the shared tables.
    other, _ = _windows(grace_s=0, tables=first)
    later = scored("b", "negative", at=T0 + timedelta(hours=3, minutes=1))
    await other.on_event(_event(b"ticker:ACME", b"[" + later.to_bytes() + b"]", 3, T0 + timedelta(hours=3)))
    first.on_assigned()  # the partition is back
    await first.on_event(_event(TICK_KEY, b"", 4, T0 + timedelta(hours=3, minutes=5)))
    assert [w.window_start for w in sent.sent if w.window_kind == "tumbling"] == [T0, T0 + timedelta(hours=3)]
