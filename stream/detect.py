"""Agent `detect`: closed windows -> alerts.detector -> alerts.events.

Windows arrive keyed by entity. A batch (`take_events`, `detect_batch_s`)
gathers the windows that closed together, so the detector's multiple-testing
family is every entity this worker closed at that instant. Detector states
live in a table keyed by the same entity key as the windows topic, written
through the partitioner (`use_partitioner`), so the state of an entity lands
in the changelog partition of its windows and may be written from a batch.
The subscriptions are the live set (alerts.live), read afresh for each batch.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence

import faust
from faust.types import EventT, StreamT

from alerts import stats
from alerts.detector import DetectorState, detect, escape_entity, parse_state_key
from alerts.subscriptions import Subscription
from finpulse.errors import InvalidRecord
from finpulse.schema import WindowAggregate, utcnow
from finpulse.settings import Settings
from stream.deadletter import dead_letter, dead_letter_record
from stream.metrics import ALERT_EVENTS
from stream.skipped import Record, SkippedRecords
from stream.topics import DETECTOR_STATES, PipelineTopics
from stream.watermark import entity_key

logger = logging.getLogger(__name__)

# Most windows one detector call takes; closes of one instant rarely exceed it.
MAX_DETECT_BATCH = 5_000


def register_detect(
    app: faust.App,
    topics: PipelineTopics,
    settings: Settings,
    subscriptions: Callable[[], Sequence[Subscription]],
) -> None:
    """The detect agent; `subscriptions()` gives the current set, asked once per batch."""
    stats.preload()  # now, while the classifier loads, not in the event loop at the first test
    states = app.Table(
        DETECTOR_STATES,
        key_type=bytes,
        value_type=bytes,
        partitions=settings.kafka.topics.partitions,
        use_partitioner=True,
    )
    dead = topics.dead(app, topics.names.windows)
    # A window the consumer skipped would be a missed alert (stream/skipped.py).
    skipped = SkippedRecords(app, settings.kafka, topics.names.windows, "window")

    @app.on_partitions_assigned.connect
    async def resume(app: faust.App, assigned: object, **kwargs: object) -> None:
        skipped.reset()

    @app.agent(topics.windows, name="detect")
    async def detect_agent(stream: StreamT[bytes]) -> None:
        # Acked once evaluated: take_events acks a batch even when its evaluation failed.
        async for events in stream.noack_take(MAX_DETECT_BATCH, within=settings.stream.detect_batch_s):
            windows, read_back = await _windows_of(events, skipped, dead)
            try:
                if windows:
                    await _evaluate(states, topics, windows, subscriptions())
            except Exception as exc:
                # Alerts not sent (past the producer's retries): acking would lose them; holding
                # the batch would stall the stage. Stop; the next worker evaluates it again.
                logger.critical("could not evaluate windows=%d: %r; stopping the worker (its offsets "
                                "are not committed)", len(windows), exc)  # fmt: skip
                await app.crash(exc)
                raise
            for event in events:
                await stream.ack(event)
            for partition, record in read_back:
                skipped.ack(partition, record)


async def _windows_of(
    events: Sequence[EventT], skipped: SkippedRecords, dead: faust.TopicT
) -> tuple[list[WindowAggregate], list[tuple[int, Record]]]:
    """The batch's windows in each partition's order, with those the consumer skipped read back
    before them (to ack once evaluated); one that cannot be read dead-lettered."""
    windows: list[WindowAggregate] = []
    read_back: list[tuple[int, Record]] = []
    for event in events:
        m = event.message
        missed = await skipped.before_or_none(m.partition, m.offset)
        if missed is None:  # windows are folded in order: this one waits with the gap
            continue
        for record in missed:
            read_back.append((m.partition, record))
            try:
                windows.append(WindowAggregate.from_bytes(record.value))
            except InvalidRecord as exc:
                await dead_letter_record(dead, m.topic, m.partition, record.offset, record.key,
                                         record.value, exc, stage="detect")  # fmt: skip
        try:
            windows.append(WindowAggregate.from_bytes(event.value))
        except InvalidRecord as exc:
            await dead_letter(dead, event, exc, stage="detect")
    return windows, read_back


def _readable(stored: dict[str, str]) -> dict[str, DetectorState]:
    """The detector states of one entity; one this version cannot read starts afresh (logged), as
    a window that could never be evaluated would stop the stage."""
    states = {}
    for key, value in stored.items():
        try:
            states[key] = DetectorState.model_validate_json(value)
        except ValueError as exc:
            logger.warning("detector state unreadable key=%s; starting it afresh: %s", key, exc)
    return states


def _escaped(kind: str, entity: str) -> bytes:
    """Where versions before 2026-12-07 wrote an entity's states when its name holds '|' (a
    state key's escaped middle; seven topics): read there until the entity's key holds them."""
    return entity_key(kind, escape_entity(entity)).encode()


async def _evaluate(
    states: faust.Table,
    topics: PipelineTopics,
    windows: list[WindowAggregate],
    subscriptions: Sequence[Subscription],
) -> None:
    current: dict[str, DetectorState] = {}
    stored: dict[bytes, dict[str, str]] = {}
    for kind, entity in {(w.entity_kind, w.entity) for w in windows}:
        key = entity_key(kind, entity).encode()
        stored[key] = json.loads(states.get(key) or states.get(_escaped(kind, entity)) or b"{}")
        current |= _readable(stored[key])
    result = detect(windows, subscriptions, current, utcnow())
    changed: dict[bytes, dict[str, str]] = defaultdict(dict)
    for state_key, state in result.states.items():
        _, kind, entity, _ = parse_state_key(state_key)
        changed[entity_key(kind, entity).encode()][state_key] = state.model_dump_json()
    # Alerts first, and delivered, then the states that record them: the two are separate
    # sends, and a crash that kept a firing state but lost its alert would never fire it
    # again (the replayed window is no newer than the state's). The other way round, a
    # crash repeats the alert under the same alert_id. Alerts are rare: the wait is too.
    sent = [await topics.alerts.send(key=a.alert_id.encode(), value=a.to_bytes()) for a in result.events]
    await asyncio.gather(*sent)
    for event in result.events:
        ALERT_EVENTS.labels(event.state).inc()
    for key, updates in changed.items():
        states[key] = json.dumps(stored.get(key, {}) | updates).encode()
    for alert in result.events:
        logger.info(
            "alert %s subscription=%s entity=%s:%s share=%.2f baseline=%.2f p=%.2g",
            alert.state, alert.subscription_id, alert.entity_kind, alert.entity,
            alert.negative_share, alert.baseline_negative_share, alert.p_value,
        )  # fmt: skip
