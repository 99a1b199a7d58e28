"""Agent `score`: news.raw -> batches -> Classifier -> news.scored (and, per entity, the aggregate stage).

Scored items go to news.scored keyed by story and, grouped per entity (topic,
tickers, source), to the internal by-entity topic keyed by entity: one record
per entity per batch, so the aggregate stage writes each window once per
batch. All carry this worker's event-time low watermark (stream/watermark.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import faust
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata
from faust.types import TP, EventT, StreamT

from alerts.aggregate import entities_of, window_view
from finpulse.errors import ConfigError, InvalidRecord, PermanentError, TransientError, UnsupportedLanguage
from finpulse.schema import NewsItem, ScoredItem
from finpulse.settings import Settings
from stream.deadletter import dead_letter, dead_letter_record
from stream.metrics import BATCH_SECONDS, BATCH_SIZE, SCORED
from stream.services import ClassifierService
from stream.skipped import Record, SkippedOffsets, SkippedRecords
from stream.topics import PipelineTopics
from stream.watermark import TICK_KEY, SourceProgress, entity_key, headers_for

logger = logging.getLogger(__name__)

# By-entity records stay well under Kafka's default 1 MB message limit.
MAX_RECORD_BYTES = 256 * 1024


def register_score(
    app: faust.App,
    topics: PipelineTopics,
    classifier: ClassifierService,
    settings: Settings,
) -> None:
    """Agent `score` and this worker's watermark heartbeat."""
    model = settings.model
    dead = topics.dead(app, topics.names.raw)
    progress = SourceProgress(settings.stream.idle_close_s)
    skipped = SkippedRecords(app, settings.kafka, topics.names.raw, "news.raw")
    # Quiet for three times the idle rule's silence: a false alarm only scores stories again.
    offsets = SkippedOffsets(skipped.next, 3 * settings.stream.idle_close_s)

    @app.on_partitions_assigned.connect
    async def track(app: faust.App, assigned: set[TP], **kwargs: object) -> None:
        partitions = {tp.partition for tp in assigned if tp.topic == topics.names.raw}
        progress.assign(partitions)
        offsets.assign(partitions, time.monotonic())
        skipped.reset()

    async def reject(origin: _Origin, error: BaseException) -> None:
        if isinstance(origin, _ReadBack):
            r = origin.record
            await dead_letter_record(
                dead, topics.names.raw, origin.partition, r.offset, r.key, r.value, error, stage="score"
            )
        else:
            await dead_letter(dead, origin, error, stage="score")

    @app.agent(topics.raw, name="score")
    async def score(stream: StreamT[bytes]) -> None:
        # One batch more than the classifier runs at once is handed to it before the
        # oldest is published, so it never waits for Faust to refill the take buffer
        # (one event at a time) or for a publish. Events are acked once their batch
        # is published, in order.
        in_flight: deque[_Batch] = deque()
        async for events in stream.noack_take(model.max_batch, within=model.batch_window_s):
            progress.begin_batch(len(events), model.max_batch)
            arrived: list[tuple[_Origin, int, bytes | None]] = []
            read_back: list[_ReadBack] = []
            now = time.monotonic()
            for event in events:
                m = event.message
                offsets.delivered(m.partition, now)
                # Records the consumer skipped before this one (stream/skipped.py, 1.); on a failed
                # read this one is scored all the same: stories are scored in any order.
                missed = await skipped.before_or_none(m.partition, m.offset)
                for record in missed or ():
                    read_back.append(_ReadBack(m.partition, record))
                    arrived.append((read_back[-1], m.partition, record.value))
                arrived.append((event, m.partition, event.value))
            batch: list[tuple[_Origin, NewsItem]] = []
            for origin, partition, value in arrived:
                try:
                    item = NewsItem.from_bytes(value)
                    if not model.reads(item.language):
                        raise UnsupportedLanguage(str(item.language), model.languages)
                except PermanentError as exc:
                    await reject(origin, exc)
                    continue
                batch.append((origin, item))
                progress.observe(partition, item.published_at)
            mark = progress.batch_mark(min((item.published_at for _, item in batch), default=None))
            if len(in_flight) > classifier.parallel:
                await in_flight.popleft().published
            previous = in_flight[-1] if in_flight else None
            current = _Batch(asyncio.create_task(_classify(classifier, batch)))
            current.published = asyncio.create_task(
                publish(stream, events, read_back, current, mark, previous)
            )
            in_flight.append(current)

    async def publish(
        stream: StreamT[bytes], events: Sequence[EventT], read_back: Sequence[_ReadBack], batch: _Batch,
        mark: datetime | None, previous: _Batch | None,
    ) -> None:  # fmt: skip
        try:
            results = await batch.classified
        except Exception as exc:  # not about one story (_classify)
            await stop_worker("score a batch", len(events) + len(read_back), exc)
            raise
        if previous is not None:
            await previous.published
        scored: list[ScoredItem] = []
        for origin, result in results:
            if isinstance(result, ScoredItem):
                scored.append(result)
            else:
                await reject(origin, result)
        try:  # acked once on Kafka: Faust commits acked offsets
            await asyncio.gather(*await _publish(app, topics, scored, headers_for(mark)))
        except Exception as exc:  # past the producer's retries (or refused for good)
            await stop_worker("publish a scored batch", len(scored), exc)
            raise
        SCORED.inc(len(scored))
        for event in events:
            await stream.ack(event)
        for one in read_back:
            skipped.ack(one.partition, one.record)
        progress.end_batch(mark)

    async def stop_worker(what: str, stories: int, exc: Exception) -> None:
        # Acking later batches would commit past this one; holding them would stall the stream:
        # stop the worker, and its restart (or another worker) scores the batch again.
        if not app.crashed:  # said once: the batches after it fail alike
            logger.critical(
                "could not %s stories=%d: %r; stopping the worker (its offsets are not "
                "committed: the next worker scores them again)",
                what, stories, exc,
            )  # fmt: skip
            await app.crash(exc)

    checked = 0.0

    @app.timer(settings.stream.tick_interval_s)
    async def heartbeat() -> None:
        # Lets the aggregate stage close windows while no stories flow.
        nonlocal checked
        unread = progress.unread()
        if unread and time.monotonic() - checked >= settings.stream.idle_close_s:
            checked = time.monotonic()
            try:  # partitions the group processed before this worker got them (stream/skipped.py)
                group = await skipped.reader.processed(app.conf.id, unread)
            except (KafkaError, TransientError) as exc:
                logger.warning("could not ask the broker how far news.raw was processed: %s", exc)
            else:
                progress.caught_up({partition: _published(value) for partition, value in group.done.items()})
                for partition, offset in group.resume.items():
                    skipped.next.resume_at(partition, offset)
        if progress.assigned and not app.rebalancing:
            await _follow_ends(app, topics.names.raw, offsets, progress)
        headers = headers_for(progress.heartbeat_mark())
        if headers:
            for partition in range(settings.kafka.topics.partitions):
                await topics.by_entity.send(key=TICK_KEY, value=b"", partition=partition, headers=headers)


async def _follow_ends(app: faust.App, topic: str, offsets: SkippedOffsets, progress: SourceProgress) -> None:
    """News.raw partitions with records past those read hold the watermark back; the ends the
    consumer skipped are fetched again (stream/skipped.py)."""
    assigned = [tp for tp in app.consumer.assignment() if tp.topic == topic]
    ends = {tp.partition: app.consumer.highwater(tp) for tp in assigned}
    now = time.monotonic()
    progress.behind = offsets.behind(ends, now)
    if progress.in_flight:
        return  # busy: records may be on their way
    for partition, offset in offsets.stalled(ends, now).items():
        logger.warning(
            "news.raw records skipped by the consumer partition=%d: it stopped after offset %d of %d; "
            "fetching again",
            partition, offset - 1, ends[partition],
        )  # fmt: skip
        await app.consumer.seek(TP(topic, partition), offset)


async def _publish(
    app: faust.App, topics: PipelineTopics, batch: list[ScoredItem], headers: dict[str, bytes]
) -> list[Awaitable[RecordMetadata]]:
    """Each story to news.scored by story id; and per entity, the batch's stories of
    that entity in one record (a JSON array) to the aggregate stage. Returns the
    deliveries of them all: the batch is acked once every one is on Kafka.

    Stories go through the producer itself: Faust's Topic.send wraps every record in
    message objects and callbacks that took ~5% of the worker's event loop."""
    deliveries = []
    by_entity: dict[str, list[bytes]] = defaultdict(list)
    for scored in batch:
        key, value = scored.story_id.encode(), scored.to_bytes()
        deliveries.append(await app.producer.send(topics.names.scored, key, value, None, None, headers))
        view = window_view(scored).to_bytes()
        for kind, entity in entities_of(scored):
            by_entity[entity_key(kind, entity)].append(view)
    for key, values in by_entity.items():
        for chunk in _chunks(values, MAX_RECORD_BYTES):
            record = b"[" + b",".join(chunk) + b"]"
            deliveries.append(await topics.by_entity.send(key=key.encode(), value=record, headers=headers))
    return deliveries


def _published(value: bytes | None) -> datetime | None:
    """A news.raw record's publish time (None: empty or unreadable, it was dead-lettered)."""
    try:
        return NewsItem.from_bytes(value).published_at if value else None
    except InvalidRecord:
        return None


@dataclass(frozen=True)
class _ReadBack:
    """A news.raw record the consumer skipped, read from the broker (no Faust event)."""

    partition: int
    record: Record


# Where a story in a batch came from: for its ack, and its dead letter.
_Origin = EventT | _ReadBack


@dataclass
class _Batch:
    """One batch on its way: its classification, then its publication."""

    classified: asyncio.Task[list[tuple[_Origin, ScoredItem | Exception]]]
    published: asyncio.Task[None] = field(init=False)


def _chunks(values: list[bytes], max_bytes: int) -> list[list[bytes]]:
    """Consecutive runs of `values` of at most `max_bytes` together (at least one value each)."""
    chunks: list[list[bytes]] = [[]]
    size = 0
    for value in values:
        if chunks[-1] and size + len(value) > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(value)
        size += len(value) + 1
    return chunks


async def _classify(
    classifier: ClassifierService, batch: Sequence[tuple[_Origin, NewsItem]], *, retry: bool = True
) -> list[tuple[_Origin, ScoredItem | Exception]]:
    """Score the batch in one call; if that fails, story by story, so one bad story costs only
    itself: it comes back with its exception, for its dead letter. Raises only failures no story
    is to blame for, which stop the worker (its publish, and every batch's after it, fails): a
    ConfigError (no model, no GPU for it), and the classifier process dying on a story twice and
    then on a plain headline too (it dies on any text, not on one poisonous story)."""
    if not batch:
        return []
    began = time.monotonic()
    try:
        scored = await classifier.score([item for _, item in batch])
    except Exception as exc:  # loop boundary: the stories go on, or to dead letters
        if isinstance(exc, ConfigError):
            raise
        if len(batch) > 1:
            logger.exception("batch prediction failed size=%d; retrying story by story", len(batch))
            return [pair for one in batch for pair in await _classify(classifier, [one])]
        if retry and isinstance(exc, TransientError):  # the child died: the next call starts one
            return await _classify(classifier, batch, retry=False)
        if isinstance(exc, TransientError) and not await _scores_a_plain_headline(classifier):
            raise
        logger.error("prediction failed story=%s: %r", batch[0][1].story_id, exc)
        return [(batch[0][0], exc)]
    BATCH_SECONDS.observe(time.monotonic() - began)
    BATCH_SIZE.observe(len(batch))
    return [(event, result) for (event, _), result in zip(batch, scored, strict=True)]


# A headline any working classifier scores: after a story killed the classifier's process twice,
# whether the story is to blame (dead-lettered) or the classifier (the worker stops).
_PLAIN = NewsItem(
    story_id="finpulse-probe", source="finpulse", title="Shares were little changed in early trading",
    published_at=datetime(2026, 1, 5, tzinfo=UTC), fetched_at=datetime(2026, 1, 5, tzinfo=UTC),
)  # fmt: skip


async def _scores_a_plain_headline(classifier: ClassifierService) -> bool:
    try:
        await classifier.score([_PLAIN])
    except Exception:  # noqa: BLE001 - any failure: the classifier is what fails
        return False
    return True
