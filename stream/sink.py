"""Agents `sink-*`: scored items, windows and alert events -> the history store.

Batched (`take_events`), written with idempotent upserts off the event loop, so
a redelivered batch after a crash changes nothing. A record that does not
parse is dead-lettered; a batch the store rejects is retried by Faust (the
agent raises, offsets stay uncommitted) only for transient store errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import faust
from faust.types import StreamT, TopicT
from mode import Service

from finpulse.errors import InvalidRecord, TransientError
from finpulse.schema import AlertEvent, Message, ScoredItem, WindowAggregate
from finpulse.settings import StoreSettings
from stream.deadletter import dead_letter
from stream.topics import PipelineTopics

logger = logging.getLogger(__name__)

# Each write opens and closes the DuckDB file (so the API can take turns with it):
# ~40 ms a time, so a batch is up to 2 s of stories rather than a handful.
SINK_BATCH = 2000
SINK_WITHIN_S = 2.0
# Transient store errors (a lock held by another process) are retried this often.
SINK_RETRIES = 5


class StoreService(Service):
    """The worker's handle on the history store.

    Faust starts user services after table recovery, which may be after the
    sinks' first batch arrives, so the first write also starts the store (once,
    under a lock) if the service has not yet.
    """

    def __init__(self, settings: StoreSettings, **kwargs: object) -> None:
        from store.duckdb import DuckDBStore

        self.store = DuckDBStore.from_settings(settings)
        self._starting = asyncio.Lock()
        self._store_started = False
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self._ready()

    async def _ready(self) -> None:
        if self._store_started:
            return
        async with self._starting:
            await asyncio.to_thread(self.store.start)  # idempotent
            self._store_started = True

    async def on_stop(self) -> None:
        self._store_started = False
        await asyncio.to_thread(self.store.stop)

    async def write(self, upsert: Callable[[Sequence[Message]], int], records: Sequence[Message]) -> None:
        await self._ready()
        for attempt in range(1, SINK_RETRIES + 1):
            try:
                await asyncio.to_thread(upsert, records)
                return
            except TransientError:
                if attempt == SINK_RETRIES:
                    raise
                logger.warning("store busy; retrying attempt=%d records=%d", attempt, len(records))
                await asyncio.sleep(0.5 * attempt)


def register_sink(app: faust.App, topics: PipelineTopics, store: StoreService) -> None:
    s = store.store
    _sink(app, "sink-scored", topics.scored, ScoredItem, s.upsert_scored, store, topics)  # type: ignore[arg-type]
    _sink(app, "sink-windows", topics.windows, WindowAggregate, s.upsert_windows, store, topics)  # type: ignore[arg-type]
    _sink(app, "sink-alerts", topics.alerts, AlertEvent, s.upsert_alerts, store, topics)  # type: ignore[arg-type]


def _sink(
    app: faust.App,
    name: str,
    topic: TopicT,
    model: type[Message],
    upsert: Callable[[Sequence[Message]], int],
    store: StoreService,
    topics: PipelineTopics,
) -> None:
    dead = topics.dead(app, topic.get_topic_name())

    @app.agent(topic, name=name)
    async def sink(stream: StreamT[bytes]) -> None:
        async for events in stream.take_events(SINK_BATCH, within=SINK_WITHIN_S):
            records = []
            for event in events:
                try:
                    records.append(model.from_bytes(event.value))
                except InvalidRecord as exc:
                    await dead_letter(dead, event, exc, stage=name)
            if records:
                await store.write(upsert, records)
