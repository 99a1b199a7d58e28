"""Reading a topic beside Faust (stream/skipped.py) on the real broker."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from finpulse.errors import TransientError
from finpulse.settings import KafkaSettings
from stream import skipped
from stream.skipped import GroupProgress, SkippedReader
from tests.kafka_io import commit_offsets


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

    records = await SkippedReader(kafka, topic).read(1, 2, 5)

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
        await SkippedReader(kafka, topic).read(1, 1, 5)


async def test_partitions_the_group_processed_are_found_with_their_last_record(kafka: KafkaSettings) -> None:
    topic, group = kafka.topics.raw, f"g-{uuid.uuid4().hex[:6]}"
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for partition, n in ((0, 3), (1, 2)):  # partition 2 stays empty
            for i in range(n):
                await producer.send_and_wait(topic, value=f"p{partition}-{i}".encode(), partition=partition)
    finally:
        await producer.stop()
    # The group processed all of partition 0 and one record of partition 1.
    await commit_offsets(kafka, group, {TopicPartition(topic, 0): 3, TopicPartition(topic, 1): 1})

    reader = SkippedReader(kafka, topic)
    # Partition 1: the group resumes at offset 1 (where the score stage expects its next record).
    assert await reader.processed(group, [0, 1, 2]) == GroupProgress({0: b"p0-2", 2: None}, {1: 1})
    # Where the group's consumer resumes each partition: committed, else the partition's start.
    assert await reader.resume_offsets(group, [0, 1, 2]) == {0: 3, 1: 1, 2: 0}
    assert await reader.resume_offsets(f"{group}-new", [0, 1]) == {0: 0, 1: 0}

    # And now the rest of partition 1: both last records are read, one after the other.
    await commit_offsets(kafka, group, {TopicPartition(topic, 1): 2})
    assert await reader.processed(group, [0, 1, 2]) == GroupProgress({0: b"p0-2", 1: b"p1-1", 2: None}, {})
