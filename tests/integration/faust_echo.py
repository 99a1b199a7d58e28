"""A minimal Faust app for the foundation test: validates NewsItems from the
raw topic, forwards valid ones to the scored topic, dead-letters the rest.

Run as `python -m tests.integration.faust_echo worker` with FINPULSE_* env.
"""

from __future__ import annotations

import os

import faust

from finpulse.errors import InvalidRecord
from finpulse.schema import DeadLetter, NewsItem
from finpulse.settings import TopicSettings
from finpulse.topics import dead_letter_topic

RAW = os.environ["ECHO_IN"]
OUT = os.environ["ECHO_OUT"]
DEAD = dead_letter_topic(RAW, TopicSettings())

app = faust.App(
    os.environ["ECHO_APP_ID"],
    broker=f"kafka://{os.environ['FINPULSE_KAFKA_BOOTSTRAP']}",
    store="memory://",
    web_enabled=False,
    topic_disable_leader=True,
    datadir=os.environ["ECHO_DATA_DIR"],
)
raw = app.topic(RAW, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw")
out = app.topic(OUT, key_type=bytes, value_type=bytes, value_serializer="raw", key_serializer="raw")
dead = app.topic(DEAD, value_type=bytes, value_serializer="raw")


@app.agent(raw)
async def echo(stream):  # type: ignore[no-untyped-def]
    async for event in stream.events():
        try:
            item = NewsItem.from_bytes(event.value)
        except InvalidRecord as exc:
            letter = DeadLetter.wrap(
                source_topic=RAW,
                stage="echo",
                error=exc,
                value=event.value,
                partition=event.message.partition,
                offset=event.message.offset,
            )
            await dead.send(value=letter.to_bytes())
            continue
        await out.send(key=item.story_id.encode(), value=item.to_bytes())


if __name__ == "__main__":
    app.main()
