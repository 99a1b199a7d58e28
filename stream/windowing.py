"""Agent `aggregate`: event-time windows per entity in changelogged tables.

The score agent sends every scored story once per entity (topic, tickers,
source) to the internal by-entity topic, keyed by entity, so one worker owns
all of an entity's windows. `aggregate` folds each story into every window
containing its publish time (alerts.aggregate, the same code the backtest
runs) and closes a window when the partition's low watermark (the least
progress of all live upstream workers, stream/watermark.py) passes its end
plus `close_grace_s`; heartbeats carry the watermark while no stories flow,
so the last windows of a replay close too. A closed window still takes late
items until the watermark passes its end plus `allowed_lateness_s`, and is
re-emitted with `revision + 1`; later items are dropped (logged and counted).

Tables are written only while an event of the same partition is processed
(Faust writes each change to the changelog partition of the current event);
heartbeats are such events. Watermarks are per process, in memory: after a
restart they rebuild from the next records (windows close later, never early).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import faust
from faust.types import EventT, StreamT
from pydantic import BaseModel, ConfigDict

from alerts.aggregate import WindowAccumulator, add_item, close_window, open_window
from alerts.baseline import Baseline, BaselineParams, update_baseline
from alerts.windows import WindowSpec, window_specs, window_starts
from finpulse.schema import ScoredItem, WindowAggregate
from finpulse.settings import Settings
from stream.deadletter import dead_letter
from stream.topics import PipelineTopics
from stream.watermark import TICK_KEY, LowWatermark, entity_key, mark_from

logger = logging.getLogger(__name__)


class WindowSlot(BaseModel):
    """Table state of one entity's window: sums, and what was emitted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: int
    acc: WindowAccumulator
    emitted_revision: int | None = None  # None: still open
    baseline: Baseline | None = None  # the baseline it was closed against


class PartitionState:
    """In memory, per by-entity partition: the upstream workers' watermarks, next due close."""

    def __init__(self, idle_s: float) -> None:
        # Upstream workers: a silent one (stopped or crashed) stops counting after idle_s.
        self.watermark = LowWatermark(idle_s)
        self.next_due: datetime | None = datetime.min.replace(tzinfo=UTC)  # unknown: scan once


def _table(app: faust.App, name: str, partitions: int) -> faust.Table:
    return app.Table(
        name,
        key_type=str,
        value_type=bytes,
        partitions=partitions,
    )


def register_windowing(app: faust.App, topics: PipelineTopics, settings: Settings) -> None:
    partitions = settings.kafka.topics.partitions
    windows = Windows(
        slots=_table(app, "window-slots", partitions),
        baselines=_table(app, "baselines", partitions),
        topics=topics,
        settings=settings,
    )
    dead = topics.dead(app, topics.names.scored)

    @app.agent(topics.by_entity, name="aggregate")
    async def aggregate(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                await windows.on_event(event)
            except Exception as exc:
                logger.exception("aggregate failed partition=%s", event.message.partition)
                await dead_letter(dead, event, exc, stage="aggregate")


class Windows:
    """The aggregate agent's logic over its two tables."""

    def __init__(
        self, *, slots: faust.Table, baselines: faust.Table, topics: PipelineTopics, settings: Settings
    ) -> None:
        self.slots, self.baselines = slots, baselines
        self.topics = topics
        self.specs = window_specs(settings.alerts)
        self.params = BaselineParams.from_settings(settings.alerts)
        self.top_n = settings.alerts.top_headlines
        self.lateness = timedelta(seconds=settings.stream.allowed_lateness_s)
        self.grace = timedelta(seconds=settings.stream.close_grace_s)
        self.idle_close_s = settings.stream.idle_close_s
        self.partitions: dict[int, PartitionState] = {}

    async def on_event(self, event: EventT) -> None:
        partition = event.message.partition
        state = self.partitions.setdefault(partition, PartitionState(self.idle_close_s))
        upstream = mark_from(event.headers)
        if upstream is not None:
            state.watermark.observe(upstream[0], upstream[1], time.time())
        if event.key != TICK_KEY:
            scored = ScoredItem.from_bytes(event.value)
            kind, _, entity = event.key.decode().partition(":")
            await self._add(partition, state, kind, entity, scored)
        await self._close_due(partition, state)

    async def _add(
        self, partition: int, state: PartitionState, kind: str, entity: str, scored: ScoredItem
    ) -> None:
        """Fold the story into every window containing its publish time."""
        watermark = state.watermark.value(time.time())
        for spec in self.specs.values():
            for start in window_starts(spec, scored.item.published_at):
                end = start + spec.size
                if watermark is not None and end + self.lateness <= watermark:
                    logger.info("late item dropped story=%s window=%s", scored.story_id, start)
                    continue
                slot = await self._add_to_window(partition, kind, entity, spec, start, scored)
                due = self._due(end, closed=slot.emitted_revision is not None)
                state.next_due = min(state.next_due, due) if state.next_due else due

    async def _add_to_window(
        self, partition: int, kind: str, entity: str, spec: WindowSpec, start: datetime, scored: ScoredItem
    ) -> WindowSlot:
        key = f"{entity_key(kind, entity)}|{spec.kind}|{start.isoformat()}"
        raw = self.slots.get(key)
        slot = (
            WindowSlot.model_validate_json(raw)
            if raw
            else WindowSlot(partition=partition, acc=open_window(kind, entity, spec, start))  # type: ignore[arg-type]
        )
        acc = add_item(slot.acc, scored, self.top_n)
        if acc is slot.acc:
            return slot  # already counted: a redelivery
        slot = slot.model_copy(update={"acc": acc})
        if slot.emitted_revision is not None:  # a late item for a closed window
            slot = slot.model_copy(update={"emitted_revision": slot.emitted_revision + 1})
            await self._emit(slot)
        self.slots[key] = slot.model_dump_json().encode()
        return slot

    async def _close_due(self, partition: int, state: PartitionState) -> None:
        """Close open windows the watermark has passed; forget closed ones past the lateness."""
        watermark = state.watermark.value(time.time())
        if watermark is None or state.next_due is None or state.next_due > watermark - self.grace:
            return
        close_before, expire_before = watermark - self.grace, watermark - self.lateness
        due: list[tuple[str, WindowSlot]] = []
        next_due: datetime | None = None
        for key, raw in list(self.slots.items()):
            slot = WindowSlot.model_validate_json(raw)
            if slot.partition != partition:
                continue
            end, closed = slot.acc.window_end, slot.emitted_revision is not None
            if not closed and end <= close_before:
                due.append((key, slot))
                closed = True
            elif closed and end <= expire_before:
                del self.slots[key]
                continue
            pending = self._due(end, closed=closed)
            next_due = min(next_due, pending) if next_due else pending
        for key, slot in sorted(due, key=lambda ks: (ks[1].acc.window_end, ks[0])):
            await self._close(key, slot)
        state.next_due = next_due

    def _due(self, end: datetime, *, closed: bool) -> datetime:
        """When a window next needs attention: its close, or once closed, its expiry."""
        return end + self.lateness if closed else end + self.grace

    async def _close(self, key: str, slot: WindowSlot) -> None:
        acc = slot.acc
        bkey = f"{entity_key(acc.entity_kind, acc.entity)}|{acc.window_kind}"
        raw = self.baselines.get(bkey)
        baseline = Baseline.model_validate_json(raw) if raw else None
        slot = slot.model_copy(update={"emitted_revision": 0, "baseline": baseline})
        aggregate = await self._emit(slot)
        updated = update_baseline(baseline, aggregate, self.params, self.specs[acc.window_kind])
        self.baselines[bkey] = updated.model_dump_json().encode()
        self.slots[key] = slot.model_dump_json().encode()

    async def _emit(self, slot: WindowSlot) -> WindowAggregate:
        aggregate = close_window(slot.acc, slot.baseline, self.params, revision=slot.emitted_revision or 0)
        key = entity_key(aggregate.entity_kind, aggregate.entity).encode()
        await self.topics.windows.send(key=key, value=aggregate.to_bytes())
        return aggregate
