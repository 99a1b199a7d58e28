"""The history sink on the real broker and a real store (a DuckDB file, a PostgreSQL database),
outside a worker process."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaProducer

import stream.sink
from finpulse.settings import KafkaSettings, Settings, StoreSettings, StreamSettings
from store import open_store
from stream.sink import HistorySink, StoreService
from stream.topics import PipelineTopics
from tests.fixtures.store import T0, scored
from tests.kafka_io import commits_reach

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


async def test_a_stopping_sink_writes_and_commits_the_batch_it_was_gathering(
    kafka: KafkaSettings, tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Batches that take a minute to gather: only the stop can write this one.
    monkeypatch.setattr(stream.sink, "SINK_WITHIN_S", 60.0)
    settings = Settings(
        data_dir=tmp_path / "data",
        kafka=kafka,
        stream=StreamSettings(app_id=f"fp-sink-{uuid.uuid4().hex[:8]}"),
        store=StoreSettings(url=store_url),
    )
    app = faust.App(settings.stream.app_id, broker=f"kafka://{kafka.bootstrap}")
    store = StoreService(settings.store)
    sink = HistorySink(app, settings, PipelineTopics.declare(app, kafka.topics), store)
    await store.start()
    await sink.start()
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
        await producer.start()
        try:
            for i in range(STORIES):
                item = scored(f"s{i}", T0, "Markets", "negative", -0.7, tickers=("ACME",))
                await producer.send_and_wait(
                    kafka.topics.scored, item.to_bytes(), key=item.item.story_id.encode()
                )
        finally:
            await producer.stop()
        assert await _gathered(sink, kafka.topics.scored, STORIES, timeout_s=30) == STORIES
        assert _stored(settings.store) == 0
    finally:
        await sink.stop()
        await store.stop()
    assert _stored(settings.store) == STORIES
    group = f"{settings.stream.app_id}-history"
    assert await commits_reach(kafka, group, kafka.topics.scored, timeout_s=5) == {}
