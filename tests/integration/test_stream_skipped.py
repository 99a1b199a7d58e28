"""Reading back by-entity records the consumer skipped, from the real broker."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaProducer

from finpulse.errors import TransientError
from finpulse.settings import KafkaSettings
from stream import skipped
from stream.skipped import SkippedReader


async def _produce(kafka: KafkaSettings, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for i in range(n):
            await producer.send_and_wait(
                topic,
                value=f"v{i}".encode(),
                key=f"k{i}".encode(),
                partition=1,
                headers=[("h", str(i).encode())],
            )
    finally:
        await producer.stop()


async def test_a_range_of_offsets_is_read_back_in_order_with_keys_and_headers(kafka: KafkaSettings) -> None:
    topic = kafka.topics.raw
    await _produce(kafka, topic, 6)

    records = await SkippedReader(kafka.bootstrap, topic).read(1, 2, 5)

    assert [r.offset for r in records] == [2, 3, 4]
    assert [(r.key, r.value, r.headers) for r in records] == [
        (f"k{i}".encode(), f"v{i}".encode(), {"h": str(i).encode()}) for i in (2, 3, 4)
    ]


async def test_a_range_the_partition_does_not_hold_yet_is_a_transient_error(
    kafka: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = kafka.topics.raw
    await _produce(kafka, topic, 2)
    monkeypatch.setattr(skipped, "READ_BACK_TIMEOUT_S", 2.0)

    with pytest.raises(TransientError, match="offsets 1-4"):
        await SkippedReader(kafka.bootstrap, topic).read(1, 1, 5)
