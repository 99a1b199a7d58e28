"""`finpulse status` on a cluster: its live brokers, and partitions short of in-sync replicas."""

from __future__ import annotations

from api.status import KafkaStatus, cluster_text


def test_a_healthy_cluster_is_its_broker_count() -> None:
    assert cluster_text(KafkaStatus([], [], brokers=3, partitions=27)) == "answering, 3 brokers"
    assert cluster_text(KafkaStatus([], [])) == "answering, 1 broker"


def test_partitions_short_of_in_sync_replicas_are_counted_per_topic() -> None:
    status = KafkaStatus([], [], brokers=2, partitions=27, under_replicated={"news.raw": 2, "news.scored": 1})
    assert cluster_text(status) == (
        "answering, 2 brokers; [yellow]3 of 27 partitions with fewer in-sync replicas than replicas "
        "(news.raw 2, news.scored 1): a broker is down or behind[/yellow]"
    )
