"""`finpulse demo`: the local end-to-end run on default settings.

Starts the local broker, creates the topics, and sends a sample NewsItem
through `news.raw`, then reads it back and shows it. Later stages extend this
into the whole service (ingest -> worker -> alerts -> API).
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
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
    await producer.start()
    try:
        meta = await producer.send_and_wait(kafka.topics.raw, sent.to_bytes(), key=sent.story_id.encode())
    finally:
        await producer.stop()
    # Read back exactly the record the broker acknowledged.
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(meta.topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        record = await asyncio.wait_for(consumer.getone(), kafka.request_timeout_s)
    finally:
        await consumer.stop()
    return NewsItem.from_bytes(record.value)
