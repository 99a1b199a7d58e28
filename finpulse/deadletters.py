"""Dead letters read back: what the stages could not process, and sending it again.

Every stage puts a record it cannot process on its topic's dead-letter twin
(`news.raw.dead`, ...) with the reason and the original bytes. `iter_dead_letters`
streams the twins from the start (or from a time) up to their ends when called;
a `Tally` keeps the counts and only the newest letters, so a backlog of any size
is listed in bounded memory. `Replayer` sends the original records back to the
topics they failed on, once the cause is fixed (a language added to
FINPULSE_MODEL_LANGUAGES, a bug fixed in a stage). The windows count a story once,
so replaying a letter twice does not count its story twice.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from rich.console import Console
from rich.text import Text

from finpulse.errors import InvalidRecord
from finpulse.kafka_auth import client_options
from finpulse.schema import DeadLetter
from finpulse.settings import KafkaSettings
from finpulse.tables import compact_table
from finpulse.terminal import untrusted
from finpulse.topics import dead_letter_topics, iter_records
from finpulse.wording import counted


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

    def describe(self) -> str:
        """The options that chose it: `--stage score --reason 'timeout'`; empty for all letters."""
        given = (("--topic", self.source_topic), ("--stage", self.stage), ("--reason", self.reason))
        return " ".join(f"{flag} {value!r}" for flag, value in given if value is not None)

    def missed(self, everything: Tally) -> str | None:
        """Why a filter that matched none of the letters read did so: what they hold instead."""
        if not everything.total or not self.describe():
            return None
        stages = sorted({stage for _, stage, _ in everything.groups})
        topics = sorted({topic for topic, _, _ in everything.groups})
        return (
            f"none of the {counted(everything.total, 'dead letter')} match {self.describe()}; they failed "
            f"on {', '.join(topics) or '?'} in stages {', '.join(stages) or '?'}"
        )

    def __call__(self, found: Found) -> bool:
        letter = found.letter
        if letter is None:
            return self.source_topic is None and self.stage is None and self.reason is None
        return (
            (self.source_topic is None or _same_topic(letter.source_topic, self.source_topic))
            and (self.stage is None or letter.stage == self.stage)
            and (self.reason is None or self.reason.lower() in letter.reason.lower())
        )


def _same_topic(topic: str, asked: str) -> bool:
    """`news.raw` names a run's prefixed topic too (the demo's `demo-1a2b.news.raw`)."""
    return topic == asked or topic.endswith(f".{asked}")


async def iter_dead_letters(
    kafka: KafkaSettings, topics: Sequence[str] | None = None, *, since: datetime | None = None
) -> AsyncIterator[Found]:
    """The records on `topics` (default: every pipeline topic's dead-letter twin) from `since`
    (default: the start) up to their ends now, partition by partition, one at a time."""
    async for tp, record in iter_records(kafka, topics or dead_letter_topics(kafka.topics), since=since):
        yield _decode(tp, record)


async def read_dead_letters(
    kafka: KafkaSettings, topics: Sequence[str] | None = None, *, since: datetime | None = None
) -> list[Found]:
    """All of `iter_dead_letters`, oldest failure first (small topics: tests, scripts)."""
    found = [f async for f in iter_dead_letters(kafka, topics, since=since)]
    return sorted(found, key=lambda f: f.failed_at)


def _decode(tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> Found:
    appended = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    try:
        return Found(tp.topic, tp.partition, record.offset, appended, DeadLetter.from_bytes(record.value))
    except InvalidRecord as exc:
        return Found(tp.topic, tp.partition, record.offset, appended, None, exc.reason)


EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass
class Group:
    """The letters of one failed topic, stage and error: how many, the latest failure."""

    count: int = 0
    latest: datetime = EARLIEST


@dataclass
class Tally:
    """Counts per failed topic, stage and error, and the `last` newest letters: what the listing
    shows, in memory that does not grow with the backlog."""

    last: int
    total: int = 0
    unreadable: int = 0
    groups: dict[tuple[str, str, str], Group] = field(default_factory=dict)
    _newest: list[tuple[datetime, int, DeadLetter]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)

    def add(self, found: Found) -> None:
        self.total += 1
        letter = found.letter
        if letter is None:
            self.unreadable += 1
            return
        group = self.groups.setdefault((letter.source_topic, letter.stage, letter.error_type), Group())
        group.count += 1
        group.latest = max(group.latest, letter.failed_at)
        if self.last:
            item = (letter.failed_at, next(self._seq), letter)
            if len(self._newest) < self.last:
                heapq.heappush(self._newest, item)
            else:
                heapq.heappushpop(self._newest, item)

    def newest(self) -> list[DeadLetter]:
        """The newest letters, oldest of them first."""
        return [letter for _, _, letter in sorted(self._newest)]


def replayable(letter: DeadLetter) -> bool:
    """Whether the letter holds a record read from its topic (it carries the offset), which can
    go back there: ingest's letters hold the source's entry, never a record of the topic (fix
    the source, ingest again)."""
    return letter.offset is not None and letter.value_b64 is not None


class Replayer:
    """Sends letters' original records (key and value) back to the topics they failed on;
    counts what it `sent`, what it `kept` (not replayable) and the topics it sent to."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._producer = AIOKafkaProducer(**client_options(kafka), enable_idempotence=True, acks="all")
        self.sent = self.kept = 0
        self.targets: set[str] = set()

    async def __aenter__(self) -> Self:
        await self._producer.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._producer.stop()

    async def send(self, letter: DeadLetter) -> None:
        if not replayable(letter):
            self.kept += 1
            return
        await self._producer.send_and_wait(
            letter.source_topic, letter.original_value(), key=letter.original_key()
        )
        self.sent += 1
        self.targets.add(letter.source_topic)


def print_dead_letters(
    console: Console, tally: Tally, read: Sequence[str] = (), since: datetime | None = None
) -> None:
    """A count per failed topic, stage and error, then the newest letters with their reasons; with
    none, the topics `read` (a run's own, say the demo's, are elsewhere) and from when."""
    if not tally.total:
        on = f" on {', '.join(read)}" if read else ""
        console.print(
            f"no dead letters{on}" + (f" since {since:%Y-%m-%d %H:%M} UTC (--since)" if since else "")
        )
        return
    summary = compact_table(
        counted(tally.total, "dead letter"), ("failed on", "stage", "error", "count", "latest (UTC)"),
        right=("count",),
    )  # fmt: skip
    for (topic, stage, error), group in sorted(tally.groups.items(), key=lambda kv: -kv[1].count):
        summary.add_row(*map(untrusted, (topic, stage, error)), str(group.count), _when(group.latest))
    if tally.unreadable:
        summary.add_row("?", "?", "not a dead letter", str(tally.unreadable), "")
    console.print(summary)
    newest = tally.newest()
    if not newest:
        return
    detail = compact_table(
        f"newest {len(newest)}", ("failed at (UTC)", "record", "stage", "reason"), wraps=("record", "reason")
    )
    for letter in newest:
        where = letter.source_topic
        if letter.partition is not None:
            where += f"[{letter.partition}]@{letter.offset}"
        title = _title(letter)
        # Anyone's bytes on the topic: a title's escape sequences reached the terminal.
        record = untrusted(where)
        if title is not None:
            record = Text.assemble(record, "\n", untrusted(title, style="dim"))
        detail.add_row(_when(letter.failed_at), record, untrusted(letter.stage), untrusted(letter.reason))
    console.print(detail)


def _title(letter: DeadLetter, limit: int = 60) -> str | None:
    """The headline of the story a letter holds (a news record's `title`), cut to `limit`: which
    story failed, without Kafka tools; None for other records."""
    try:
        title = json.loads(letter.original_value() or b"").get("title")
    except (ValueError, AttributeError):  # not JSON, or not an object
        return None
    if not isinstance(title, str) or not title.strip():
        return None
    title = " ".join(title.split())
    return title if len(title) <= limit else title[: limit - 1] + "…"


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")
