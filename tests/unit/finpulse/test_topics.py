"""A run's own topics: pure renaming, no broker."""

from __future__ import annotations

from finpulse.settings import Settings
from finpulse.topics import dead_letter_topic, pipeline_topics, run_settings


def test_a_run_s_topics_and_app_all_start_with_its_prefix() -> None:
    base = Settings()
    run = run_settings(base, "demo-42")
    names = [spec.name for spec in pipeline_topics(run.kafka.topics)]
    assert len(names) == 8
    assert all(n.startswith("demo-42.") for n in names), names
    assert run.kafka.topics.raw == f"demo-42.{base.kafka.topics.raw}"
    assert dead_letter_topic(run.kafka.topics.alerts, run.kafka.topics) in names
    assert run.stream.app_id == "demo-42"  # the worker's changelogs: "demo-42-..."
    # Everything else is the base's; the base is untouched.
    assert run.kafka.bootstrap == base.kafka.bootstrap
    assert run.kafka.topics.partitions == base.kafka.topics.partitions
    assert base.kafka.topics.raw == "news.raw"
    assert not base.stream.app_id.startswith("demo-42")
