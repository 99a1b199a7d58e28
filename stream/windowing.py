"""Agents `route` and `aggregate`: event-time windows per entity in changelogged tables.

`route` re-keys each scored story by entity (topic, tickers, source) so one
worker owns all of an entity's windows. `aggregate` folds each story into
every window containing its publish time (alerts.aggregate, the same code the
backtest runs), and closes windows when the partition's event-time watermark
passes their end, or, when the partition has been idle for `idle_close_s`, by
wall-clock time (so the last windows of a replay close too). A closed window
still takes late items until the watermark passes end + `allowed_lateness_s`,
and is re-emitted with `revision + 1`.

Tables are written only while an event of the same partition is processed
(Faust writes each change to the changelog partition of the current event), so
idle closing is driven by tick records the leader sends to every partition.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import faust
from faust.types import EventT, StreamT
from pydantic import BaseModel, ConfigDict

from alerts.aggregate import WindowAccumulator, add_item, close_window, entities_of, open_window
from alerts.baseline import Baseline, BaselineParams, update_baseline
from alerts.windows import WindowSpec, window_specs, window_starts
from finpulse.errors import InvalidRecord
from finpulse.schema import ScoredItem, WindowAggregate
from finpulse.settings import Settings
from stream.deadletter import dead_letter
from stream.topics import PipelineTopics

logger = logging.getLogger(__name__)

TICK_KEY = b"\x00tick"


class WindowSlot(BaseModel):
    """Table state of one entity's window: sums, and what was emitted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    partition: int
    acc: WindowAccumulator
    emitted_revision: int | None = None  # None: still open
    baseline: Baseline | None = None  # the baseline it was closed against


class PartitionMark(BaseModel):
    """Per partition: event-time watermark and when the last story arrived."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    watermark: datetime | None = None
    last_item_wall: float = 0.0
    next_due: datetime | None = None  # earliest open-window end or closed-window expiry


def entity_key(kind: str, entity: str) -> str:
    return f"{kind}:{entity}"


def _table(app: faust.App, name: str, partitions: int) -> faust.Table:
    return app.Table(
        name,
        key_type=str,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )


def register_windowing(app: faust.App, topics: PipelineTopics, settings: Settings) -> None:
    partitions = settings.kafka.topics.partitions
    windows = Windows(
        slots=_table(app, "window-slots", partitions),
        baselines=_table(app, "baselines", partitions),
        marks=_table(app, "partition-marks", partitions),
        topics=topics,
        settings=settings,
    )
    dead = topics.dead(app, topics.names.scored)

    @app.agent(topics.scored, name="route")
    async def route(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                scored = ScoredItem.from_bytes(event.value)
            except InvalidRecord as exc:
                await dead_letter(dead, event, exc, stage="route")
                continue
            for kind, entity in entities_of(scored):
                await topics.by_entity.send(key=entity_key(kind, entity).encode(), value=event.value)

    @app.agent(topics.by_entity, name="aggregate")
    async def aggregate(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                await windows.on_event(event)
            except Exception as exc:
                logger.exception("aggregate failed partition=%s", event.message.partition)
                await dead_letter(dead, event, exc, stage="aggregate")

    @app.timer(settings.stream.tick_interval_s, on_leader=True)
    async def tick() -> None:
        payload = json.dumps({"wall": time.time()}).encode()
        for partition in range(partitions):
            await topics.by_entity.send(key=TICK_KEY, value=payload, partition=partition)


class Windows:
    """The aggregate agent's logic over its three tables."""

    def __init__(
        self,
        *,
        slots: faust.Table,
        baselines: faust.Table,
        marks: faust.Table,
        topics: PipelineTopics,
        settings: Settings,
    ) -> None:
        self.slots, self.baselines, self.marks = slots, baselines, marks
        self.topics = topics
        self.specs = window_specs(settings.alerts)
        self.params = BaselineParams.from_settings(settings.alerts)
        self.top_n = settings.alerts.top_headlines
        self.lateness = timedelta(seconds=settings.stream.allowed_lateness_s)
        self.idle_close_s = settings.stream.idle_close_s
        self.late_dropped = 0

    async def on_event(self, event: EventT) -> None:
        partition = event.message.partition
        mark = self._mark(partition)
        if event.key == TICK_KEY:
            wall = float(json.loads(event.value)["wall"])
            if wall - mark.last_item_wall >= self.idle_close_s:
                cutoff = datetime.fromtimestamp(wall - self.idle_close_s, UTC)
                await self._close_due(partition, mark, close_before=cutoff)
            return
        scored = ScoredItem.from_bytes(event.value)
        kind, _, entity = event.key.decode().partition(":")
        next_due = await self._add(partition, mark, kind, entity, scored)
        published = scored.item.published_at
        watermark = max(mark.watermark, published) if mark.watermark else published
        mark = mark.model_copy(
            update={"watermark": watermark, "last_item_wall": time.time(), "next_due": next_due}
        )
        self.marks[f"p{partition}"] = mark.model_dump_json().encode()
        await self._close_due(partition, mark, close_before=watermark)

    def _mark(self, partition: int) -> PartitionMark:
        raw = self.marks.get(f"p{partition}")
        return PartitionMark.model_validate_json(raw) if raw else PartitionMark()

    async def _add(
        self, partition: int, mark: PartitionMark, kind: str, entity: str, scored: ScoredItem
    ) -> datetime | None:
        """Fold the story into its windows; returns the partition's next due time."""
        next_due = mark.next_due
        for spec in self.specs.values():
            for start in window_starts(spec, scored.item.published_at):
                end = start + spec.size
                if mark.watermark is not None and end + self.lateness <= mark.watermark:
                    self.late_dropped += 1
                    logger.info("late item dropped story=%s window=%s", scored.story_id, start)
                    continue
                slot = await self._add_to_window(partition, kind, entity, spec, start, scored)
                due = end if slot.emitted_revision is None else end + self.lateness
                next_due = min(next_due, due) if next_due else due
        return next_due

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

    async def _close_due(self, partition: int, mark: PartitionMark, close_before: datetime) -> None:
        """Close open windows ending by `close_before`; forget closed ones past lateness."""
        close_before = max(close_before, mark.watermark or close_before)
        if mark.next_due is None or mark.next_due > close_before:
            return
        expire_before = (mark.watermark or close_before) - self.lateness
        due: list[tuple[str, WindowSlot]] = []
        next_due: datetime | None = None
        for key, raw in list(self.slots.items()):
            slot = WindowSlot.model_validate_json(raw)
            if slot.partition != partition:
                continue
            end = slot.acc.window_end
            if slot.emitted_revision is None and end <= close_before:
                due.append((key, slot))
                pending = end + self.lateness
            elif slot.emitted_revision is not None and end <= expire_before:
                del self.slots[key]
                continue
            else:
                pending = end if slot.emitted_revision is None else end + self.lateness
            next_due = min(next_due, pending) if next_due else pending
        for key, slot in sorted(due, key=lambda ks: (ks[1].acc.window_end, ks[0])):
            await self._close(key, slot)
        self.marks[f"p{partition}"] = (
            mark.model_copy(update={"next_due": next_due}).model_dump_json().encode()
        )

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
