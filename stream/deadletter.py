"""Dead-lettering from inside a Faust agent: original bytes plus the reason."""

from __future__ import annotations

from faust.types import EventT, TopicT

from finpulse.schema import DeadLetter
from finpulse.topics import log_dead_letter


async def dead_letter(dead: TopicT, event: EventT, error: BaseException, *, stage: str) -> None:
    """Publish `event`'s original record to `dead` with why it failed."""
    message = event.message
    letter = DeadLetter.wrap(
        source_topic=message.topic,
        stage=stage,
        error=error,
        value=message.value if isinstance(message.value, bytes) else None,
        key=message.key if isinstance(message.key, bytes) else None,
        partition=message.partition,
        offset=message.offset,
    )
    await dead.send(value=letter.to_bytes())
    log_dead_letter(letter)
