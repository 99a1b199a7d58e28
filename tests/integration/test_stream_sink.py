"""The history sink on the real broker and a real store (a DuckDB file, a PostgreSQL database),
outside a worker process."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import faust
import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY
from psycopg import sql

import stream.sink
from finpulse.schema import DeadLetter, ScoredItem
from finpulse.settings import KafkaSettings, Settings, StoreSettings, StreamSettings
from finpulse.topics import dead_letter_topic
from store import DuckDBStore, StoreError, StoreUnavailable, open_store
from stream.sink import HistorySink, StoreService
from stream.topics import PipelineTopics
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.store import T0, scored
from tests.kafka_io import commits_reach, read_topic

STORIES = 7


async def _gathered(sink: HistorySink, topic: str, expect: int, timeout_s: float) -> int:
    """How far the sink's consumer has read `topic` (its position: records handed to the sink)."""
    consumer = sink._consumer
    assert consumer is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        owned = [tp for tp in consumer.assignment() if tp.topic == topic]
        read = sum([await consumer.position(tp) for tp in owned]) if owned else 0
        if read >= expect or loop.time() > deadline:
            return read
        await asyncio.sleep(0.2)


def _stored(settings: StoreSettings) -> int:
    with open_store(settings, read_only=True) as store:
        return store.stats().scored_items


@pytest.fixture(params=["duckdb", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'history.duckdb'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _services(kafka: KafkaSettings, store: StoreSettings) -> tuple[Settings, StoreService, HistorySink]:
    settings = Settings(
        kafka=kafka, stream=StreamSettings(app_id=f"fp-sink-{uuid.uuid4().hex[:8]}"), store=store
    )
    app = faust.App(settings.stream.app_id, broker=f"kafka://{kafka.bootstrap}")
    service = StoreService(settings.store)
    return settings, service, HistorySink(app, settings, PipelineTopics.declare(app, kafka.topics), service)


async def _publish(kafka: KafkaSettings, stories: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for i in range(stories):
            item = scored(f"s{i}", T0, "Markets", "negative", -0.7, tickers=("ACME",))
            await producer.send_and_wait(
                kafka.topics.scored, item.to_bytes(), key=item.item.story_id.encode()
            )
    finally:
        await producer.stop()


async def test_a_stopping_sink_writes_and_commits_the_batch_it_was_gathering(
    kafka: KafkaSettings, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches that take a minute to gather: only the stop can write this one.
    monkeypatch.setattr(stream.sink, "SINK_WITHIN_S", 60.0)
    settings, store, sink = _services(kafka, StoreSettings(url=store_url))
    await store.start()
    await sink.start()
    try:
        await _publish(kafka, STORIES)
        assert await _gathered(sink, kafka.topics.scored, STORIES, timeout_s=30) == STORIES
        assert _stored(settings.store) == 0
    finally:
        await sink.stop()
        await store.stop()
    assert _stored(settings.store) == STORIES
    group = f"{settings.stream.app_id}-history"
    assert await commits_reach(kafka, group, kafka.topics.scored, timeout_s=5) == {}


async def test_a_record_the_store_refuses_is_dead_lettered_and_the_rest_are_written(
    kafka: KafkaSettings, postgres_url: str
) -> None:
    # PostgreSQL refuses a NUL character in text; before, the sink read the batch again forever
    # and no history was written after it.
    settings, store, sink = _services(kafka, StoreSettings(url=postgres_url))
    await _publish(kafka, STORIES)
    bad = scored("nul", T0, "Markets", "negative", -0.7, title="a NUL \x00 in the title")
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(kafka.topics.scored, bad.to_bytes(), key=b"nul")
    finally:
        await producer.stop()
    await store.start()
    await sink.start()
    try:
        [dead] = await read_topic(kafka, dead_letter_topic(kafka.topics.scored, kafka.topics), expect=1)
        group = f"{settings.stream.app_id}-history"
        assert await commits_reach(kafka, group, kafka.topics.scored, timeout_s=30) == {}
    finally:
        await sink.stop()
        await store.stop()
    letter = DeadLetter.from_bytes(dead.value)
    assert (letter.stage, letter.key_b64) == ("history", "bnVs")  # b"nul"
    assert "NUL" in letter.reason, letter.reason
    assert _stored(settings.store) == STORIES


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0  # this process's Prometheus metrics


async def test_a_broken_store_dead_letters_nothing_and_gets_every_story_once_mended(
    kafka: KafkaSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a record's fault (a schema this version cannot write, a disk gone read-only): the batch
    is read again, never dead-lettered record by record."""
    monkeypatch.setattr(stream.sink, "SINK_BACKOFF_S", 0.2)
    upsert, failures = (
        DuckDBStore.upsert_scored,
        [StoreError("history store: schema version 99 is newer")] * 3,
    )

    def broken_then_mended(self: DuckDBStore, items: Sequence[ScoredItem]) -> int:
        if failures:
            raise failures.pop()
        return upsert(self, items)

    monkeypatch.setattr(DuckDBStore, "upsert_scored", broken_then_mended)
    settings, store, sink = _services(kafka, StoreSettings(url=f"duckdb:///{tmp_path / 'h.duckdb'}"))
    failed_before, written_before = (
        _metric("finpulse_history_write_failures_total"),
        _metric("finpulse_history_written_total", topic=kafka.topics.scored),
    )
    await _publish(kafka, STORIES)
    await store.start()
    await sink.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while (stored := await asyncio.to_thread(_stored_or_none, settings.store)) != STORIES:
            assert loop.time() < deadline, f"stored {stored} of {STORIES}"
            await asyncio.sleep(0.3)
    finally:
        await sink.stop()
        await store.stop()
    assert failures == []  # it failed three times, and was read again each time
    # Seen in the worker's metrics, not only in its log.
    # At least its three (the test's own reads of the file may fail a write more: DuckDB's one mode).
    assert _metric("finpulse_history_write_failures_total") - failed_before >= 3
    assert _metric("finpulse_history_written_total", topic=kafka.topics.scored) - written_before == STORIES
    assert _metric("finpulse_history_last_write_timestamp_seconds") > time.time() - 60
    dead = dead_letter_topic(kafka.topics.scored, kafka.topics)
    assert await read_topic(kafka, dead, expect=1, timeout_s=2) == []


async def test_a_store_that_answers_only_later_still_gets_every_story(
    kafka: KafkaSettings, postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A database server that is not up yet when the worker starts (as after a host reboot)."""
    name = f"fp_late_{uuid.uuid4().hex[:8]}"
    late = StoreSettings(url=postgres_server.url(name), lock_timeout_s=0.5)  # no such database yet
    _settings, store, sink = _services(kafka, late)
    await store.start()  # the worker starts anyway
    await sink.start()
    admin = postgres_server.url(postgres_server.admin_dbname)
    try:
        await _publish(kafka, STORIES)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while "history write failed" not in caplog.text:
            assert loop.time() < deadline, "the sink never tried to write"
            await asyncio.sleep(0.2)
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        while (stored := await asyncio.to_thread(_stored_or_none, late)) != STORIES:
            assert loop.time() < deadline + 40, f"stored {stored} of {STORIES}"
            await asyncio.sleep(0.5)
    finally:
        await sink.stop()
        await store.stop()
        with psycopg.connect(admin, autocommit=True) as con:
            con.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    assert "store unavailable at start" in caplog.text
    assert "Traceback" not in caplog.text


def _stored_or_none(settings: StoreSettings) -> int | None:
    try:
        return _stored(settings)
    except (StoreError, StoreUnavailable):
        return None
