"""Dead letters read back: what the stages could not process, and sending it again.

Every stage puts a record it cannot process on its topic's dead-letter twin
(`news.raw.dead`, ...) with the reason and the original bytes. `read_dead_letters`
reads the twins from the start (or from a time) up to their ends when called;
`replay` sends the original records back to the topics they failed on, once the
cause is fixed (a language added to FINPULSE_MODEL_LANGUAGES, a bug fixed in a
stage). The windows count a story once, so replaying a letter twice does not
count its story twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from rich.console import Console
from rich.table import Table
from rich.text import Text

from finpulse.errors import InvalidRecord
from finpulse.schema import DeadLetter
from finpulse.settings import KafkaSettings
from finpulse.topics import dead_letter_topics, kafka_admin, topic_partitions


@dataclass(frozen=True)
class Found:
    """One record of a dead-letter topic; `letter` None: the record is not a readable DeadLetter."""

    topic: str
    partition: int
    offset: int
    appended_at: datetime  # the broker's time for the record
    letter: DeadLetter | None
    error: str | None = None

    @property
    def failed_at(self) -> datetime:
        return self.letter.failed_at if self.letter is not None else self.appended_at


@dataclass(frozen=True)
class Filter:
    """Which letters: by the topic they failed on, the stage, a piece of the reason (any case)."""

    source_topic: str | None = None
    stage: str | None = None
    reason: str | None = None

    def __call__(self, found: Found) -> bool:
        letter = found.letter
        if letter is None:
            return self.source_topic is None and self.stage is None and self.reason is None
        return (
            (self.source_topic is None or letter.source_topic == self.source_topic)
            and (self.stage is None or letter.stage == self.stage)
            and (self.reason is None or self.reason.lower() in letter.reason.lower())
        )


async def read_dead_letters(
    kafka: KafkaSettings, topics: Sequence[str] | None = None, *, since: datetime | None = None
) -> list[Found]:
    """The records on `topics` (default: every pipeline topic's dead-letter twin) from `since`
    (default: the start) up to their ends now, oldest failure first."""
    async with kafka_admin(kafka) as admin:
        present = set(topics or dead_letter_topics(kafka.topics)) & set(await admin.list_topics())
        partitions = await topic_partitions(admin, sorted(present))
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=int(kafka.request_timeout_s * 1000),
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await _starts(consumer, partitions, since, ends)
        found: list[Found] = []
        for tp in partitions:
            if starts[tp] >= ends[tp]:
                continue
            consumer.seek(tp, starts[tp])
            while await consumer.position(tp) < ends[tp]:
                for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    if record.offset < ends[tp]:
                        found.append(_decode(tp, record))
        return sorted(found, key=lambda f: f.failed_at)
    finally:
        await consumer.stop()


async def _starts(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    since: datetime | None,
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    if since is None:
        return dict(await consumer.beginning_offsets(partitions))
    # Kafka's record timestamps are the letters' append times: the first at or after `since`.
    at = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
    return {tp: at[tp].offset if at.get(tp) is not None else ends[tp] for tp in partitions}


def _decode(tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> Found:
    appended = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    try:
        return Found(tp.topic, tp.partition, record.offset, appended, DeadLetter.from_bytes(record.value))
    except InvalidRecord as exc:
        return Found(tp.topic, tp.partition, record.offset, appended, None, exc.reason)


@dataclass(frozen=True)
class Replayed:
    sent: int
    kept: int  # letters holding no record read from their topic (nothing to send back)


def replayable(letter: DeadLetter) -> bool:
    """Whether the letter holds a record read from its topic (it carries the offset), which can
    go back there: ingest's letters hold the source's entry, never a record of the topic (fix
    the source, ingest again)."""
    return letter.offset is not None and letter.value_b64 is not None


async def replay(kafka: KafkaSettings, letters: Sequence[DeadLetter]) -> Replayed:
    """Send each replayable letter's original record (key and value) back to the topic it failed on."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    sent = kept = 0
    try:
        for letter in letters:
            if not replayable(letter):
                kept += 1
                continue
            await producer.send_and_wait(
                letter.source_topic, letter.original_value(), key=letter.original_key()
            )
            sent += 1
    finally:
        await producer.stop()
    return Replayed(sent, kept)


def print_dead_letters(console: Console, found: Sequence[Found], *, last: int) -> None:
    """A count per failed topic, stage and error, then the newest letters with their reasons."""
    if not found:
        console.print("no dead letters")
        return
    groups: dict[tuple[str, str, str], list[DeadLetter]] = defaultdict(list)
    unreadable = 0
    for f in found:
        if f.letter is None:
            unreadable += 1
        else:
            groups[(f.letter.source_topic, f.letter.stage, f.letter.error_type)].append(f.letter)
    summary = Table(title=f"{len(found)} dead letter(s)", title_justify="left")
    for name in ("failed on", "stage", "error", "count", "latest (UTC)"):
        summary.add_column(name, justify="right" if name == "count" else "left", no_wrap=True)
    for (topic, stage, error), letters in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        latest = max(letter.failed_at for letter in letters)
        summary.add_row(topic, stage, error, str(len(letters)), _when(latest))
    if unreadable:
        summary.add_row("?", "?", "not a dead letter", str(unreadable), "")
    console.print(summary)
    letters = [f.letter for f in found if f.letter is not None]  # oldest first
    newest = letters[-last:] if last else []
    if not newest:
        return
    detail = Table(title=f"newest {len(newest)}", title_justify="left")
    for name in ("failed at (UTC)", "record", "stage", "reason"):
        detail.add_column(name, no_wrap=name != "reason", overflow="fold")
    for letter in newest:
        where = letter.source_topic
        if letter.partition is not None:
            where += f"[{letter.partition}]@{letter.offset}"
        detail.add_row(_when(letter.failed_at), where, letter.stage, Text(letter.reason))
    console.print(detail)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")
