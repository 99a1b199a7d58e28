"""Records a Faust agent's consumer skipped (stream/skipped.py SkippedRecords): which offsets are
missed, and the ack of those read back."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from faust.types.tuples import Message

from finpulse.errors import TransientError
from stream.skipped import NextOffsets, Record, SkippedOffsets, SkippedRecords

TOPIC = "app-entity-batches"


class _Consumer:
    def __init__(self) -> None:
        self.acked: list[Message] = []

    def ack(self, message: Message) -> bool:
        self.acked.append(message)
        return True


class _Skipped(SkippedRecords):
    """Every offset asked for holds a record; reads and the broker's answers are recorded.
    `resumed`: where the group resumed each partition (an exception: the broker fails)."""

    def __init__(self, resumed: dict[int, int] | Exception | None = None) -> None:
        self.consumer = _Consumer()
        app: Any = SimpleNamespace(consumer=self.consumer)
        super().__init__(app, "127.0.0.1:9", TOPIC, "test")
        self.asked: list[tuple[int, int, int]] = []
        self.resumed = resumed if resumed is not None else {}
        self.resumes_asked: list[int] = []

    async def read(self, partition: int, start: int, end: int) -> list[Record]:
        self.asked.append((partition, start, end))
        return [Record(o, b"k", b"v", {}) for o in range(start, end)]

    async def resumes(self, partition: int) -> dict[int, int]:
        self.resumes_asked.append(partition)
        if isinstance(self.resumed, Exception):
            raise self.resumed
        return dict(self.resumed)


async def test_a_forward_jump_is_read_back_and_redeliveries_and_new_assignments_are_not() -> None:
    skipped = _Skipped({0: 19, 1: 5})
    assert await skipped.before(0, 19) == []  # the first event after an assignment, where it resumed
    assert await skipped.before(0, 20) == []
    assert await skipped.before(1, 5) == []  # partitions are tracked apart
    assert [r.offset for r in await skipped.before(0, 23)] == [21, 22]  # Faust skipped 21-22
    assert await skipped.before(0, 20) == []  # a redelivery after a seek back
    assert await skipped.before(0, 21) == []
    assert await skipped.before(0, 24) == []  # 21-23 were handed over before the redelivery
    skipped.resumed = {0: 10}
    skipped.reset()  # a rebalance: Faust resumes from the committed offsets
    assert await skipped.before(0, 10) == []
    assert [r.offset for r in await skipped.before(0, 12)] == [11]
    assert skipped.asked == [(0, 21, 23), (0, 11, 12)]
    assert skipped.resumes_asked == [0, 0]  # once per assignment


async def test_records_before_a_partitions_first_event_since_an_assignment_are_read_back() -> None:
    """The consumer resumed partition 0 at 7 but handed over 10 first; partition 1 resumed at 30
    but a redelivery from 28 comes first (nothing is missing there)."""
    skipped = _Skipped({0: 7, 1: 30})
    assert [r.offset for r in await skipped.before(0, 10)] == [7, 8, 9]
    assert await skipped.before(1, 28) == []
    assert await skipped.before(2, 4) == []  # not in the broker's answer: nothing to compare
    assert skipped.asked == [(0, 7, 10)]


async def test_a_broker_that_cannot_say_where_partitions_resumed_leaves_only_their_starts_unchecked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    skipped = _Skipped(TransientError("coordinator not available"))
    assert await skipped.before(0, 10) == []
    assert await skipped.before(1, 3) == []  # asked once: not again for each partition
    assert [r.offset for r in await skipped.before(0, 12)] == [11]
    assert skipped.resumes_asked == [0]
    assert "could not ask the broker where test partitions resumed" in caplog.text


async def test_a_record_read_back_is_acked_to_the_consumer_as_its_own_partition_and_offset() -> None:
    skipped = _Skipped()
    skipped.ack(2, Record(41, b"ticker:ACME", b"[]", {"x": b"1"}))
    [message] = skipped.consumer.acked
    assert (message.tp, message.offset, message.key, message.acked) == (
        TP(TOPIC, 2),
        41,
        b"ticker:ACME",
        False,
    )


async def test_a_read_back_is_tried_again_while_the_broker_does_not_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    skipped = _Skipped()
    skipped.pause_s = 0.0
    await skipped.before(0, 1)
    read, failures = skipped.read, [TransientError("broker restarting")] * 2

    async def flaky(partition: int, start: int, end: int) -> list[Record]:
        if failures:
            raise failures.pop()
        return await read(partition, start, end)

    skipped.read = flaky  # type: ignore[method-assign]
    assert [r.offset for r in await skipped.before(0, 4)] == [2, 3]  # in order, before offset 4
    assert "(attempt 2 of 6), again in 0s: broker restarting" in caplog.text


async def test_a_read_that_fails_for_good_is_logged_and_leaves_the_gap_for_the_next_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    skipped = _Skipped()
    skipped.pause_s = 0.0
    await skipped.before_or_none(0, 1)
    read = skipped.read

    async def unreachable(partition: int, start: int, end: int) -> list[Record]:
        raise TransientError("broker unreachable")

    skipped.read = unreachable  # type: ignore[method-assign]
    assert await skipped.before_or_none(0, 4) is None
    assert (
        "records skipped before partition=0 offset=4: broker unreachable; the partition's next" in caplog.text
    )
    skipped.read = read  # type: ignore[method-assign]
    assert [r.offset for r in await skipped.before_or_none(0, 5) or []] == [2, 3, 4]


class _Following(SkippedOffsets):
    """As the score stage drives it: a record handed over passes its offset in the next offsets
    SkippedRecords keeps (and shares), and an assignment clears them."""

    def __init__(self) -> None:
        super().__init__(NextOffsets(), quiet_s=9.0)

    def deliver(self, partition: int, offset: int, now: float) -> None:
        self.next.passed(partition, offset)
        self.delivered(partition, now)

    def reassign(self, partitions: set[int], now: float) -> None:
        self.next.clear()
        self.assign(partitions, now)


def test_the_next_offset_follows_records_handed_over_and_not_redeliveries_below_it() -> None:
    offsets = NextOffsets()
    assert offsets.get(0) is None  # unknown until its first record
    offsets.resume_at(0, 40)  # where the group resumes it, from the broker
    offsets.resume_at(0, 12)  # asked again later: the first answer stands
    assert offsets.get(0) == 40
    offsets.passed(0, 41)
    offsets.passed(0, 30)  # a redelivery
    offsets.resume_at(0, 7)  # known from a record now
    assert (offsets.get(0), offsets.get(1)) == (42, None)
    offsets.clear()
    assert offsets.get(0) is None


def test_a_quiet_partition_short_of_its_end_is_sought_back_once_to_the_next_offset() -> None:
    offsets = _Following()
    offsets.reassign({0, 1, 2}, now=100.0)
    for offset in range(53, 64):  # partition 1 got offsets 53-63 of 75 (the e2e failure), then nothing
        offsets.deliver(1, offset, now=101.0)
    offsets.deliver(0, 97, now=101.0)
    ends = {0: 98, 1: 75, 2: None}  # 2: nothing fetched yet, its end unknown
    assert offsets.behind(ends, now=101.0) == {1}
    assert offsets.stalled(ends, now=109.0) == {}  # not quiet long enough
    assert offsets.stalled(ends, now=110.5) == {1: 64}  # partition 0 is at its end
    assert offsets.stalled(ends, now=130.0) == {}  # sought once per offset: a seek that brings nothing
    offsets.deliver(1, 64, now=131.0)  # the seek brought records, then the consumer stopped again
    assert offsets.stalled(ends, now=150.0) == {1: 65}


def test_a_record_appended_after_a_long_quiet_gets_its_own_time_before_a_seek() -> None:
    offsets = _Following()
    offsets.reassign({0}, now=0.0)
    offsets.deliver(0, 9, now=1.0)
    assert offsets.stalled({0: 10}, now=50.0) == {}  # at its end, quiet for long
    # Offset 10 appended: the consumer fetched it (its end moved) but has not handed it over yet.
    # A seek now would hand it over twice (the calm e2e test saw its dead letter sent twice).
    assert offsets.stalled({0: 11}, now=51.0) == {}
    assert offsets.stalled({0: 11}, now=59.0) == {}
    assert offsets.stalled({0: 11}, now=60.0) == {0: 10}  # quiet since it was appended: skipped
    # Records appended while the consumer stays stuck do not put the seek off again.
    offsets.deliver(0, 10, now=61.0)
    assert offsets.stalled({0: 12}, now=65.0) == {}
    assert offsets.stalled({0: 14}, now=70.0) == {0: 11}


def test_a_partition_skipped_whole_after_an_assignment_is_sought_back_to_where_the_group_resumes() -> None:
    offsets = _Following()
    offsets.reassign({1}, now=0.0)  # taken over; the consumer skips every record from offset 40 on
    assert offsets.behind({1: 75}, now=1.0) == set()  # where it resumes is not known yet
    offsets.next.resume_at(1, 40)  # the group's committed offset, from the broker
    assert offsets.behind({1: 75}, now=1.0) == {1}
    assert offsets.stalled({1: 75}, now=9.0) == {1: 40}


def test_a_partition_is_not_sought_before_its_first_record_since_an_assignment() -> None:
    offsets = _Following()
    offsets.reassign({0}, now=0.0)
    offsets.deliver(0, 10, now=1.0)
    offsets.reassign({0, 1}, now=50.0)  # Faust resumes from the committed offsets: where is unknown
    assert offsets.stalled({0: 40, 1: 40}, now=100.0) == {}
    offsets.deliver(0, 30, now=101.0)
    assert offsets.stalled({0: 40, 1: 40}, now=101.0 + 9.0) == {0: 31}
    offsets.deliver(0, 20, now=111.0)  # a redelivery after the seek back does not move it back
    assert offsets.stalled({0: 40}, now=200.0) == {}


def test_a_partition_a_seek_brought_nothing_from_stops_holding_the_watermark() -> None:
    offsets = _Following()
    offsets.reassign({0}, now=0.0)
    offsets.deliver(0, 9, now=1.0)  # then offsets 10-11 hold no records (a transaction's markers)
    assert offsets.behind({0: 12}, now=5.0) == {0}
    assert offsets.stalled({0: 12}, now=10.0) == {0: 10}
    assert offsets.behind({0: 12}, now=18.0) == {0}  # the seek may still bring something
    assert offsets.behind({0: 12}, now=19.0) == set()  # it brought nothing: quiet is the end
    offsets.deliver(0, 12, now=30.0)  # a new record: followed as before
    assert offsets.behind({0: 20}, now=31.0) == {0}
