"""Small Kafka helpers for tests: read everything on a topic."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from finpulse.settings import KafkaSettings


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
        await consumer.stop()
    return records
