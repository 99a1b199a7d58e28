"""stream.skipped.FaustReadBack: read-back records are acked to the app's Faust consumer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from faust.types import TP
from faust.types.tuples import Message

from stream.skipped import FaustReadBack, Record


class _Consumer:
    def __init__(self) -> None:
        self.acked: list[Message] = []

    def ack(self, message: Message) -> bool:
        self.acked.append(message)
        return True


def test_a_processed_record_is_acked_to_the_consumer_as_its_own_partition_and_offset() -> None:
    consumer = _Consumer()
    app: Any = SimpleNamespace(consumer=consumer)
    read_back = FaustReadBack(app, "127.0.0.1:9", "app-entity-batches")
    read_back.ack(2, Record(41, b"ticker:ACME", b"[]", {"x": b"1"}))
    [message] = consumer.acked
    assert (message.tp, message.offset, message.key, message.acked) == (
        TP("app-entity-batches", 2), 41, b"ticker:ACME", False,
    )  # fmt: skip
