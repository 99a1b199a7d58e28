"""Agent `aggregate`: event-time windows per entity in changelogged tables.

The score agent sends each batch's scored stories to the internal by-entity
topic as one record per entity (topic, tickers, source) holding that entity's
stories, keyed by entity, so one worker owns all of an entity's windows and
writes each window once per record. `aggregate` folds the stories into every
window containing their publish times (alerts.aggregate, the same code the
backtest runs) and closes a window when the partition's low watermark (the
least progress over news.raw's partitions, whichever workers read them,
stream/watermark.py) passes its end plus `close_grace_s`; heartbeats carry the
watermark while no stories flow, so the last windows of a replay close too. A
closed window still takes late items until the watermark passes its end plus
`allowed_lateness_s`, and is re-emitted with `revision + 1`; later items are
dropped (logged, unless the window counted the story already: a story scored
again after a takeover or restart is no loss). An expired window's slot stays a while longer
(EXPIRED_KEEP_S) so that records replayed after a crash are recognised by
their offsets instead of opening it afresh.

Three tables, all keyed within the entity's partition:
  window-sums  <entity>|<window kind>|<start> -> WindowSlot: sums and evidence (constant
               size), and the offset of the last by-entity record folded in;
  counted-records  <entity>|@<record offset> -> CountedRecord: the stories that record
               counted, and in which windows (one write per record, not per story: a
               changelog record each was the aggregate stage's largest cost); and
               @swept|<partition> -> the end (epoch s) up to which windows may have had
               their records forgotten by the sweep: such windows take no new stories,
               even when the watermark falls back (it restarts with the worker);
  entity-baselines  <entity>|<window kind> -> Baseline.
A story counts in a window unless that window already holds it: the record
was folded in (slot offset >= record offset), or the story was counted there
by an earlier record the slot has folded in. Comparing offsets, rather than
trusting either table alone, keeps the count exact after a crash whatever
subset of the two tables' changelog writes survived. Which record first
counted a story in a window is looked up in an in-memory index of the
partition's counted records (CountedIndex), built from the table on the
partition's first event and dropped on every rebalance (recovery may have
changed the table). A window's emission and its slot's write are separate
sends; after a rebalance each partition's first event re-emits the windows
that events from where the group resumed on had emitted, in case a crash kept
the slot and lost the message (Windows._resend).

Tables are written only while an event of the same partition is processed
(Faust writes each change to the changelog partition of the current event);
heartbeats are such events. Watermarks are per process, in memory: after a
restart they rebuild from the next records (windows close later, never early).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import faust
from faust.types import TP, EventT, StreamT, TopicT
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from alerts.aggregate import WindowAccumulator, add_items, close_window, open_window, story_key
from alerts.baseline import Baseline, BaselineParams, update_baseline
from alerts.windows import WindowSpec, window_specs, window_starts
from finpulse.errors import InvalidRecord
from finpulse.schema import ENTITY_KINDS, ScoredItem, WindowAggregate, WindowKind, describe_validation_error
from finpulse.settings import Settings
from stream.deadletter import dead_letter, dead_letter_record
from stream.metrics import LATE_STORY_WINDOWS, WATERMARKS
from stream.skipped import SkippedRecords
from stream.topics import BASELINES, COUNTED, WINDOW_SUMS, PipelineTopics, by_entity_topic
from stream.watermark import TICK_KEY, PartitionMarks, entity_key, mark_from

logger = logging.getLogger(__name__)

_STORIES = TypeAdapter(list[ScoredItem])
# How long an expired window's slot outlives its allowed lateness (wall seconds): a
# worker restarted within this time replays its uncommitted records without recounting.
EXPIRED_KEEP_S = 900.0


def entity_stories(value: bytes | None) -> list[ScoredItem]:
    """The stories of one by-entity record (a JSON array of ScoredItems)."""
    try:
        return _STORIES.validate_json(value or b"")
    except ValidationError as exc:
        raise InvalidRecord("ScoredItem", describe_validation_error(exc)) from exc


class WindowSlot(BaseModel):
    """Table state of one entity's window: sums, and what was emitted."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # a newer worker's fields (rolling upgrade)

    partition: int
    acc: WindowAccumulator
    # Offset of the last by-entity record folded in (-1: none yet).
    offset: int = -1
    emitted_revision: int | None = None  # None: still open
    # Offset of the by-entity event whose processing emitted the latest revision: if
    # a crash replays that event, the emission may have been lost (see Windows._resend).
    emitted_offset: int | None = None
    baseline: Baseline | None = None  # the baseline it was closed against
    # Wall time it passed the allowed lateness; kept EXPIRED_KEEP_S longer so records
    # replayed after a crash are recognised (by offset) rather than counted afresh.
    expired_at: float | None = None


@dataclass
class CountedRecord:
    """The stories one by-entity record counted, each with the windows it counted in.
    Table value (JSON): {"partition", "until": latest window end (epoch s), "stories"}."""

    partition: int
    until: int = 0  # the entry expires with its latest window
    stories: dict[str, list[str]] = field(default_factory=dict)

    def count_in(self, story: str, window: str, end: datetime) -> None:
        self.stories.setdefault(story, []).append(window)
        self.until = max(self.until, int(end.timestamp()))

    def to_bytes(self) -> bytes:
        value = {"partition": self.partition, "until": self.until, "stories": self.stories}
        return json.dumps(value).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CountedRecord:
        data = json.loads(raw)
        return cls(data["partition"], data["until"], data["stories"])


def _record_key(entity: str, offset: int) -> bytes:
    """The counted-records key: `<entity>|@<record offset>`."""
    return f"{entity}|@{offset}".encode()


def _swept_key(partition: int) -> bytes:
    """The counted-records key of a partition's sweep mark (entity keys never start with '@')."""
    return b"@swept|%d" % partition


def _records_by_partition(
    table: Mapping[bytes, bytes], owned: Collection[int] | None
) -> dict[int, list[tuple[bytes, CountedRecord]]]:
    """The counted records of the `owned` partitions (None: all), decoded, with their keys, by
    partition: one pass over the table (one pass per partition decoded it all once for each, a
    stall of seconds per rebalance at scale)."""
    out: dict[int, list[tuple[bytes, CountedRecord]]] = defaultdict(list)
    for key, raw in table.items():
        if key[:1] != b"@":
            record = CountedRecord.from_bytes(raw)
            if owned is None or record.partition in owned:
                out[record.partition].append((key, record))
    return out


_NONE_COUNTED: Mapping[str, int] = MappingProxyType({})


class CountedIndex:
    """One partition's counted records, decoded once, and inverted: (entity, story) ->
    window -> the least offset of a record that counted the story there. Windows ending by
    `swept` (epoch s) may have lost their entries to a sweep."""

    def __init__(self, records: Iterable[tuple[bytes, CountedRecord]], swept: int = 0) -> None:
        self.swept = swept
        self.records: dict[bytes, CountedRecord] = {}
        self.first: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for key, record in records:
            self.add(key, record)

    def add(self, key: bytes, record: CountedRecord) -> None:
        self.records[key] = record
        entity, _, at = key.decode().rpartition("|@")
        offset = int(at)
        for story, windows in record.stories.items():
            first = self.first[(entity, story)]
            for window in windows:
                first[window] = min(first.get(window, offset), offset)

    def windows_of(self, entity: str, story: str) -> Mapping[str, int]:
        """Window id -> least offset of a record that counted the story there (empty: none)."""
        return self.first.get((entity, story), _NONE_COUNTED)

    def expire(self, before: int) -> list[bytes]:
        """Drop the records whose windows all ended by `before` (epoch s); returns their keys."""
        expired = [key for key, record in self.records.items() if record.until <= before]
        if expired:  # the inverted index is rebuilt from the rest (no decoding: kept decoded)
            kept = [(key, record) for key, record in self.records.items() if record.until > before]
            self.records.clear()
            self.first.clear()
            for key, record in kept:
                self.add(key, record)
        return expired


@dataclass
class SlotKeys:
    """One partition's window-sums keys, open (not yet expired) and expired, so closing and
    sweeping look at the slots they need rather than scanning every partition's table."""

    open: set[bytes] = field(default_factory=set)
    expired: set[bytes] = field(default_factory=set)

    def note(self, key: bytes, slot: WindowSlot) -> None:
        if slot.expired_at is None:
            self.open.add(key)
        else:
            self.open.discard(key)
            self.expired.add(key)


@functools.lru_cache(maxsize=4096)
def _window_id(kind: str, start: datetime) -> str:
    # Cached: every story asks for the ids of the same few windows.
    return f"{kind}|{start.isoformat()}"


def _baseline_key(entity: str, window_kind: str) -> bytes:
    """The baselines key: `<entity>|<window kind>`."""
    return f"{entity}|{window_kind}".encode()


def _slot_key(entity: str, window: str) -> bytes:
    """The window-sums key: `<entity>|<window kind>|<start>`."""
    return f"{entity}|{window}".encode()


class PartitionState:
    """In memory, per by-entity partition: the news.raw partitions' watermarks, next due close."""

    def __init__(self, partitions: int) -> None:
        self.watermark = PartitionMarks(partitions)
        self.next_due: datetime | None = datetime.min.replace(tzinfo=UTC)  # unknown: scan once
        self.next_sweep: datetime | None = None  # when to forget expired counted stories


def _table(app: faust.App, name: str, partitions: int) -> faust.Table:
    return app.Table(
        name,
        key_type=bytes,  # raw: no per-write key encoding
        value_type=bytes,
        partitions=partitions,
    )


def register_windowing(app: faust.App, topics: PipelineTopics, settings: Settings) -> None:
    partitions = settings.kafka.topics.partitions
    dead = topics.dead(app, topics.names.scored)
    windows = Windows(
        slots=_table(app, WINDOW_SUMS, partitions),
        counted=_table(app, COUNTED, partitions),
        baselines=_table(app, BASELINES, partitions),
        topics=topics,
        settings=settings,
        skipped=SkippedRecords(app, settings.kafka, by_entity_topic(app.conf.id), "by-entity"),
        dead=dead,
    )

    WATERMARKS.watch(windows)

    by_entity = by_entity_topic(app.conf.id)

    @app.on_partitions_assigned.connect
    async def resume(app: faust.App, assigned: set[TP], **kwargs: object) -> None:
        windows.on_assigned({tp.partition for tp in assigned if tp.topic == by_entity})

    @app.agent(topics.by_entity, name="aggregate")
    async def aggregate(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                await windows.on_event(event)
            except Exception as exc:
                logger.exception("aggregate failed partition=%s", event.message.partition)
                await dead_letter(dead, event, exc, stage="aggregate")


class Windows:
    """The aggregate agent's logic over its tables."""

    def __init__(
        self,
        *,
        slots: faust.Table,
        counted: faust.Table,
        baselines: faust.Table,
        topics: PipelineTopics,
        settings: Settings,
        skipped: SkippedRecords,
        dead: TopicT,
    ) -> None:
        self.slots, self.counted, self.baselines = slots, counted, baselines
        self.dead = dead  # for records read back that fail (the agent letters its own events)
        self.topics = topics
        self.specs = window_specs(settings.alerts)
        self.params = BaselineParams.from_settings(settings.alerts)
        self.top_n = settings.alerts.top_headlines
        self.lateness = timedelta(seconds=settings.stream.allowed_lateness_s)
        self.grace = timedelta(seconds=settings.stream.close_grace_s)
        self.raw_partitions = settings.kafka.topics.partitions  # news.raw's, the watermark's inputs
        # Counted stories are forgotten in sweeps this far apart in event time.
        self.sweep_every = max(self.lateness, self.specs["tumbling"].size)
        self.partitions: dict[int, PartitionState] = {}
        # Decoded slots, reused while the table holds the very same bytes.
        self._decoded: dict[bytes, tuple[bytes, WindowSlot]] = {}
        self._indexes: dict[int, CountedIndex] = {}  # per partition, built on first use
        # The counted records of partitions not indexed yet since the last rebalance.
        self._unindexed: dict[int, list[tuple[bytes, CountedRecord]]] | None = None
        self._owned: frozenset[int] | None = None  # the by-entity partitions it owns (None: unknown)
        self._keys: dict[int, SlotKeys] | None = None  # per partition, built on first use
        self._resumed: set[int] = set()  # partitions with an event since the last assignment
        self.skipped = skipped

    async def on_event(self, event: EventT) -> None:
        partition, offset = event.message.partition, event.message.offset
        state = self.partitions.setdefault(partition, PartitionState(self.raw_partitions))
        # Records the consumer skipped (stream/skipped.py), in order, before this one.
        missed = await self.skipped.before_or_none(partition, offset)
        if missed is None:  # records are folded in order: this one waits with the gap
            return
        if partition not in self._resumed:
            self._resumed.add(partition)
            # The group resumed where the records read back start (after an assignment Faust
            # may skip the first ones): events from there on may have lost their emissions.
            await self._resend(partition, missed[0].offset if missed else offset)
        for record in missed:
            try:
                await self._process(partition, record.offset, state, record.key, record.value, record.headers)
            except Exception as exc:  # this record alone: its dead letter, and on with the others
                logger.exception(
                    "aggregate failed partition=%s offset=%s (read back)", partition, record.offset
                )
                await dead_letter_record(
                    self.dead, self.skipped.topic, partition, record.offset, record.key, record.value, exc,
                    stage="aggregate",
                )  # fmt: skip
            self.skipped.ack(partition, record)
        await self._process(partition, offset, state, event.key, event.value, event.headers)

    async def _process(
        self, partition: int, offset: int, state: PartitionState, key: object, value: object,
        headers: Mapping[str, bytes] | None,
    ) -> None:  # fmt: skip
        upstream = mark_from(headers)
        if upstream is not None:
            state.watermark.observe(upstream)
        if key != TICK_KEY:
            if not isinstance(key, bytes):
                raise InvalidRecord("by-entity record", "no entity key")
            kind, _, entity = key.decode().partition(":")
            if kind not in ENTITY_KINDS or not entity:  # a window of it could never close
                raise InvalidRecord("by-entity record", f"no entity in key {key!r}")
            stories = entity_stories(value if isinstance(value, bytes) else None)
            await self._add(partition, offset, state, kind, entity, stories)
        await self._close_due(partition, state, offset)
        self._sweep(partition, state)

    async def _add(
        self,
        partition: int,
        offset: int,
        state: PartitionState,
        kind: str,
        entity: str,
        stories: list[ScoredItem],
    ) -> None:
        """Fold the record's stories into every window containing their publish times."""
        watermark = state.watermark.value()
        prefix = entity_key(kind, entity)
        index = self._index(partition)
        rkey = _record_key(prefix, offset)
        raw = self.counted.get(rkey)  # present when this record is replayed after a crash
        record = CountedRecord.from_bytes(raw) if raw else CountedRecord(partition)
        # What this record counted when it was processed before the crash: trusted only where
        # the window's slot folded the record in (the slot's write may be lost, the entry not).
        recorded = {(story, w) for story, windows in record.stories.items() for w in windows}
        known: set[tuple[str, str]] = set()  # counted earlier in this pass
        fresh: dict[tuple[WindowKind, datetime], list[ScoredItem]] = defaultdict(list)
        late = 0
        # Per window of this record: its id, end and the offset its slot has folded in,
        # or None when the story-windows are too late. Looked up once, not per story.
        seen: dict[tuple[WindowKind, datetime], tuple[str, datetime, int] | None] = {}
        # The windows of a publish second, computed once per record (a batch's stories
        # share a few seconds).
        bounds: dict[int, list[tuple[WindowKind, datetime]]] = {}
        for scored in stories:
            key = story_key(scored)
            at = scored.item.published_at
            windows = bounds.get(second := int(at.timestamp()))
            if windows is None:
                windows = bounds[second] = [
                    (spec.kind, start) for spec in self.specs.values() for start in window_starts(spec, at)
                ]
            firsts = index.windows_of(prefix, key)  # empty unless an earlier record counted it
            for bound in windows:
                if bound not in seen:
                    seen[bound] = self._window_state(
                        prefix, self.specs[bound[0]], bound[1], offset, watermark, index.swept
                    )
                state_of = seen[bound]
                if state_of is None:
                    # A story counted there already (re-sent after a takeover or restart) is not lost.
                    late += _window_id(*bound) not in firsts
                    continue
                window, end, applied = state_of
                first = firsts.get(window)
                if applied >= offset:  # a replayed record, already in the window
                    if (first is None or first > offset) and not (
                        (key, window) in recorded or (key, window) in known
                    ):
                        known.add((key, window))  # its counted entry was lost in a crash
                        record.count_in(key, window, end)
                    continue
                if (first is not None and first <= applied) or (key, window) in known:
                    continue  # counted by an earlier record, or earlier in this one
                known.add((key, window))
                if (key, window) not in recorded:
                    record.count_in(key, window, end)
                fresh[bound].append(scored)
        for (window_kind, start), items in fresh.items():
            spec = self.specs[window_kind]
            slot = await self._add_to_window(partition, offset, kind, entity, spec, start, items)
            due = self._due(slot.acc.window_end, closed=slot.emitted_revision is not None)
            state.next_due = min(state.next_due, due) if state.next_due else due
        if record.stories:
            self.counted[rkey] = record.to_bytes()
            index.add(rkey, record)
        if late:
            LATE_STORY_WINDOWS.inc(late)
            # Also replays after a restart of windows a sweep forgot: counted then, not again now.
            logger.info(
                "stories not counted in windows past their lateness entity=%s story-windows=%d "
                "(late news, or a record replayed after a restart into windows already closed)",
                prefix, late,
            )  # fmt: skip

    def _window_state(
        self,
        prefix: str,
        spec: WindowSpec,
        start: datetime,
        offset: int,
        watermark: datetime | None,
        swept: int,
    ) -> tuple[str, datetime, int] | None:
        """A window's id, end and folded-in offset (-1: new); None if too late for new stories
        (a record replayed into it is still recognised: its offset is folded in). A window the
        sweep may have forgotten stories of is too late even where the watermark fell back
        (after a restart, as it is rebuilt from the records replayed): a story re-sent then could
        not be told from a new one. So is a new window of an entity whose later window closed
        already: its baseline is past it, the detector would never test it (nor learn from it)
        and a backtest of the stored windows would."""
        window, end = _window_id(spec.kind, start), start + spec.size
        held = self._slot(_slot_key(prefix, window))
        applied = held.offset if held else -1
        if applied >= offset:
            return window, end, applied
        expired = held is not None and held.expired_at is not None
        late = watermark is not None and self._due(end, closed=True) <= watermark
        passed = held is None and self._baseline_past(prefix, spec.kind, start)
        return None if expired or late or passed or end.timestamp() <= swept else (window, end, applied)

    def _baseline_past(self, prefix: str, kind: WindowKind, start: datetime) -> bool:
        """Whether the entity's baseline of this window kind took in a window starting at `start`
        or later (`update_baseline` skips those)."""
        baseline = self._baseline(prefix, kind)
        return (
            baseline is not None
            and baseline.last_window_start is not None
            and baseline.last_window_start >= start
        )

    def _index(self, partition: int) -> CountedIndex:
        index = self._indexes.get(partition)
        if index is None:
            # At most where a sweep now would put it: one a story dated ahead once pushed on
            # made every story late for good (marks are capped at the present since).
            now_swept = int(time.time() - self.lateness.total_seconds())
            swept = min(int(self.counted.get(_swept_key(partition)) or 0), now_swept)
            if self._unindexed is None:  # decoded once per rebalance, for every partition it owns
                self._unindexed = _records_by_partition(self.counted, self._owned)
            records = self._unindexed.pop(partition, [])
            index = self._indexes[partition] = CountedIndex(records, swept)
        return index

    def watermarks(self) -> dict[int, datetime | None]:
        """Each by-entity partition's watermark (finpulse_stream_watermark_age_seconds)."""
        return {partition: state.watermark.value() for partition, state in self.partitions.items()}

    def on_assigned(self, owned: Collection[int] | None = None) -> None:
        """After a rebalance: drop the counted indexes and slot key sets (recovery may have
        changed the tables), and check each partition for lost emissions on its next event.
        `owned`: the by-entity partitions now this worker's (None: unknown, all kept); the others'
        watermarks are forgotten (reported on, their age grew for ever) and their records not
        decoded (the table holds standby copies too)."""
        self._indexes.clear()
        self._unindexed = None
        self._owned = None if owned is None else frozenset(owned)
        if self._owned is not None:
            self.partitions = {p: state for p, state in self.partitions.items() if p in self._owned}
        self._keys = None
        self._resumed.clear()
        self.skipped.reset()
        for state in self.partitions.values():  # another owner may have opened windows meanwhile
            state.next_due = datetime.min.replace(tzinfo=UTC)

    async def _resend(self, partition: int, start: int) -> None:
        """Emit again the revisions that events from offset `start` on emitted.

        A window's emission goes to the windows topic and its slot to the changelog as two
        separate sends; a crash between their deliveries can keep the slot (closed) and lose
        the message, and the replayed event then finds nothing left to emit. The consumer
        resumes at its committed offset `start`, and Faust flushes the producer before it
        commits, so only emissions of events from `start` on can be missing. Windows
        consumers take a repeated revision as a redelivery. The entity's baseline, a third send,
        may have lost the window too: it is folded in again (a baseline that has it is unchanged).
        """
        resent = 0
        keys = self._keys_of(partition)
        # In time order, as they closed: a baseline takes no window older than its last.
        slots = sorted(self._slots_of(keys.open | keys.expired), key=lambda ks: (ks[1].acc.window_end, ks[0]))
        for _, slot in slots:
            if slot.emitted_offset is not None and slot.emitted_offset >= start:
                self._learn(await self._emit(slot))
                resent += 1
        if resent:
            logger.info("windows re-emitted after a restart partition=%d from_offset=%d count=%d",
                        partition, start, resent)  # fmt: skip

    def _keys_of(self, partition: int) -> SlotKeys:
        if self._keys is None:  # one scan of the table for all partitions
            index: defaultdict[int, SlotKeys] = defaultdict(SlotKeys)
            for key in list(self.slots.keys()):
                slot = self._slot(key)
                if slot is not None:
                    index[slot.partition].note(key, slot)
            self._keys = index  # whole or not at all: a scan that raised is made again
        return self._keys[partition]

    def _slots_of(self, keys: Iterable[bytes]) -> Iterator[tuple[bytes, WindowSlot]]:
        """The slots of these keys; the keys are listed first, so the caller may write or
        delete slots as it goes."""
        for key in list(keys):
            slot = self._slot(key)
            if slot is not None:
                yield key, slot

    def _slot(self, key: bytes) -> WindowSlot | None:
        raw = self.slots.get(key)
        if raw is None:
            return None
        cached = self._decoded.get(key)
        if cached is not None and cached[0] is raw:
            return cached[1]
        slot = WindowSlot.model_validate_json(raw)
        self._decoded[key] = (raw, slot)
        return slot

    def _put(self, key: bytes, slot: WindowSlot) -> None:
        raw = slot.model_dump_json().encode()
        self.slots[key] = raw
        self._decoded[key] = (raw, slot)
        self._keys_of(slot.partition).note(key, slot)

    async def _add_to_window(
        self,
        partition: int,
        offset: int,
        kind: str,
        entity: str,
        spec: WindowSpec,
        start: datetime,
        stories: list[ScoredItem],
    ) -> WindowSlot:
        key = _slot_key(entity_key(kind, entity), _window_id(spec.kind, start))
        slot = self._slot(key) or WindowSlot(
            partition=partition,
            acc=open_window(kind, entity, spec, start),  # type: ignore[arg-type]
        )
        acc = add_items(slot.acc, stories, self.top_n)
        slot = slot.model_copy(update={"acc": acc, "offset": offset})
        if slot.emitted_revision is not None:  # late items for a closed window
            revision = slot.emitted_revision + 1
            slot = slot.model_copy(update={"emitted_revision": revision, "emitted_offset": offset})
            await self._emit(slot)
        self._put(key, slot)
        return slot

    async def _close_due(self, partition: int, state: PartitionState, offset: int) -> None:
        """Close open windows the watermark has passed; forget closed ones past the lateness."""
        watermark = state.watermark.value()
        if watermark is None or state.next_due is None or state.next_due > watermark:
            return
        due: list[tuple[bytes, WindowSlot]] = []
        next_due: datetime | None = None
        for key, slot in self._slots_of(self._keys_of(partition).open):
            end, closed = slot.acc.window_end, slot.emitted_revision is not None
            if self._due(end, closed=closed) <= watermark:
                if closed:  # past its allowed lateness
                    self._put(key, slot.model_copy(update={"expired_at": time.time()}))
                    continue
                due.append((key, slot))
                closed = True
            pending = self._due(end, closed=closed)
            next_due = min(next_due, pending) if next_due else pending
        for key, slot in sorted(due, key=lambda ks: (ks[1].acc.window_end, ks[0])):
            await self._close(key, slot, offset)
        state.next_due = next_due

    def _sweep(self, partition: int, state: PartitionState) -> None:
        """Once per `sweep_every` of event time: forget counted records whose windows all
        expired, and expired windows older than EXPIRED_KEEP_S."""
        watermark = state.watermark.value()
        if watermark is None:
            return
        if state.next_sweep is None:  # first sight of the partition: sweep after a period
            state.next_sweep = watermark + self.sweep_every
        if watermark < state.next_sweep:
            return
        index, before = self._index(partition), int((watermark - self.lateness).timestamp())
        if before > index.swept:  # written before the deletions, to the same changelog partition:
            index.swept = before  # whatever of them a crash keeps, it keeps this too
            self.counted[_swept_key(partition)] = b"%d" % before
        for key in index.expire(before):
            del self.counted[key]
        forget_before = time.time() - EXPIRED_KEEP_S
        keys = self._keys_of(partition)
        for key, slot in self._slots_of(keys.expired):
            if slot.expired_at and slot.expired_at < forget_before:
                del self.slots[key]
                keys.expired.discard(key)
        for key in [k for k in self._decoded if k not in self.slots]:
            del self._decoded[key]  # forgotten, or of partitions this worker no longer owns
        state.next_sweep = watermark + self.sweep_every

    def _due(self, end: datetime, *, closed: bool) -> datetime:
        """When a window next needs attention: its close, or once closed, its expiry."""
        return end + self.lateness if closed else end + self.grace

    async def _close(self, key: bytes, slot: WindowSlot, offset: int) -> None:
        acc = slot.acc
        baseline = self._baseline(entity_key(acc.entity_kind, acc.entity), acc.window_kind)
        slot = slot.model_copy(update={"emitted_revision": 0, "baseline": baseline, "emitted_offset": offset})
        self._learn(await self._emit(slot))
        self._put(key, slot)

    def _baseline(self, prefix: str, kind: str) -> Baseline | None:
        """The entity's baseline of this window kind (`prefix`: its entity_key)."""
        raw = self.baselines.get(_baseline_key(prefix, kind))
        return Baseline.model_validate_json(raw) if raw else None

    def _learn(self, aggregate: WindowAggregate) -> None:
        """Fold a closed window into its entity's baseline; one that has it is left as it is."""
        prefix = entity_key(aggregate.entity_kind, aggregate.entity)
        baseline = self._baseline(prefix, aggregate.window_kind)
        updated = update_baseline(baseline, aggregate, self.params, self.specs[aggregate.window_kind])
        if updated is not baseline:
            self.baselines[_baseline_key(prefix, aggregate.window_kind)] = updated.model_dump_json().encode()

    async def _emit(self, slot: WindowSlot) -> WindowAggregate:
        aggregate = close_window(slot.acc, slot.baseline, self.params, revision=slot.emitted_revision or 0)
        key = entity_key(aggregate.entity_kind, aggregate.entity).encode()
        await self.topics.windows.send(key=key, value=aggregate.to_bytes())
        return aggregate
