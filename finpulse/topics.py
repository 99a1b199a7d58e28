"""Kafka topics: names from settings, one idempotent `ensure_topics()`, reading topics to their
ends, dead letters, and runs (the demo's, the bench's) with topics of their own under a prefix."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.protocol.admin import (
    DescribeGroupsRequest_v0,
    DescribeGroupsRequest_v1,
    DescribeGroupsRequest_v2,
)
from aiokafka.protocol.api import Request

from finpulse.errors import BrokerUnavailable, ConfigError
from finpulse.kafka_auth import client_options
from finpulse.metrics import DEAD_LETTERS
from finpulse.schema import DeadLetter
from finpulse.settings import KafkaSettings, Settings, TopicSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    compact: bool = False  # keep the latest record per key (a table's changelog)
    # Roll segments this often (None: the broker's week): only rolled segments are compacted.
    segment_ms: int | None = None


def dead_letter_topic(topic: str, topics: TopicSettings) -> str:
    """The dead-letter topic for records that failed on `topic`."""
    return f"{topic}{topics.dead_letter_suffix}"


# The TopicSettings fields naming the pipeline's four topics, in pipeline order.
STAGE_TOPIC_FIELDS = ("raw", "scored", "windows", "alerts")


def stage_topics(topics: TopicSettings) -> list[str]:
    """The pipeline's four topics: news.raw, news.scored, sentiment.windows, alerts.events."""
    return [getattr(topics, field) for field in STAGE_TOPIC_FIELDS]


def dead_letter_topics(topics: TopicSettings) -> list[str]:
    """The dead-letter twins of the pipeline's four topics."""
    return [dead_letter_topic(n, topics) for n in stage_topics(topics)]


def pipeline_topics(topics: TopicSettings) -> list[TopicSpec]:
    """The pipeline's four topics, each with its dead-letter twin."""
    names = [*stage_topics(topics), *dead_letter_topics(topics)]
    return [TopicSpec(n, topics.partitions, topics.replication_factor) for n in names]


# Readers of the sources topic read it whole: a segment rolled every 10 minutes is compacted soon,
# where a week's segment would hold every poll's status (100 sources every 5 min: 200k records).
SOURCES_SEGMENT_MS = 10 * 60 * 1000


def sources_topic(topics: TopicSettings) -> TopicSpec:
    """Where ingestors publish each news source's status: the latest record per source is all a
    reader needs, so it is compacted, and a handful of sources need one partition."""
    return TopicSpec(
        topics.sources, 1, topics.replication_factor, compact=True, segment_ms=SOURCES_SEGMENT_MS
    )


def all_topics(topics: TopicSettings) -> list[TopicSpec]:
    """Every topic finpulse's commands share (a worker's own internal ones aside)."""
    return [*pipeline_topics(topics), sources_topic(topics)]


@asynccontextmanager
async def kafka_admin(kafka: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client, closed on exit; a clear error when the broker cannot be reached."""
    admin = AIOKafkaAdminClient(
        **client_options(kafka),
        request_timeout_ms=int(kafka.request_timeout_s * 1000),
    )
    async with _started(kafka, admin, admin.close):
        yield admin


@asynccontextmanager
async def kafka_consumer(
    kafka: KafkaSettings, *topics: str, **options: Any
) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer for a short read (no group, nothing committed, unless `options` say
    otherwise), stopped through `stop_consumer` on exit; a clear error when the broker cannot be
    reached."""
    options = {
        "enable_auto_commit": False,
        "request_timeout_ms": int(kafka.request_timeout_s * 1000),
        **options,
    }
    consumer = AIOKafkaConsumer(*topics, **client_options(kafka), **options)
    async with _started(kafka, consumer, functools.partial(stop_consumer, consumer)):
        yield consumer


def unreachable(kafka: KafkaSettings) -> str:
    """What to do when a client of ours cannot get through to the brokers."""
    if kafka.security_protocol.startswith("SASL"):
        return (
            f"cannot reach Kafka at {kafka.bootstrap}, or sign in there as {kafka.sasl_username!r} "
            f"({kafka.security_protocol}, {kafka.sasl_mechanism}): check FINPULSE_KAFKA_BOOTSTRAP, "
            "FINPULSE_KAFKA_SASL_USERNAME and FINPULSE_KAFKA_SASL_PASSWORD"
        )
    tls = "" if kafka.security_protocol == "PLAINTEXT" else " (and FINPULSE_KAFKA_SSL_CAFILE for TLS)"
    return (
        f"cannot reach Kafka at {kafka.bootstrap}: start it with `finpulse kafka start` "
        f"or set FINPULSE_KAFKA_BOOTSTRAP{tls}"
    )


@asynccontextmanager
async def _started(
    kafka: KafkaSettings,
    client: AIOKafkaAdminClient | AIOKafkaConsumer,
    stop: Callable[[], Awaitable[None]],
) -> AsyncIterator[None]:
    """`client` started, and stopped on exit, or BrokerUnavailable where it cannot connect."""
    quiet = _BootstrapRefusals()  # BrokerUnavailable says it, once, with what to do
    logging.getLogger("aiokafka").addFilter(quiet)
    try:
        await client.start()
    except KafkaConnectionError as exc:
        await stop()
        raise BrokerUnavailable(unreachable(kafka)) from exc
    finally:
        logging.getLogger("aiokafka").removeFilter(quiet)
    try:
        yield
    finally:
        await stop()


class _BootstrapRefusals(logging.Filter):
    """aiokafka's `Unable connect to "host:port"` (at ERROR) while a client starts."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unable connect to")


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """`consumer.stop()`, less a CancelledError that is not ours: aiokafka's fetcher cancels and
    awaits the fetches still retrying a broker that went away, and lets their cancellation out of
    stop() (aio-libs/aiokafka#647; seen on a 3-broker cluster with one broker killed). Let out, it
    would cancel whatever task was only reading a topic (a Faust agent reading records back is
    restarted "on rebalance", dropping the batch in hand)."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        # Also a consumer stopped before a topic it read existed (`status` on a new broker).
        logger.debug("kafka consumer stopped; aiokafka let out a fetch's cancellation")


async def ensure_topics(kafka: KafkaSettings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns the names it created, once the broker
    lists them.

    Safe to call any number of times and from several processes at once.
    """
    specs = specs if specs is not None else all_topics(kafka.topics)
    async with kafka_admin(kafka) as admin:
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing and min(s.replication_factor for s in missing) == 1:
            await _warn_unreplicated(admin, [s.name for s in missing if s.replication_factor == 1])
        created = [spec.name for spec in missing if await _create(admin, spec)]
        if created:
            logger.info("created topics=%s", ",".join(created))
        if missing:  # those another process won the race for too
            await _until_listed(admin, [s.name for s in missing], kafka.request_timeout_s)
        return created


async def _create(admin: AIOKafkaAdminClient, spec: TopicSpec) -> bool:
    """Create the topic `spec`: True where this call created it, False where another process won
    the race (the idempotent outcome). Kafka answers CreateTopics with an error per topic (aiokafka
    raises none): a refusal is raised with Kafka's reason, or the topic would never be listed."""
    configs = {"cleanup.policy": "compact"} if spec.compact else {}
    if spec.segment_ms is not None:
        configs["segment.ms"] = str(spec.segment_ms)
    if spec.replication_factor > 1:  # acks=all then means on two brokers, whatever theirs say
        configs["min.insync.replicas"] = str(min(2, spec.replication_factor))
    topic = NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=configs)
    response = await admin.create_topics([topic])
    for _topic, code, *message in response.topic_errors:  # a message from CreateTopics v1 on
        if code == TopicAlreadyExistsError.errno:
            return False
        if code:
            error = for_code(code)
            reason = message[0] if message and message[0] else error.description
            raise (BrokerUnavailable if error.retriable else ConfigError)(
                f"Kafka refused to create topic {spec.name!r}: {reason} ({error.message}); "
                "check FINPULSE_KAFKA_TOPICS"
            )
    return True


async def _warn_unreplicated(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """A cluster of several brokers given topics of one replica each: said (Kafka keeps a topic as
    created, and a broker's restart takes their partitions offline)."""
    brokers = len((await admin.describe_cluster())["brokers"])
    if brokers > 1:
        some = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        logger.warning(
            "creating %d topics with replication 1 on a cluster of %d brokers (%s): a broker's restart "
            "takes their partitions offline; set FINPULSE_KAFKA_TOPICS '{\"replication_factor\": 3}' "
            "before the first start", len(names), brokers, some,
        )  # fmt: skip


async def topic_mismatches(kafka: KafkaSettings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Existing topics whose partition count or replication differs from the settings: Kafka
    keeps a topic as it was created, so a changed setting alone changes nothing."""
    specs = specs if specs is not None else all_topics(kafka.topics)
    async with kafka_admin(kafka) as admin:
        listed = set(await admin.list_topics())
        present = [spec for spec in specs if spec.name in listed]
        replicas: dict[str, list[int]] = {spec.name: [] for spec in present}
        for topic, partition in await partition_metadata(admin, list(replicas)):
            replicas[topic].append(len(partition["replicas"]))
    out = []
    for spec in present:
        counts = replicas[spec.name]
        if len(counts) != spec.partitions:
            out.append(f"{spec.name} has {len(counts)} partitions, the settings {spec.partitions}")
        if counts and min(counts) != spec.replication_factor:
            out.append(f"{spec.name} has replication {min(counts)}, the settings {spec.replication_factor}")
    return out


async def _until_listed(admin: AIOKafkaAdminClient, names: list[str], timeout_s: float) -> None:
    """Until the broker's metadata lists `names`. It follows the controller's a moment after a
    create (longer on a busy machine): a consumer subscribing before then ignores the topic, a
    listing leaves it out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while unlisted := set(names) - set(await admin.list_topics()):
        if loop.time() > deadline:
            raise BrokerUnavailable(
                f"Kafka created {', '.join(sorted(unlisted))} but does not list "
                f"{'it' if len(unlisted) == 1 else 'them'} after {timeout_s:g} s"
            )
        await asyncio.sleep(0.1)


async def check_partitions(kafka: KafkaSettings, names: Sequence[str]) -> None:
    """Raise ConfigError where one of these existing topics has another partition count than
    the settings give (the stream's watermark waits for every partition they count)."""
    async with kafka_admin(kafka) as admin:
        counts = Counter(tp.topic for tp in await topic_partitions(admin, list(names)))
    wrong = {name: n for name, n in counts.items() if n != kafka.topics.partitions}
    if wrong:
        found = ", ".join(f"{name} has {n}" for name, n in sorted(wrong.items()))
        raise ConfigError(
            f"{found} partitions, but the settings say {kafka.topics.partitions} "
            "(FINPULSE_KAFKA_TOPICS '{\"partitions\": N}'): set N to the topics' count"
        )


def run_settings(settings: Settings, prefix: str) -> Settings:
    """`settings` for a run with topics, a stream app and a dispatcher group of its own: the
    pipeline's topics become `<prefix>.<name>`, the app id `prefix`, so the worker's own topics
    (changelogs, repartitions: `<app id>-...`) start with `prefix` too, and the dispatcher's group
    `<prefix>-alerts` (the live group then holds no offsets of a run's topics, deleted later)."""
    t = settings.kafka.topics
    names = {field: f"{prefix}.{getattr(t, field)}" for field in (*STAGE_TOPIC_FIELDS, "sources")}
    kafka = settings.kafka.model_copy(update={"topics": t.model_copy(update=names)})
    stream = settings.stream.model_copy(update={"app_id": prefix})
    alerts = settings.alerts.model_copy(update={"consumer_group": f"{prefix}-alerts"})
    return settings.model_copy(update={"kafka": kafka, "stream": stream, "alerts": alerts})


def run_env(settings: Settings) -> dict[str, str]:
    """The environment that points a `finpulse` process at a run's topics, app and group."""
    return {
        "FINPULSE_KAFKA_TOPICS": settings.kafka.topics.model_dump_json(),
        "FINPULSE_STREAM_APP_ID": settings.stream.app_id,
        "FINPULSE_ALERTS_CONSUMER_GROUP": settings.alerts.consumer_group,
    }


async def topics_starting(kafka: KafkaSettings, prefix: str) -> list[str]:
    """The broker's topics whose names start with `prefix`, sorted."""
    async with kafka_admin(kafka) as admin:
        return await _names_starting(admin, prefix)


async def delete_topics_starting(kafka: KafkaSettings, prefix: str) -> list[str]:
    """Delete the topics whose names start with `prefix` (a finished run's); returns their names."""
    async with kafka_admin(kafka) as admin:
        names = await _names_starting(admin, prefix)
        if names:
            await admin.delete_topics(names)
            logger.info("deleted topics=%s", ",".join(names))
        return names


async def partition_metadata(
    admin: AIOKafkaAdminClient, topics: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    """(topic, its metadata: partition, leader, replicas, isr) of every partition of `topics`
    (which must exist)."""
    described = await admin.describe_topics(topics) if topics else []
    return [(d["topic"], p) for d in described for p in d["partitions"]]


async def topic_partitions(admin: AIOKafkaAdminClient, topics: list[str]) -> list[TopicPartition]:
    """Every partition of `topics` (which must exist)."""
    return [TopicPartition(topic, p["partition"]) for topic, p in await partition_metadata(admin, topics)]


async def iter_records(
    kafka: KafkaSettings, topics: Sequence[str], *, since: datetime | None = None
) -> AsyncGenerator[tuple[TopicPartition, ConsumerRecord[bytes, bytes]], None]:
    """The records on `topics` (those the broker has) from `since` (default: the start) up to
    their ends now, partition by partition, one at a time; no consumer group, nothing committed."""
    async with kafka_admin(kafka) as admin:
        present = set(topics) & set(await admin.list_topics())
        partitions = await topic_partitions(admin, sorted(present))
    if not partitions:
        return
    async with kafka_consumer(kafka) as consumer:
        ends = await consumer.end_offsets(partitions)
        starts = await _starts(consumer, partitions, since, ends)
        # Assigned and sought in one step: a partition assigned first is fetched from its end
        # meanwhile, and that fetch waits out fetch_max_wait_ms (0.5 s a read, for 12 records).
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, starts[tp])
        for tp in partitions:
            if starts[tp] >= ends[tp]:
                continue
            while await consumer.position(tp) < ends[tp]:
                for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    if record.offset < ends[tp]:
                        yield tp, record


async def _starts(
    consumer: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    since: datetime | None,
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    if since is None:
        return dict(await consumer.beginning_offsets(partitions))
    # Kafka's record timestamps are the append times: the first at or after `since`.
    at = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
    return {tp: at[tp].offset if at.get(tp) is not None else ends[tp] for tp in partitions}


async def _names_starting(admin: AIOKafkaAdminClient, prefix: str) -> list[str]:
    return sorted(t for t in await admin.list_topics() if t.startswith(prefix))


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
    """The one log line (and metric) of every dead letter, wherever it was sent from."""
    DEAD_LETTERS.labels(letter.stage, letter.error_type).inc()
    logger.warning(
        "dead-lettered stage=%s topic=%s partition=%s offset=%s reason=%s",
        letter.stage,
        letter.source_topic,
        letter.partition,
        letter.offset,
        letter.reason,
    )


# How long a group's coordinator is waited for on a fresh broker.
COORDINATOR_WAIT_S = 15.0


class _DescribeGroups(
    Request[DescribeGroupsRequest_v0 | DescribeGroupsRequest_v1 | DescribeGroupsRequest_v2]  # type: ignore[misc]
):
    """DescribeGroups up to v2: aiokafka 0.14 decodes the v3 answer with the v2 layout
    (`DescribeGroupsRequest_v3.RESPONSE_TYPE`) and fails with "Buffer underrun"."""

    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(self, request_struct_class: type[Any]) -> Any:
        return request_struct_class(self._groups)


async def coordinator(admin: AIOKafkaAdminClient, group: str) -> int:
    """The node coordinating `group`. A broker that has never stored a consumer offset creates its
    offsets topic on the first ask and answers "not available" meanwhile: asked again for a while."""
    deadline = time.monotonic() + COORDINATOR_WAIT_S
    while True:
        try:
            return int(await admin.find_coordinator(group))
        except GroupCoordinatorNotAvailableError:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"Kafka has no coordinator for consumer group {group} after {COORDINATOR_WAIT_S:g} s "
                    "(its offsets topic is not ready); try again in a moment"
                ) from None
            await asyncio.sleep(0.5)


async def describe_groups(
    admin: AIOKafkaAdminClient, groups: dict[str, int]
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """group -> (state, members as "client id@host") from each group's coordinator node."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for group, node in groups.items():
        response = await admin._send_request(_DescribeGroups([group]), node)  # no public call fits
        for _error, name, state, _kind, _protocol, members in response.groups:
            found[name] = (state, tuple(f"{m[1]}@{m[2].lstrip('/')}" for m in members))
    return found


async def describe_group(kafka: KafkaSettings, group: str) -> tuple[str, tuple[str, ...]]:
    """A consumer group's state now ("Stable", "Empty", "PreparingRebalance", ...; "Dead" when
    unknown) and its members ("client id@host")."""
    async with kafka_admin(kafka) as admin:
        described = await describe_groups(admin, {group: await coordinator(admin, group)})
    return described.get(group, ("Dead", ()))
