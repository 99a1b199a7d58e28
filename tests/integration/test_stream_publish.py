"""The score stage when Kafka refuses its output: the worker stops, and acks nothing it did not publish.

Real broker (news.scored set to a record limit no scored story fits), real worker
process, real classifier.
"""

from __future__ import annotations

from pathlib import Path

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from finpulse.processes import CliProcess
from finpulse.settings import Settings
from finpulse.topics import kafka_admin
from tests.fixtures.stream import calm_replay_until_exit
from tests.kafka_io import committed, read_topic


async def test_a_batch_kafka_refuses_stops_the_worker_and_is_not_acked(
    stream_settings: Settings, worker: CliProcess, tmp_path: Path
) -> None:
    kafka = stream_settings.kafka
    async with kafka_admin(kafka) as admin:
        # A refusal that retrying cannot mend (MessageSizeTooLarge) on every story.
        tiny = ConfigResource(ConfigResourceType.TOPIC, kafka.topics.scored, {"max.message.bytes": "64"})
        await admin.alter_configs([tiny])
    await calm_replay_until_exit(stream_settings, worker, tmp_path)
    assert worker.returncode not in (0, None), worker.tail()
    log = worker.log.read_text(errors="replace")
    assert "could not publish a scored batch" in log, worker.tail()
    assert "MessageSizeTooLarge" in log, worker.tail()
    # Nothing was acked: the group committed no news.raw offset, so a restart scores it all.
    raw = await committed(kafka, stream_settings.stream.app_id, kafka.topics.raw)
    assert all(offset <= 0 for offset in raw.values()), raw
    assert await read_topic(kafka, kafka.topics.scored, expect=1, timeout_s=2) == []
