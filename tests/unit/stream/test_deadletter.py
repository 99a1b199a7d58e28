"""Dead letters from the Faust stages wait for the broker's ack before the stage moves on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from finpulse.errors import InvalidRecord
from stream.deadletter import dead_letter_record


class Topic:
    """A Faust topic's `send`: the record queued, its delivery a future settled later."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.sent: list[bytes] = []

    async def send(self, *, value: bytes) -> asyncio.Future[Any]:
        self.sent.append(value)
        delivered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        settle = delivered.set_exception if self.error else delivered.set_result
        asyncio.get_running_loop().call_later(0.01, settle, self.error or "metadata")
        return delivered


async def _letter(topic: Topic) -> None:
    error = InvalidRecord("NewsItem", "story_id missing")
    await dead_letter_record(topic, "news.raw", 0, 7, b"k", b"{}", error, stage="score")  # type: ignore[arg-type]


async def test_a_dead_letter_the_broker_did_not_take_is_an_error_of_the_stage() -> None:
    """Its record must not be acked or committed: the letter would be lost."""
    with pytest.raises(KafkaTimeoutError):
        await _letter(Topic(KafkaTimeoutError()))


async def test_a_delivered_dead_letter_returns() -> None:
    topic = Topic()
    await _letter(topic)
    assert len(topic.sent) == 1
