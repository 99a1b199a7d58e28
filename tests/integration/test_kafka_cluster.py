"""The stream on a Kafka cluster: three local KRaft nodes (broker and controller each), topics
replicated three times, `min.insync.replicas=2` as the README asks of production. The node
coordinating the worker's consumer group is SIGKILLed mid-stream: nothing lost, nothing counted
twice, one alert."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from api.status import coordinator, kafka_status
from finpulse.kafka_local import LocalKafka, _kafka_uuid
from finpulse.processes import CliProcess, settings_env
from finpulse.schema import AlertEvent
from finpulse.settings import KafkaSettings, Settings
from finpulse.topics import TopicSpec, ensure_topics, kafka_admin
from ingest.replay import publish_replay_async
from tests.conftest import free_port, own_topics
from tests.stream_checks import assert_every_window_counts_its_input, read_until, replay

NODES = 3


class ClusterNode(LocalKafka):
    """LocalKafka's lifecycle (start, stop, pid file) with a cluster node's config and shared id."""

    def __init__(self, settings: KafkaSettings, node: int, voters: str, cluster_id: str) -> None:
        super().__init__(settings)
        self.node, self.voters, self.cluster_id = node, voters, cluster_id

    def _properties(self) -> str:
        """The one-node config, with this node's id, every node's controller and replication 3."""
        cluster = {
            "node.id": self.node,
            "controller.quorum.voters": self.voters,
            "offsets.topic.replication.factor": 3,
            "transaction.state.log.replication.factor": 3,
            "transaction.state.log.min.isr": 2,
            "min.insync.replicas": 2,
        }
        kept = [line for line in super()._properties().splitlines() if line.split("=")[0] not in cluster]
        return "\n".join(kept + [f"{key}={value}" for key, value in cluster.items()]) + "\n"

    def _cluster_id(self) -> str:
        return self.cluster_id


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[int, ClusterNode]]:
    """Three nodes, started together: a node answers once a quorum of controllers elected a leader."""
    ports = {node: (free_port(), free_port()) for node in range(1, NODES + 1)}
    voters = ",".join(f"{node}@127.0.0.1:{controller}" for node, (_, controller) in ports.items())
    cluster_id = _kafka_uuid()
    nodes = {}
    for node, (port, controller) in ports.items():
        own = KafkaSettings(bootstrap=f"127.0.0.1:{port}", local_port=port, local_controller_port=controller,
                            local_dir=tmp_path / f"kafka-{node}")  # fmt: skip
        nodes[node] = ClusterNode(own, node, voters, cluster_id)
    try:
        with ThreadPoolExecutor(NODES) as pool:
            list(pool.map(LocalKafka.start, nodes.values()))
        yield nodes
    finally:
        with ThreadPoolExecutor(NODES) as pool:
            list(pool.map(LocalKafka.stop, nodes.values()))


async def test_a_node_killed_mid_stream_loses_and_double_counts_nothing(
    cluster: dict[int, ClusterNode],
    stream_settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bootstrap = ",".join(node.bootstrap for node in cluster.values())
    kafka = own_topics(KafkaSettings(bootstrap=bootstrap))
    kafka = kafka.model_copy(update={"topics": kafka.topics.model_copy(update={"replication_factor": 3})})
    settings = stream_settings.model_copy(update={"kafka": kafka})
    await ensure_topics(kafka)  # the worker creates its own topics as it starts
    async with kafka_admin(kafka) as admin:  # the partitions are on every node
        described = await admin.describe_topics([kafka.topics.raw])
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, kafka.topics.raw)], include_synonyms=True
        )
    assert {len(p["replicas"]) for p in described[0]["partitions"]} == {NODES}
    # acks=all means two brokers have it, whatever the brokers' own default says: the topic's own
    # setting (config source 1), not the nodes' (these set it too, as the README advises).
    [(*_, entries)] = configs[0].resources
    assert {entry[0]: entry[1:4:2] for entry in entries}["min.insync.replicas"] == ("2", 1)
    # Topics of one replica on this cluster: created, and said.
    with caplog.at_level("WARNING", logger="finpulse.topics"):
        await ensure_topics(kafka, [TopicSpec(f"{kafka.topics.raw}.single", 1, 1)])
    assert f"creating 1 topics with replication 1 on a cluster of {NODES} brokers" in caplog.text

    truth = replay(settings, tmp_path, spike=True)
    worker = CliProcess(["worker", "--loglevel", "info"], settings_env(settings), tmp_path / "worker.log")
    try:
        worker.start()
        publishing = asyncio.create_task(publish_replay_async(kafka, truth.path, speed=0))
        scored = await read_until(settings, kafka.topics.scored, truth.items // 3, 120)
        assert len(scored) >= truth.items // 3, worker.tail()
        healthy = await kafka_status(settings)
        assert (healthy.brokers, healthy.under_replicated) == (NODES, {})
        # The node coordinating the worker's group goes: its commits and heartbeats move to another.
        async with kafka_admin(kafka) as admin:
            victim = cluster[await coordinator(admin, settings.stream.app_id)]
        pid = (await asyncio.to_thread(victim.status)).pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert (await publishing).published == truth.items
        await assert_every_window_counts_its_input(settings, truth, worker)
        events = [AlertEvent.from_bytes(v) for v in await read_until(settings, kafka.topics.alerts, 2, 10)]
        assert len({e.alert_id for e in events if e.state == "fired"}) == 1, worker.tail()
        assert worker.running, worker.tail()
        # `finpulse status` says a broker is missing: every partition is one in-sync replica short
        # once the controller fenced the node (its session timeout, 9 s).
        for _ in range(60):
            now = await kafka_status(settings)
            if sum(now.under_replicated.values()) == now.partitions:
                break
            await asyncio.sleep(0.5)
        assert now.brokers == NODES - 1
        assert now.under_replicated[kafka.topics.raw] == kafka.topics.partitions
        assert sum(now.under_replicated.values()) == now.partitions > 0
    finally:
        worker.stop()
