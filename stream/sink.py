"""The history sink: scored items, windows and alert events -> the history store.

A plain Kafka consumer in its own group (`<app id>-history`), not Faust agents:
news.scored carries every story, and Faust hands each record through its own
event machinery (a pair of tasks per record; with a Faust agent on news.scored
the records cost about 15% of the worker's event-loop time in `finpulse stream
bench`), where `getmany` hands over hundreds at once. Batches of up to
SINK_BATCH records or SINK_WITHIN_S are written with idempotent upserts off the
event loop, then committed: after a crash the uncommitted batch is written
again and changes nothing. A record that does not parse is dead-lettered; a
batch the store rejects is written again from the last commit. A worker that
stops cleanly writes and commits the batch it was gathering before it goes, so
what it scored is in the history when it has stopped (not at its next start).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import faust
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import ConsumerStoppedError, KafkaError
from aiokafka.structs import ConsumerRecord
from mode import Service

from finpulse.errors import InvalidRecord, TransientError, retry_transient
from finpulse.kafka_auth import client_options
from finpulse.schema import AlertEvent, Message, ScoredItem, WindowAggregate
from finpulse.settings import Settings, StoreSettings
from finpulse.topics import stop_consumer
from stream.deadletter import dead_letter_record
from stream.metrics import HISTORY_FAILURES, HISTORY_LAST_WRITE, HISTORY_WRITTEN
from stream.topics import PipelineTopics

logger = logging.getLogger(__name__)
Upsert = Callable[[Sequence[Message]], int]

# Each write opens and closes the DuckDB file once for all three topics (so the API can
# take turns with it): ~40 ms a time, so a batch is up to 2 s of stories rather than a handful.
SINK_BATCH = 2000
SINK_WITHIN_S = 2.0
# Transient store errors (a lock held by another process) are retried this often.
SINK_RETRIES = 5
# After a failed write, the batch is read again from the last commit this much later.
SINK_BACKOFF_S = 2.0
# The consumer fetches in the background; by default the broker answers each fetch as
# soon as a record arrives, so a busy pipeline meant a fetch every few records. The sink
# writes every SINK_WITHIN_S anyway: let the broker gather up to this much, this long.
SINK_FETCH_MIN_BYTES = 256 * 1024
SINK_FETCH_MAX_WAIT_MS = 500
# Gathering asks the consumer this often whether the worker is stopping; on a stop the
# last batch gets this long to be written (a store busy with another process included).
SINK_POLL_S = 0.25
SINK_STOP_TIMEOUT_S = 20.0


class StoreService(Service):
    """The worker's handle on the history store.

    Faust starts user services after table recovery, which may be after the
    sinks' first batch arrives, so the first write also starts the store (once,
    under a lock) if the service has not yet. A store that cannot be reached at
    start (a database server not up yet) does not stop the worker: it scores on,
    and the sink's writes retry until the store answers.
    """

    def __init__(self, settings: StoreSettings, **kwargs: object) -> None:
        from store import open_store

        self.store = open_store(settings)
        self._starting = asyncio.Lock()
        self._store_started = False
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        try:
            await self._ready()
        except TransientError as exc:
            logger.warning("history store unavailable at start; its writes will retry: %s", exc)

    async def _ready(self) -> None:
        if self._store_started:
            return
        async with self._starting:
            await asyncio.to_thread(self.store.start)  # idempotent
            self._store_started = True

    async def on_stop(self) -> None:
        self._store_started = False
        await asyncio.to_thread(self.store.stop)

    async def write(self, batches: Sequence[tuple[Upsert, Sequence[Message]]]) -> None:
        """Each batch through its upsert, all in one opening of the store (retried whole: upserts
        are idempotent)."""
        if not batches:
            return

        async def write_once() -> None:
            await self._ready()
            await asyncio.to_thread(self._write_all, batches)

        def retrying(attempt: int, pause: float, exc: TransientError) -> None:
            count = sum(len(records) for _, records in batches)
            logger.warning("store busy or away; retrying attempt=%d records=%d", attempt, count)

        await retry_transient(write_once, attempts=SINK_RETRIES, pause_s=0.5, on_retry=retrying)

    def _write_all(self, batches: Sequence[tuple[Upsert, Sequence[Message]]]) -> None:
        with self.store.session():
            for upsert, records in batches:
                upsert(records)


class HistorySink(Service):
    """Consumes news.scored, the windows and the alert events into the store (see the module)."""

    def __init__(self, app: faust.App, settings: Settings, topics: PipelineTopics, store: StoreService,
                 **kwargs: object) -> None:  # fmt: skip
        self.store = store
        self.kafka = settings.kafka
        self.group = f"{settings.stream.app_id}-history"
        s = store.store
        names = topics.names
        self._routes: dict[str, tuple[type[Message], Upsert]] = {
            names.scored: (ScoredItem, s.upsert_scored),  # type: ignore[dict-item]
            names.windows: (WindowAggregate, s.upsert_windows),  # type: ignore[dict-item]
            names.alerts: (AlertEvent, s.upsert_alerts),  # type: ignore[dict-item]
        }
        self._dead = {name: topics.dead(app, name) for name in self._routes}
        self._consumer: AIOKafkaConsumer | None = None
        self._consuming: asyncio.Task[None] | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            **client_options(self.kafka),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_min_bytes=SINK_FETCH_MIN_BYTES,
            fetch_max_wait_ms=SINK_FETCH_MAX_WAIT_MS,
        )
        self._consumer.subscribe(list(self._routes))
        await self._consumer.start()

    async def on_stop(self) -> None:
        # should_stop is set now: the consuming task writes and commits its last batch and ends.
        consuming, self._consuming = self._consuming, None
        if consuming is not None and not consuming.done():
            try:
                await asyncio.wait_for(asyncio.shield(consuming), SINK_STOP_TIMEOUT_S)
            except TimeoutError:
                logger.warning("history: the last batch was not written in %.0f s; it will be "
                               "written at the next start", SINK_STOP_TIMEOUT_S)  # fmt: skip
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_consumer(consumer)  # what was not committed is written again next time

    @Service.task
    async def _consume(self) -> None:
        consumer = self._consumer
        assert consumer is not None, "mode starts a service's tasks after on_start"
        self._consuming = asyncio.current_task()
        while not self.should_stop:
            try:
                records = await self._gather(consumer)
            except ConsumerStoppedError:  # closed while it waited (the stop timed out)
                return
            if records:
                await self._store(consumer, records)

    async def _store(self, consumer: AIOKafkaConsumer, records: list[ConsumerRecord]) -> None:
        """Write the batch, then commit it. The store away or broken: the batch is read again
        from the last commit. A value the database cannot hold (`refuses_record`): the batch is
        written record by record and the refused ones dead-lettered (one NUL in PostgreSQL text
        held back the whole history before)."""
        parsed = await self._parse(records)
        try:
            await self._write(parsed)
        except Exception as exc:  # noqa: BLE001 - loop boundary: the store says whose fault it is
            if not self.store.store.refuses_record(exc):
                self._failed(len(records), exc)
                await self._read_again(consumer)
                return
            logger.warning("history refused a record of %d; writing them one by one: %r", len(records), exc)
            if not await self._write_each(parsed):
                await self._read_again(consumer)
                return
        try:
            await consumer.commit()
        except KafkaError as exc:  # a rebalance moved the partitions: their new owner rewrites
            logger.warning("history commit failed (%s); the batch will be written again", exc)

    async def _write_each(self, parsed: list[tuple[ConsumerRecord, Message]]) -> bool:
        """Each record on its own; one the database refuses goes to its dead letter. False on
        any other failure (the batch is read again)."""
        for r, message in parsed:
            try:
                await self._write([(r, message)])
            except Exception as exc:  # noqa: BLE001 - loop boundary: this record alone
                if not self.store.store.refuses_record(exc):
                    self._failed(1, exc)
                    return False
                logger.warning("history refused a record topic=%s partition=%d offset=%d: %r",
                               r.topic, r.partition, r.offset, exc)  # fmt: skip
                await self._dead_letter(r, exc)
        return True

    @staticmethod
    def _failed(count: int, exc: BaseException) -> None:
        HISTORY_FAILURES.inc()
        if isinstance(exc, TransientError):  # the store is away: no traceback, it says why
            logger.warning("history write failed records=%d; reading them again: %s", count, exc)
        else:
            logger.error("history write failed records=%d; reading them again", count, exc_info=exc)

    async def _read_again(self, consumer: AIOKafkaConsumer) -> None:
        if not self.should_stop:
            await self.sleep(SINK_BACKOFF_S)
            await _rewind(consumer)

    async def _gather(self, consumer: AIOKafkaConsumer) -> list[ConsumerRecord]:
        """Records for up to SINK_WITHIN_S, at most SINK_BATCH; fewer when the worker stops."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SINK_WITHIN_S
        records: list[ConsumerRecord] = []
        while len(records) < SINK_BATCH and not self.should_stop and (left := deadline - loop.time()) > 0:
            got = await consumer.getmany(
                timeout_ms=int(min(left, SINK_POLL_S) * 1000), max_records=SINK_BATCH - len(records)
            )
            for batch in got.values():
                records.extend(batch)
        return records

    async def _parse(self, records: list[ConsumerRecord]) -> list[tuple[ConsumerRecord, Message]]:
        """The records as messages; one that is not its topic's message goes to its dead letter."""
        parsed = []
        for r in records:
            try:
                parsed.append((r, self._routes[r.topic][0].from_bytes(r.value)))
            except InvalidRecord as exc:
                await self._dead_letter(r, exc)
        return parsed

    async def _write(self, parsed: list[tuple[ConsumerRecord, Message]]) -> None:
        by_topic: dict[str, list[Message]] = {topic: [] for topic in self._routes}
        for r, message in parsed:
            by_topic[r.topic].append(message)
        await self.store.write(
            [(self._routes[topic][1], items) for topic, items in by_topic.items() if items]
        )
        for topic, items in by_topic.items():
            HISTORY_WRITTEN.labels(topic).inc(len(items))
        HISTORY_LAST_WRITE.set_to_current_time()

    async def _dead_letter(self, r: ConsumerRecord, error: BaseException) -> None:
        await dead_letter_record(
            self._dead[r.topic], r.topic, r.partition, r.offset, r.key, r.value, error, stage="history"
        )


async def _rewind(consumer: AIOKafkaConsumer) -> None:
    """Back to each partition's last commit, or to its start where nothing was committed yet
    (aiokafka's seek_to_committed leaves those where they are: the batch would be skipped)."""
    committed = await consumer.seek_to_committed()
    fresh = [tp for tp, offset in committed.items() if not offset]
    if fresh:
        await consumer.seek_to_beginning(*fresh)
