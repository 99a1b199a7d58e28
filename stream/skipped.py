"""Reading a topic from the broker directly, beside Faust's consumer.

1. Records the Faust consumer skipped.

Seen on workers restarted after a SIGKILL while the machine was loaded (the
stream e2e kill test, 3 runs in 8 with a CPU burner beside it): the aggregate
agent was handed offsets 19 and 20 of a by-entity partition, then 38. Faust
had fetched 21-37 and dropped them: its `getmany` stops yielding a batch once
the flow stops or the partition is paused (recovery and rebalances do both),
after aiokafka had moved the fetch position past the whole batch; Faust then
books the jump as a gap it may commit over. Those records' stories were never
counted. The score, aggregate and detect stages notice such a jump (the next
offset they get is past the one they expect: for a partition's first record
since an assignment, the offset the group resumes from, asked of the broker)
and read the missing records themselves, from the broker, before they go on.
At a partition's start this matters most: recovery pauses the partitions
right after an assignment, and Faust books no gap for a group that never
committed and commits over the offset it resumed from (it compares the first
offset acked with the committed one as if that were the last one processed),
so those records were lost for good. Then the stages ack them to Faust,
which commits a partition only up to its first offset never acked (and books
no gap after offset 0): unacked, they would hold the group's commits back for
good, and every restart would replay the whole topic (groups stuck at
committed offsets 1-3 of 100-200 were seen on the dev broker).

2. The tail of a partition, where no later record reveals the gap. Seen on
the score stage's news.raw after one of two workers was killed (2 runs in 66 of
the two-worker e2e test): the survivor took over two partitions, got one's
records up to offset 63 of 75 and the other's short of its end too, then
nothing; their watermark stood still and the last hour's windows never closed.
The score stage follows each partition's next offset (SkippedOffsets, on the
offsets SkippedRecords expects next): one whose end (the consumer's highwater)
lies past it keeps holding the watermark back, and one that has stayed quiet so
for a while is sought back to it; Faust then fetches and hands over the records
again (if that brings nothing either, the offsets past it hold no records, say
a transactional producer's markers, and its quiet counts as its end once more).
Only once quiet: Faust drops a record fetched again below the last offset it
handed over, so a seek while later records are still on their way brings
nothing; a jump within news.raw (offset 23 handed over after 21) is therefore
read back as in 1.

3. Partitions with nothing left to read. A worker restarted after its group
had processed all of a partition reads nothing from it, so its watermark
(stream/watermark.py) cannot know how far that partition got: it asks the
broker for the group's committed offsets and each such partition's last
record (and, for the others, where the group resumes: 2. needs it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.types import TP
from faust.types.tuples import Message

from finpulse.errors import TransientError, retry_transient
from finpulse.settings import KafkaSettings
from finpulse.topics import kafka_admin, kafka_consumer

logger = logging.getLogger(__name__)

READ_BACK_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Record:
    """One record read back: what the aggregate and detect stages need of a Faust event."""

    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


class SkippedReader:
    """Reads offset ranges of one topic's partitions with a consumer of its own (no group)."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.kafka, self.topic = kafka, topic

    async def read(self, partition: int, start: int, end: int) -> list[Record]:
        """The records at offsets `start` <= offset < `end` (fewer where offsets hold none)."""
        async with kafka_consumer(self.kafka) as consumer:
            return await self._read(consumer, partition, start, end)

    async def _read(self, consumer: AIOKafkaConsumer, partition: int, start: int, end: int) -> list[Record]:
        tp = TopicPartition(self.topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        try:
            return await asyncio.wait_for(self._until(consumer, tp, end), READ_BACK_TIMEOUT_S)
        except TimeoutError as exc:
            raise TransientError(
                f"could not read back {self.topic}[{partition}] offsets {start}-{end - 1} "
                f"within {READ_BACK_TIMEOUT_S:.0f}s"
            ) from exc

    @staticmethod
    async def _until(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> list[Record]:
        records: list[Record] = []
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                if record.offset < end:
                    records.append(Record(record.offset, record.key, record.value, dict(record.headers)))
        return records

    async def resume_offsets(self, group: str, partitions: list[int]) -> dict[int, int]:
        """Where `group`'s consumer resumes each of `partitions`."""
        committed = await self._committed(group)
        async with kafka_consumer(self.kafka) as consumer:
            starts = await consumer.beginning_offsets([TopicPartition(self.topic, p) for p in partitions])
        return {tp.partition: _resume(committed, tp, start) for tp, start in starts.items()}

    async def processed(self, group: str, partitions: list[int]) -> GroupProgress:
        """How far `group` got in each of `partitions` (3. above)."""
        committed = await self._committed(group)
        async with kafka_consumer(self.kafka) as consumer:
            tps = [TopicPartition(self.topic, p) for p in partitions]
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            progress = GroupProgress({}, {})
            for tp, end in ends.items():
                resume = _resume(committed, tp, starts[tp])
                if resume < end:
                    progress.resume[tp.partition] = resume
                elif end > starts[tp]:  # all processed: its last record, for the watermark
                    last = await self._read(consumer, tp.partition, end - 1, end)
                    progress.done[tp.partition] = last[0].value if last else None
                else:  # empty, or every record gone with the retention
                    progress.done[tp.partition] = None
            return progress

    async def _committed(self, group: str) -> dict[TopicPartition, int]:
        async with kafka_admin(self.kafka) as admin:
            offsets = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in offsets.items()}


def _resume(committed: Mapping[TopicPartition, int], tp: TopicPartition, start: int) -> int:
    """Where a group's consumer resumes a partition: its committed offset, or the partition's
    start where it committed none (the worker reads from the earliest) or retention took it."""
    return max(committed.get(tp, -1), start)


@dataclass(frozen=True)
class GroupProgress:
    """Partitions with nothing left for a group to read, each with its last record's value (None:
    none left on the broker); and the others, each with the offset the group resumes from."""

    done: dict[int, bytes | None]
    resume: dict[int, int]


class NextOffsets:
    """Per partition, the offset a consumer should hand over next since the last assignment
    (unknown until its first record, or until the broker says where the group resumed it)."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def get(self, partition: int) -> int | None:
        return self._next.get(partition)

    def passed(self, partition: int, offset: int) -> None:
        """A record handed over (and any skipped before it read back). A redelivery below the
        next offset does not move it back: what lies between was handed over already."""
        self._next[partition] = max(self._next.get(partition, 0), offset + 1)

    def resume_at(self, partition: int, offset: int) -> None:
        """Where the group resumes a partition not read since the assignment (its committed
        offset, or the partition's start)."""
        self._next.setdefault(partition, offset)

    def clear(self) -> None:
        self._next.clear()


class SkippedRecords:
    """Records a Faust agent's consumer skipped on one topic (1. above): per partition, the offset
    the agent expects next since the last assignment (`next`); a jump past it is read from the
    broker, and the records read are acked to the consumer once processed, so that its commits
    move past them."""

    # A read back is tried this often, pausing 1x, 2x, ... `pause_s` in between (30 s in all).
    attempts, pause_s = 6, 2.0

    def __init__(self, app: faust.App, kafka: KafkaSettings, topic: str, what: str) -> None:
        self.app, self.topic, self.what = app, topic, what
        self.reader = SkippedReader(kafka, topic)
        self.next = NextOffsets()
        # Where the group resumed each assigned partition, asked at the first event after an
        # assignment (none is committed before a partition's first event is processed).
        self._resumed: dict[int, int] | None = None

    def reset(self) -> None:
        """After a rebalance Faust resumes from the committed offsets, asked for again."""
        self.next.clear()
        self._resumed = None

    async def before(self, partition: int, offset: int) -> list[Record]:
        """The records skipped between the last event of the partition (or, for the first since
        an assignment, where the group resumed it) and this one (none for a redelivery); a read
        that still fails after `attempts` raises TransientError and leaves the gap for the next
        event to find."""
        expected = self.next.get(partition)
        if expected is None:
            expected = (await self._resume_offsets(partition)).get(partition)
        records: list[Record] = []
        if expected is not None and offset > expected:
            records = await self._read_retrying(partition, expected, offset)
            logger.warning(
                "%s records skipped by the consumer, read back partition=%d offsets=%d-%d records=%d",
                self.what, partition, expected, offset - 1, len(records),
            )  # fmt: skip
        self.next.passed(partition, offset)
        return records

    async def before_or_none(self, partition: int, offset: int) -> list[Record] | None:
        """`before`, with a read that still fails logged and answered None: the gap stays, and
        the partition's next event reads it back, this event's offset included. A stage that
        folds records in order (aggregate, detect) leaves this event for then: processed now,
        the gap's records would come after it, count as replays and be lost."""
        try:
            return await self.before(partition, offset)
        except TransientError as exc:
            logger.warning(
                "could not read back the %s records skipped before partition=%d offset=%d: %s; "
                "the partition's next record reads them back",
                self.what, partition, offset, exc,
            )  # fmt: skip
            return None

    async def read(self, partition: int, start: int, end: int) -> list[Record]:
        return await self.reader.read(partition, start, end)

    async def _read_retrying(self, partition: int, start: int, end: int) -> list[Record]:
        """`read`, tried again while the broker does not answer (a restart, say): the aggregate
        and detect stages fold records in order, so a record read back after a later one would
        count as a replay there, and be lost."""

        def retrying(attempt: int, pause: float, exc: TransientError) -> None:
            logger.warning(
                "could not read back %s records partition=%d offsets=%d-%d (attempt %d of %d), "
                "again in %.0fs: %s",
                self.what, partition, start, end - 1, attempt, self.attempts, pause, exc,
            )  # fmt: skip

        return await retry_transient(
            lambda: self.read(partition, start, end), attempts=self.attempts, pause_s=self.pause_s,
            on_retry=retrying,
        )  # fmt: skip

    async def resumes(self, partition: int) -> dict[int, int]:
        """Where the group resumed this partition and the others of the topic assigned with it."""
        assigned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.topic}
        return await self.reader.resume_offsets(self.app.conf.id, sorted(assigned | {partition}))

    async def _resume_offsets(self, partition: int) -> dict[int, int]:
        """`resumes`, asked once per assignment; on failure (logged) the partitions' starts go
        unchecked, as before, while jumps within them are still caught."""
        if self._resumed is None:
            try:
                self._resumed = await asyncio.wait_for(self.resumes(partition), READ_BACK_TIMEOUT_S)
            except (KafkaError, TransientError, TimeoutError) as exc:
                logger.warning("could not ask the broker where %s partitions resumed: %r", self.what, exc)
                self._resumed = {}
        return self._resumed

    def ack(self, partition: int, record: Record) -> None:
        """The record is processed: Faust commits only up to its first offset never acked."""
        message = Message(
            self.topic, partition, record.offset, timestamp=0.0, timestamp_type=0, headers=record.headers,
            key=record.key, value=record.value, checksum=None, tp=TP(self.topic, partition),
        )  # fmt: skip
        self.app.consumer.ack(message)


class SkippedOffsets:
    """The records of a topic a Faust agent's consumer skipped, by following its partitions (2.
    above): per partition, the offset the agent expects next (`next`, its SkippedRecords') and
    when it last had a record (or, at its end before, saw records appended)."""

    def __init__(self, next_offsets: NextOffsets, quiet_s: float) -> None:
        self.next, self.quiet_s = next_offsets, quiet_s
        self._heard: dict[int, float] = {}
        self._sought: dict[int, tuple[int, float]] = {}  # the offset last sought back to, and when
        self._at_end: set[int] = set()  # partitions last seen with nothing past the next offset

    def assign(self, partitions: Iterable[int], now: float) -> None:
        """After a rebalance (the next offsets are cleared with SkippedRecords.reset) quiet counts
        from now."""
        self._sought.clear()
        self._at_end.clear()
        self._heard = dict.fromkeys(partitions, now)

    def delivered(self, partition: int, now: float) -> None:
        self._heard[partition] = now

    def behind(self, ends: Mapping[int, int | None], now: float) -> frozenset[int]:
        """Of the partitions with their end offsets, those holding records past the next one
        expected: their quiet is not the end of their input (stream/watermark.py). Not one that
        stayed quiet `quiet_s` after a seek back to that offset: what lies past it holds no
        records (a transactional producer's markers), and it would hold the windows for good."""
        return frozenset(
            p for p, end in ends.items()
            if end is not None and _past(end, self.next.get(p)) and not self._sought_in_vain(p, now)
        )  # fmt: skip

    def _sought_in_vain(self, partition: int, now: float) -> bool:
        offset, at = self._sought.get(partition, (None, now))
        return offset == self.next.get(partition) and now - at >= self.quiet_s

    def stalled(self, ends: Mapping[int, int | None], now: float) -> dict[int, int]:
        """Of the partitions with their end offsets (None: not known yet), those quiet for
        `quiet_s` although they hold records past the next one expected, each with that offset:
        to seek back to, once per offset (a seek that brings nothing is not repeated)."""
        due: dict[int, int] = {}
        for partition, end in ends.items():
            expected = self.next.get(partition)
            if expected is None or end is None:
                continue
            if end <= expected:
                self._at_end.add(partition)
                continue
            if partition in self._at_end:
                # Records appended since it was last seen at its end: fetched, maybe not handed
                # over yet. Sought back now, they would be handed over twice (a dead letter sent
                # twice was seen): they count as quiet only from now.
                self._at_end.discard(partition)
                self._heard[partition] = now
            quiet = now - self._heard.get(partition, now) >= self.quiet_s
            if quiet and self._sought.get(partition, (None, 0.0))[0] != expected:
                self._sought[partition] = (expected, now)
                due[partition] = expected
        return due


def _past(end: int, expected: int | None) -> bool:
    """A partition's end lies past the next offset expected (unknown: not past)."""
    return expected is not None and end > expected
