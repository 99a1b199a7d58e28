"""`finpulse demo`: the local end-to-end run on default settings.

Starts the local broker, creates the topics, and sends a sample NewsItem
through `news.raw`, then reads it back and shows it. Later stages extend this
into the whole service (ingest -> worker -> alerts -> API).
"""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from rich.console import Console
from rich.table import Table

from finpulse.kafka_local import LocalKafka
from finpulse.schema import NewsItem, story_id_for, utcnow
from finpulse.settings import Settings
from finpulse.topics import ensure_topics


def run_demo(settings: Settings, console: Console) -> None:
    """Run the demo; prints each step."""
    kafka = settings.kafka
    if kafka.bootstrap == f"127.0.0.1:{kafka.local_port}":
        status = LocalKafka(kafka).start()
        console.print(f"[bold]1. kafka[/bold] {status.describe()}")
    created = asyncio.run(ensure_topics(kafka))
    console.print(f"[bold]2. topics[/bold] created: {', '.join(created) or 'none (all present)'}")
    item = asyncio.run(_round_trip(settings))
    table = Table(title=f"3. NewsItem through {kafka.topics.raw}")
    table.add_column("field")
    table.add_column("value")
    for field, value in item.model_dump(mode="json").items():
        table.add_row(field, str(value))
    console.print(table)


async def _round_trip(settings: Settings) -> NewsItem:
    kafka = settings.kafka
    now = utcnow()
    title = "$ACME shares tumble after surprise profit warning"
    sent = NewsItem(
        story_id=story_id_for("demo", title, now.isoformat()),
        source="demo",
        title=title,
        summary="Acme Corp cut its full-year guidance, citing weak demand.",
        url="https://example.com/acme-warning",
        published_at=now,
        fetched_at=now,
        tickers=("ACME",),
    )
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True, acks="all")
    consumer = AIOKafkaConsumer(
        kafka.topics.raw,
        bootstrap_servers=kafka.bootstrap,
        group_id=f"finpulse-demo-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="latest",
    )
    await consumer.start()
    try:
        await _wait_for_assignment(consumer)
        await producer.start()
        try:
            await producer.send_and_wait(kafka.topics.raw, sent.to_bytes(), key=sent.story_id.encode())
        finally:
            await producer.stop()
        async with asyncio.timeout(kafka.request_timeout_s):
            async for record in consumer:
                received = NewsItem.from_bytes(record.value)
                if received.story_id == sent.story_id:
                    return received
    finally:
        await consumer.stop()
    raise AssertionError("unreachable")


async def _wait_for_assignment(consumer: AIOKafkaConsumer) -> None:
    while not consumer.assignment():
        await asyncio.sleep(0.1)
    # Pin the start position now, so the record we send next is after it.
    for tp in consumer.assignment():
        await consumer.position(tp)
