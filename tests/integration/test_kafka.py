"""The foundation on the real broker: JSON records through aiokafka and Faust."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from typer.testing import CliRunner

from finpulse.cli import app
from finpulse.errors import BrokerUnavailable, ConfigError, InvalidRecord
from finpulse.kafka_local import LocalKafka
from finpulse.schema import DeadLetter, NewsItem
from finpulse.settings import KafkaSettings
from finpulse.topics import (
    TopicSpec,
    check_partitions,
    dead_letter_topic,
    delete_topics_starting,
    ensure_topics,
    kafka_consumer,
    pipeline_topics,
    send_dead_letter,
    topic_mismatches,
    topics_starting,
)
from tests.conftest import free_port
from tests.kafka_io import read_topic

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def news(i: int) -> NewsItem:
    return NewsItem(story_id=f"s{i}", source="test", title=f"Headline {i}", published_at=NOW, fetched_at=NOW)


async def test_ensure_topics_is_idempotent(kafka: KafkaSettings) -> None:
    # The fixture created them; a second and third call create nothing.
    assert await ensure_topics(kafka, pipeline_topics(kafka.topics)) == []
    results = await asyncio.gather(*(ensure_topics(kafka, pipeline_topics(kafka.topics)) for _ in range(2)))
    assert results == [[], []]


async def test_a_topic_kafka_refuses_is_a_config_error_in_kafka_s_words(kafka: KafkaSettings) -> None:
    name = f"refused-{uuid.uuid4().hex[:8]}"
    # The test broker is alone: it cannot keep 3 replicas, and says so (it read "does not list it
    # after 30 s").
    with pytest.raises(
        ConfigError,
        match=rf"Kafka refused to create topic '{name}': .*replication factor of 3 cannot be reached",
    ):
        await asyncio.wait_for(ensure_topics(kafka, [TopicSpec(name, 1, 3)]), 10)
    assert await topics_starting(kafka, name) == []


async def test_a_run_s_topics_are_listed_and_deleted_by_prefix(kafka: KafkaSettings) -> None:
    run = f"run-{uuid.uuid4().hex[:8]}"
    mine, other = [f"{run}.news.raw", f"{run}-window-sums-changelog"], f"other-{run}"
    await ensure_topics(kafka, [TopicSpec(n, 1, 1) for n in [*mine, other]])
    assert await topics_starting(kafka, run) == sorted(mine)
    assert await delete_topics_starting(kafka, run) == sorted(mine)
    for _ in range(75):  # the broker's metadata follows the controller within moments
        if not await topics_starting(kafka, run):
            break
        await asyncio.sleep(0.2)
    assert await topics_starting(kafka, run) == []
    assert await topics_starting(kafka, other) == [other]
    assert await delete_topics_starting(kafka, run) == []


async def test_an_unreachable_broker_is_a_clear_error() -> None:
    nowhere = KafkaSettings(bootstrap=f"127.0.0.1:{free_port()}", request_timeout_s=2)
    with pytest.raises(
        BrokerUnavailable,
        match=r"cannot reach Kafka at 127\.0\.0\.1:\d+: start it with `finpulse kafka start`",
    ):
        await ensure_topics(nowhere)
    # A short-lived consumer (reading a topic back, offsets for `status`) says the same.
    with pytest.raises(BrokerUnavailable, match=r"cannot reach Kafka at 127\.0\.0\.1:\d+"):
        async with kafka_consumer(nowhere):
            pass


async def test_a_short_lived_consumer_reads_as_a_group_member_and_commits_nothing_itself(
    kafka: KafkaSettings, group_id: str
) -> None:
    topic = f"short-{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [TopicSpec(topic, 1, 1)])
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, f"v{i}".encode())
    finally:
        await producer.stop()
    tp = TopicPartition(topic, 0)
    async with kafka_consumer(kafka, topic, group_id=group_id, auto_offset_reset="earliest") as consumer:
        read = []
        while len(read) < 3:
            read += (await consumer.getmany(timeout_ms=1000)).get(tp, [])
        assert consumer.assignment() == {tp}
    assert [r.value for r in read] == [b"v0", b"v1", b"v2"]
    async with kafka_consumer(kafka, group_id=group_id) as consumer:
        assert await consumer.committed(tp) is None  # auto-commit is off unless asked for


async def test_a_table_changelog_is_created_compacted(kafka: KafkaSettings) -> None:
    name = f"changelog-{uuid.uuid4().hex[:8]}"
    assert await ensure_topics(kafka, [TopicSpec(name, 1, 1, compact=True)]) == [name]
    assert (await _topic_configs(kafka, name))["cleanup.policy"] == "compact"


async def test_the_sources_topic_is_compacted_with_short_segments(kafka: KafkaSettings) -> None:
    # Created by ensure_topics(kafka) in the fixture, with the rest.
    configs = await _topic_configs(kafka, kafka.topics.sources)
    assert configs["cleanup.policy"] == "compact"
    assert configs["segment.ms"] == "600000"


async def _topic_configs(kafka: KafkaSettings, name: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    await admin.start()
    configs: dict[str, str] = {}
    try:
        # The broker learns of a new topic from the controller a moment after CreateTopics
        # answers (on a loaded machine, it answered without configs): ask until it knows.
        for _ in range(50):
            [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            configs = {entry[0]: entry[1] for resource in response.resources for entry in resource[4]}
            if configs:
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    return configs


async def test_json_round_trip_through_aiokafka(kafka: KafkaSettings, group_id: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        for i in range(20):
            item = news(i)
            await producer.send_and_wait(kafka.topics.raw, item.to_bytes(), key=item.story_id.encode())
    finally:
        await producer.stop()
    records = await read_topic(kafka, kafka.topics.raw, expect=20)
    items = [NewsItem.from_bytes(r.value) for r in records]
    assert sorted(i.story_id for i in items) == sorted(f"s{i}" for i in range(20))
    # Keyed by story id: the same story always lands on the same partition.
    by_key = {r.key: r.partition for r in records}
    assert len(by_key) == 20


async def test_bad_record_is_dead_lettered_with_reason(kafka: KafkaSettings) -> None:
    bad = b'{"story_id": "x", "title": 5}'
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        try:
            NewsItem.from_bytes(bad)
        except InvalidRecord as exc:
            letter = DeadLetter.wrap(source_topic=kafka.topics.raw, stage="test", error=exc, value=bad)
            await send_dead_letter(producer, kafka.topics, letter)
    finally:
        await producer.stop()
    [record] = await read_topic(kafka, dead_letter_topic(kafka.topics.raw, kafka.topics), expect=1)
    letter = DeadLetter.from_bytes(record.value)
    assert letter.original_value() == bad
    assert "source" in letter.reason
    assert "published_at" in letter.reason


async def test_faust_app_forwards_valid_and_dead_letters_bad(kafka: KafkaSettings, tmp_path) -> None:
    env = {
        "ECHO_DATA_DIR": str(tmp_path / "faust"),
        **os.environ,
        "FINPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "ECHO_IN": kafka.topics.raw,
        "ECHO_OUT": kafka.topics.scored,
        "ECHO_APP_ID": f"echo-{uuid.uuid4().hex[:8]}",
    }
    worker = subprocess.Popen(  # noqa: ASYNC220 - runs beside the test's event loop
        [sys.executable, "-m", "tests.integration.faust_echo", "worker", "-l", "warn",
         "--without-web"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
        await producer.start()
        try:
            for i in range(5):
                await producer.send_and_wait(kafka.topics.raw, news(i).to_bytes(), key=f"s{i}".encode())
            await producer.send_and_wait(kafka.topics.raw, b"not json at all", key=b"bad")
        finally:
            await producer.stop()
        out = await read_topic(kafka, kafka.topics.scored, expect=5, timeout_s=90)
        dead = await read_topic(kafka, dead_letter_topic(kafka.topics.raw, kafka.topics), expect=1)
    finally:
        worker.terminate()
        log = worker.communicate(timeout=30)[0].decode(errors="replace")
    assert sorted(NewsItem.from_bytes(r.value).story_id for r in out) == [f"s{i}" for i in range(5)], log
    [letter] = [DeadLetter.from_bytes(r.value) for r in dead]
    assert letter.original_value() == b"not json at all"
    assert letter.stage == "echo"
    assert "JSON" in letter.reason


def test_local_broker_start_twice_status_and_stop(tmp_path, kafka_settings: KafkaSettings) -> None:
    port = free_port()
    settings = KafkaSettings(
        bootstrap=f"127.0.0.1:{port}", local_port=port, local_controller_port=free_port(),
        local_dir=tmp_path / "k",
    )  # fmt: skip
    broker = LocalKafka(settings)
    assert not broker.status().running
    first = broker.start()
    second = broker.start()  # harmless: same process
    assert first.answering
    assert second.pid == first.pid
    assert broker.stop() is True
    assert not broker.status().running
    # No Java process of this broker is left (pgrep exits 1 when nothing matches).
    assert subprocess.run(["pgrep", "-f", str(settings.local_dir)], check=False).returncode == 1
    assert broker.stop() is False  # idempotent


def test_start_refuses_a_taken_port(tmp_path, kafka_settings: KafkaSettings) -> None:
    taken = int(kafka_settings.bootstrap.rsplit(":", 1)[1])
    settings = KafkaSettings(local_port=taken, local_controller_port=free_port(), local_dir=tmp_path / "k")
    with pytest.raises(ConfigError, match=f"port {taken} is taken"):
        LocalKafka(settings).start()


async def test_topics_with_another_partition_count_than_the_settings_are_a_clear_error(
    kafka: KafkaSettings,
) -> None:
    await check_partitions(kafka, [kafka.topics.raw])  # created from these settings: fine
    other = kafka.model_copy(update={"topics": kafka.topics.model_copy(update={"partitions": 2})})
    with pytest.raises(
        ConfigError, match=rf"{kafka.topics.raw} has {kafka.topics.partitions} partitions, but"
    ):
        await check_partitions(other, [kafka.topics.raw])


async def test_topics_that_differ_from_the_settings_are_said(kafka: KafkaSettings, tmp_path: Path) -> None:
    assert await topic_mismatches(kafka) == []  # created from these settings
    wider = kafka.topics.model_copy(update={"partitions": 4, "replication_factor": 3})
    other = kafka.model_copy(update={"topics": wider})
    differ = await topic_mismatches(other)
    assert f"{kafka.topics.raw} has 3 partitions, the settings 4" in differ
    assert f"{kafka.topics.raw} has replication 1, the settings 3" in differ
    # `finpulse topics` says so and exits 1 (it said "all present" and left replication at 1).
    (tmp_path / "none.toml").write_text("")
    env = {"FINPULSE_CONFIG": str(tmp_path / "none.toml"), "FINPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
           "FINPULSE_KAFKA_TOPICS": wider.model_dump_json()}  # fmt: skip
    result = await asyncio.to_thread(CliRunner().invoke, app, ["topics"], env=env)
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert f"differs: {kafka.topics.raw} has 3 partitions, the settings 4" in said
    assert "Kafka keeps a topic as it was created" in said
