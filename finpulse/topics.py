"""Kafka topics: names from settings, one idempotent `ensure_topics()`, dead letters."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from finpulse.errors import BrokerUnavailable
from finpulse.schema import DeadLetter
from finpulse.settings import KafkaSettings, TopicSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    compact: bool = False  # keep the latest record per key (a table's changelog)


def dead_letter_topic(topic: str, topics: TopicSettings) -> str:
    """The dead-letter topic for records that failed on `topic`."""
    return f"{topic}{topics.dead_letter_suffix}"


def pipeline_topics(topics: TopicSettings) -> list[TopicSpec]:
    """Every topic finpulse uses, each with its dead-letter twin."""
    names = [topics.raw, topics.scored, topics.windows, topics.alerts]
    names += [dead_letter_topic(n, topics) for n in names]
    return [TopicSpec(n, topics.partitions, topics.replication_factor) for n in names]


async def ensure_topics(kafka: KafkaSettings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created.

    Safe to call any number of times and from several processes at once.
    """
    specs = specs if specs is not None else pipeline_topics(kafka.topics)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.bootstrap,
        request_timeout_ms=int(kafka.request_timeout_s * 1000),
    )
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise BrokerUnavailable(
            f"cannot reach Kafka at {kafka.bootstrap}: start it with `finpulse kafka start` "
            "or set FINPULSE_KAFKA_BOOTSTRAP"
        ) from exc
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        created = []
        for spec in missing:
            try:
                configs = {"cleanup.policy": "compact"} if spec.compact else {}
                topic = NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=configs)
                await admin.create_topics([topic])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass  # another process won the race: that is the idempotent outcome
        if created:
            logger.info("created topics=%s", ",".join(created))
        return created
    finally:
        await admin.close()


async def send_dead_letter(producer: AIOKafkaProducer, topics: TopicSettings, letter: DeadLetter) -> None:
    """Publish a dead letter for `letter.source_topic` and wait for the ack."""
    target = dead_letter_topic(letter.source_topic, topics)
    try:
        await producer.send_and_wait(target, letter.to_bytes())
    except KafkaError:
        logger.exception("dead-letter publish failed topic=%s", target)
        raise
    log_dead_letter(letter)


def log_dead_letter(letter: DeadLetter) -> None:
    """The one log line of every dead letter, wherever it was sent from."""
    logger.warning(
        "dead-lettered stage=%s topic=%s partition=%s offset=%s reason=%s",
        letter.stage,
        letter.source_topic,
        letter.partition,
        letter.offset,
        letter.reason,
    )
