"""Small Kafka helpers for tests: read everything on a topic, wait for a group's commits."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import ConsumerRecord, TopicPartition

from finpulse.settings import KafkaSettings
from finpulse.topics import describe_group, kafka_admin, kafka_consumer


async def read_topic(
    kafka: KafkaSettings, topic: str, *, expect: int, timeout_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read from the start of `topic` until `expect` records arrived (or time out).

    Waits a short grace period after reaching `expect` so extra (duplicate)
    records would be seen too.
    """
    records: list[ConsumerRecord[bytes, bytes]] = []
    group = f"reader-{uuid.uuid4().hex[:8]}"
    async with kafka_consumer(kafka, topic, group_id=group, auto_offset_reset="earliest") as consumer:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        grace_until: float | None = None
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                records.extend(recs)
            if len(records) >= expect:
                grace_until = grace_until or loop.time() + 1.0
                if loop.time() >= grace_until:
                    break
    return records


async def commit_offsets(kafka: KafkaSettings, group: str, offsets: dict[TopicPartition, int]) -> None:
    """Commit `offsets` for `group`, as if its consumers had processed the records before them."""
    async with kafka_consumer(kafka, group_id=group) as consumer:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)


async def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """Each partition's end offset now."""
    async with kafka_consumer(kafka) as consumer:
        tps = [TopicPartition(topic, p) for p in range(kafka.topics.partitions)]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}


async def commits_reach(
    kafka: KafkaSettings, group: str, topic: str, *, timeout_s: float
) -> dict[int, tuple[int, int]]:
    """Wait until `group` has committed every record `topic` held when called; returns, per
    partition, (committed offset, end offset then): those still short at the timeout."""
    async with kafka_consumer(kafka) as consumer, kafka_admin(kafka) as admin:
        await consumer.topics()  # fetches the metadata partitions_for_topic reads
        partitions = consumer.partitions_for_topic(topic) or set()
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            short = {
                tp.partition: (committed[tp].offset if tp in committed else -1, end)
                for tp, end in ends.items()
                if tp not in committed or committed[tp].offset < end
            }
            if not short or loop.time() > deadline:
                return short
            await asyncio.sleep(0.5)


async def committed(kafka: KafkaSettings, group: str, topic: str) -> dict[int, int]:
    """The offsets `group` has committed on `topic`, by partition."""
    async with kafka_admin(kafka) as admin:
        offsets = await admin.list_consumer_group_offsets(group)
    return {tp.partition: at.offset for tp, at in offsets.items() if tp.topic == topic}


async def group_members(kafka: KafkaSettings, group: str) -> tuple[str, int]:
    """The consumer group's state ("Stable", "PreparingRebalance", ...) and how many members it has."""
    state, members = await describe_group(kafka, group)
    return state, len(members)
