"""Dead-lettering from inside a Faust agent: original bytes plus the reason."""

from __future__ import annotations

import logging

from faust.types import EventT, TopicT

from finpulse.schema import DeadLetter

logger = logging.getLogger(__name__)


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
    logger.warning(
        "dead-lettered stage=%s topic=%s partition=%s offset=%s reason=%s",
        stage, message.topic, message.partition, message.offset, letter.reason,
    )  # fmt: skip
