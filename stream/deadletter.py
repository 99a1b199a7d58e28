"""Dead-lettering a record a stage could not process: original bytes plus the reason."""

from __future__ import annotations

from faust.types import EventT, TopicT

from finpulse.schema import DeadLetter
from finpulse.topics import log_dead_letter


async def dead_letter(dead: TopicT, event: EventT, error: BaseException, *, stage: str) -> None:
    """Publish a Faust `event`'s original record to `dead` with why it failed."""
    m = event.message
    await dead_letter_record(dead, m.topic, m.partition, m.offset, m.key, m.value, error, stage=stage)


async def dead_letter_record(
    dead: TopicT, topic: str, partition: int, offset: int, key: object, value: object,
    error: BaseException, *, stage: str,
) -> None:  # fmt: skip
    """Publish one consumed record to `dead` with why it failed, and wait for the broker's ack:
    the caller acks or commits the record next, and a letter still in the producer's buffer
    would be lost with the process."""
    letter = DeadLetter.wrap(
        source_topic=topic,
        stage=stage,
        error=error,
        value=value if isinstance(value, bytes) else None,
        key=key if isinstance(key, bytes) else None,
        partition=partition,
        offset=offset,
    )
    delivered = await dead.send(value=letter.to_bytes())
    await delivered
    log_dead_letter(letter)
