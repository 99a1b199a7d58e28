"""Small Kafka helpers for tests: read everything on a topic, wait for a group's commits."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from api.status import coordinator, describe_groups
from finpulse.settings import KafkaSettings
from finpulse.topics import kafka_admin, stop_consumer


async def read_topic(
    kafka: KafkaSettings, topic: str, *, expect: int, timeout_s: float = 30.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read from the start of `topic` until `expect` records arrived (or time out).

    Waits a short grace period after reaching `expect` so extra (duplicate)
    records would be seen too.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
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
    finally:
        await stop_consumer(consumer)  # a broker may have gone away meanwhile
    return records


async def end_offsets(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """Each partition's end offset now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(kafka.topics.partitions)]
        return {tp.partition: end for tp, end in (await consumer.end_offsets(tps)).items()}
    finally:
        await stop_consumer(consumer)


async def commits_reach(
    kafka: KafkaSettings, group: str, topic: str, *, timeout_s: float
) -> dict[int, tuple[int, int]]:
    """Wait until `group` has committed every record `topic` held when called; returns, per
    partition, (committed offset, end offset then): those still short at the timeout."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await consumer.start()
    await admin.start()
    try:
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
    finally:
        await admin.close()
        await consumer.stop()


async def group_members(kafka: KafkaSettings, group: str) -> tuple[str, int]:
    """The consumer group's state ("Stable", "PreparingRebalance", ...) and how many members it has."""
    async with kafka_admin(kafka) as admin:
        described = await describe_groups(admin, {group: await coordinator(admin, group)})
    state, members = described.get(group, ("Dead", ()))
    return state, len(members)
