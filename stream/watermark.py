"""Event-time low watermarks: how far every input of a stage has progressed.

Kafka keeps order only within a partition, and a worker drains its partitions
unevenly (a bulk replay arrives partition by partition), so the largest event
time seen says little about what may still come. The score stage therefore
tracks, per news.raw partition, the latest publish time it read, and its low
watermark is the minimum over partitions: no partition will deliver anything
older (news.raw partitions are in event-time order, as published). A
partition that sent nothing for `idle_s` although the stage has read its
input dry since (a batch came back short) is silent and stops holding the
watermark back, so quiet feeds and the end of a replay still close windows,
while a busy stage never mistakes its own backlog for silence; nor does a
partition whose end lies past the records read count as silent (Faust's
consumer may skip a partition's tail, which is then fetched again:
stream/skipped.py). A partition
assigned but not yet read holds the watermark back too, until it is read or
the broker shows the group processed it to its end (a drain does not release
it: the consumer may have skipped all of it, stream/skipped.py):
after a restart the first batches may come from one partition only, far ahead
of the others' backlog.

The watermark travels to the aggregate stage in record headers and in
heartbeats, with the news.raw partitions it covers (the stage's own). The
aggregate keeps, per news.raw partition, the greatest mark any worker gave it,
and takes the minimum over all partitions (None while one was never covered).
Marks belong to partitions, not to workers, because partitions move: a worker
that takes over a stopped one's partitions marks them only once it read them,
and until then their last mark holds the watermark back. (Marks per worker let
the one left over close windows with its own, later mark while the stories of
the partitions it took over were still to come: they were dropped as late.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Container, Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

# Heartbeat records on the by-entity topic carry only a watermark.
TICK_KEY = b"\x00tick"
WM_HEADER = "fp-wm"
PARTITIONS_HEADER = "fp-wm-partitions"


@dataclass(frozen=True)
class Mark:
    """A score stage's watermark and the news.raw partitions it covers: no story older than
    `at` will come from them that was not sent already."""

    at: datetime
    partitions: frozenset[int]


class LowWatermark:
    """The minimum over inputs of each input's greatest mark."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self._inputs: dict[Hashable, tuple[datetime, float]] = {}

    def observe(self, key: Hashable, mark: datetime, wall: float) -> None:
        seen = self._inputs.get(key)
        self._inputs[key] = (max(mark, seen[0]) if seen else mark, wall)

    def forget(self, key: Hashable) -> None:
        self._inputs.pop(key, None)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._inputs

    def inputs(self) -> list[Hashable]:
        return list(self._inputs)

    def value(
        self, wall: float, drained_at: float | None = None, behind: Container[Hashable] = ()
    ) -> datetime | None:
        """The low watermark at `wall`, None before any input was seen.

        An input is silent, and ignored, when it sent nothing for `idle_s` and the
        stage has drained its input since (`drained_at`, default: now), unless it is
        known to hold more (`behind`); if all are silent, the greatest mark stands.
        """
        if not self._inputs:
            return None
        drained = wall if drained_at is None else drained_at
        active = [
            m for key, (m, seen) in self._inputs.items()
            if wall - seen < self.idle_s or drained <= seen or key in behind
        ]  # fmt: skip
        return min(active) if active else max(m for m, _ in self._inputs.values())


class SourceProgress:
    """The score stage's watermark over its news.raw partitions.

    A batch is observed before it is published, so while any is in flight (the
    score stage classifies one while it publishes the one before) the
    heartbeat repeats the watermark of the last published batch; and a
    batch's own watermark is at most its oldest story.
    """

    def __init__(self, idle_s: float) -> None:
        self.partitions = LowWatermark(idle_s)
        self.drained_at: float | None = None
        self.in_flight = 0
        self.published: Mark | None = None
        self.assigned: frozenset[int] | None = None  # None: not told (then: those read)
        # Partitions with records past those read (stream/skipped.py SkippedOffsets): never silent.
        self.behind: frozenset[int] = frozenset()
        self._unread: set[int] = set()  # assigned partitions not read yet
        self._read_any = False  # any record read since the process started
        self._drains = False  # the batch being observed is short: it ran the input dry

    def assign(self, partitions: set[int]) -> None:
        """The stage's news.raw partitions after a rebalance: a new one holds the watermark
        back until it is read or caught up; a revoked one no longer counts."""
        self.assigned = frozenset(partitions)
        self._unread = {p for p in self._unread if p in partitions}
        self._unread.update(p for p in partitions if p not in self.partitions)
        for partition in self.partitions.inputs():
            if partition not in partitions:
                self.partitions.forget(partition)

    def unread(self) -> list[int]:
        """Assigned partitions this stage has not read from since their assignment."""
        return list(self._unread)

    def caught_up(self, last_published: Mapping[int, datetime | None]) -> None:
        """Unread partitions whose every record the consumer group has already processed (before
        a restart, say), each with its last record's publish time (None: empty). They mark
        that time; if that leaves nothing unread and nothing was read, the stage has no input
        left: drained now, so its partitions fall silent after `idle_s` and the greatest mark
        closes the last windows, as after a replay's end."""
        now = time.time()
        for partition, published in last_published.items():
            if partition in self._unread:
                self._unread.discard(partition)
                if published is not None:
                    self.partitions.observe(partition, _not_ahead(published), now)
        if not self._unread and not self.in_flight and not self._read_any:
            self.drained_at = math.nextafter(now, math.inf)  # after those observations

    def begin_batch(self, size: int, max_size: int) -> None:
        """A batch short of `max_size` means the input ran dry: every partition was read up."""
        self.in_flight += 1
        self._drains = size < max_size

    def observe(self, partition: int, published: datetime) -> None:
        self._read_any = True
        self._unread.discard(partition)
        self.partitions.observe(partition, _not_ahead(published), time.time())

    def batch_mark(self, oldest: datetime | None) -> Mark | None:
        """The watermark to publish the current batch with, once its stories are observed."""
        if self._drains:
            # Drained after the batch's own stories: taken before them, its partitions would
            # never fall silent (seen >= drained_at), and the slowest would hold the mark for good.
            self._drains = False
            self.drained_at = math.nextafter(time.time(), math.inf)
        mark = self._mark()
        if mark is None or oldest is None or oldest >= mark.at:
            return mark
        return Mark(oldest, mark.partitions)

    def end_batch(self, mark: Mark | None) -> None:
        self.in_flight -= 1
        self.published = mark

    def heartbeat_mark(self) -> Mark | None:
        return self.published if self.in_flight else self._mark()

    def _mark(self) -> Mark | None:
        # Known only when no assigned partition holds it back, so it covers them all.
        value = self._value()
        if value is None:
            return None
        covered = self.assigned if self.assigned is not None else frozenset(self.partitions.inputs())
        return Mark(value, covered)

    def _value(self) -> datetime | None:
        if self._unread:
            return None
        # Never drained yet: no partition may be skipped (0.0 is before every input).
        return self.partitions.value(time.time(), self.drained_at or 0.0, self.behind)


def _not_ahead(published: datetime) -> datetime:
    """A publish time as a mark, at most the present: one story dated ahead (a feed's clock, a
    replay file's typo of 2099) would close every open window early and make each story after
    it late, until real time caught up with it. Its own window closes when time gets there."""
    return min(published, datetime.now(UTC))


class PartitionMarks:
    """The aggregate stage's watermark: per news.raw partition the greatest mark given to it,
    and their minimum over all `partitions` (None while any was never covered)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._marks: dict[int, datetime] = {}

    def observe(self, mark: Mark) -> None:
        for partition in mark.partitions:
            seen = self._marks.get(partition)
            self._marks[partition] = max(seen, mark.at) if seen else mark.at

    def value(self) -> datetime | None:
        if len(self._marks.keys() & range(self.partitions)) < self.partitions:
            return None
        return min(self._marks[p] for p in range(self.partitions))


def headers_for(mark: Mark | None) -> dict[str, bytes]:
    if mark is None:
        return {}
    partitions = ",".join(map(str, sorted(mark.partitions)))
    return {WM_HEADER: mark.at.isoformat().encode(), PARTITIONS_HEADER: partitions.encode()}


def mark_from(headers: Mapping[str, bytes] | None) -> Mark | None:
    """The watermark a record's headers carry, if any."""
    if not headers or WM_HEADER not in headers or PARTITIONS_HEADER not in headers:
        return None
    partitions = frozenset(int(p) for p in headers[PARTITIONS_HEADER].decode().split(",") if p)
    return Mark(datetime.fromisoformat(headers[WM_HEADER].decode()), partitions)


def entity_key(kind: str, entity: str) -> str:
    """The by-entity topic's key (and the windows topic's): one entity."""
    return f"{kind}:{entity}"
