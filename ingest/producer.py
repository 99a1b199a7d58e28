"""Publishing NewsItems to `news.raw` (idempotent producer, acks=all, key = story id) and each
source's status to the sources topic (key = source name)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from finpulse.errors import BrokerUnavailable
from finpulse.kafka_auth import client_options
from finpulse.lifecycle import AsyncResource
from finpulse.schema import DeadLetter, NewsItem, SourceStatus
from finpulse.settings import KafkaSettings
from finpulse.topics import send_dead_letter, unreachable

logger = logging.getLogger(__name__)

STAGE = "ingest"


class NewsProducer(AsyncResource):
    """Sends NewsItems, dead letters and source statuses; each call returns once Kafka acknowledged."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.kafka = kafka
        self.topic = kafka.topics.raw
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(
            **client_options(self.kafka),
            enable_idempotence=True,  # broker drops retried duplicates within a session
            acks="all",
            linger_ms=20,
            request_timeout_ms=int(self.kafka.request_timeout_s * 1000),
        )
        try:
            await producer.start()
        except KafkaConnectionError as exc:
            await producer.stop()
            raise BrokerUnavailable(unreachable(self.kafka)) from exc
        self._producer = producer

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    def _require(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("NewsProducer.start() was not called")
        return self._producer

    async def publish(self, items: Sequence[NewsItem]) -> int:
        """Send `items` (in order) and wait for every ack; raises BrokerUnavailable on failure."""
        producer = self._require()
        try:
            pending = [
                await producer.send(self.topic, item.to_bytes(), key=item.story_id.encode("utf-8"))
                for item in items
            ]
            await asyncio.gather(*pending)
        except KafkaError as exc:
            raise BrokerUnavailable(
                f"publishing to {self.topic} failed: {exc}; items will be retried"
            ) from exc
        return len(items)

    async def dead_letter(self, error: BaseException, value: bytes, key: bytes | None = None) -> None:
        """Route a record that failed validation to `news.raw.dead` with its reason."""
        letter = DeadLetter.wrap(source_topic=self.topic, stage=STAGE, error=error, value=value, key=key)
        try:
            await send_dead_letter(self._require(), self.kafka.topics, letter)
        except KafkaError as exc:
            raise BrokerUnavailable(f"dead-letter publish failed: {exc}") from exc

    async def publish_status(self, status: SourceStatus) -> None:
        """A source's latest status (ingest/health.py reads it); raises BrokerUnavailable."""
        await self._send_status(status.source, status.to_bytes())

    async def forget_source(self, name: str) -> None:
        """A tombstone: readers stop listing the source (it left the sources file, or its ingestor
        retired)."""
        await self._send_status(name, None)

    async def _send_status(self, name: str, value: bytes | None) -> None:
        topic = self.kafka.topics.sources
        try:
            await self._require().send_and_wait(topic, value, key=name.encode("utf-8"))
        except KafkaError as exc:
            raise BrokerUnavailable(f"publishing to {topic} failed: {exc}") from exc
