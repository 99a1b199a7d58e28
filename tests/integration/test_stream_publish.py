"""The score stage when Kafka refuses its output: the worker stops, and acks nothing it did not publish.

Real broker (news.scored set to a record limit no scored story fits), real worker
process, real classifier.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from finpulse.processes import CliProcess
from finpulse.settings import Settings
from finpulse.topics import kafka_admin
from ingest.replay import publish_replay_async
from ingest.sample import write_planted_spike
from tests.fixtures.stream import REPLAY_START
from tests.kafka_io import read_topic


async def test_a_batch_kafka_refuses_stops_the_worker_and_is_not_acked(
    stream_settings: Settings, worker: CliProcess, tmp_path: Path
) -> None:
    kafka = stream_settings.kafka
    async with kafka_admin(kafka) as admin:
        # A refusal that retrying cannot mend (MessageSizeTooLarge) on every story.
        tiny = ConfigResource(ConfigResourceType.TOPIC, kafka.topics.scored, {"max.message.bytes": "64"})
        await admin.alter_configs([tiny])
    truth = write_planted_spike(
        stream_settings.model.train_data_dir, tmp_path / "replay.jsonl", start=REPLAY_START, spike=False
    )
    await publish_replay_async(kafka, truth.path, speed=0)
    worker.start()
    deadline = asyncio.get_running_loop().time() + 60
    while worker.running:
        assert asyncio.get_running_loop().time() < deadline, worker.tail()
        await asyncio.sleep(0.5)
    assert worker.returncode not in (0, None), worker.tail()
    log = worker.log.read_text(errors="replace")
    assert "could not publish a scored batch" in log, worker.tail()
    assert "MessageSizeTooLarge" in log, worker.tail()
    # Nothing was acked: the group committed no news.raw offset, so a restart scores it all.
    async with kafka_admin(kafka) as admin:
        committed = await admin.list_consumer_group_offsets(stream_settings.stream.app_id)
    raw = {tp.partition: at.offset for tp, at in committed.items() if tp.topic == kafka.topics.raw}
    assert all(offset <= 0 for offset in raw.values()), raw
    assert await read_topic(kafka, kafka.topics.scored, expect=1, timeout_s=2) == []
