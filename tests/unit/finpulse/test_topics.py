"""A run's own topics (pure renaming), and stopping a consumer; no broker."""

from __future__ import annotations

import asyncio
import json

import pytest

from finpulse.settings import Settings
from finpulse.topics import dead_letter_topic, pipeline_topics, run_env, run_settings, stop_consumer


def test_a_run_s_topics_and_app_all_start_with_its_prefix() -> None:
    base = Settings()
    run = run_settings(base, "demo-42")
    names = [spec.name for spec in pipeline_topics(run.kafka.topics)]
    assert len(names) == 8
    assert all(n.startswith("demo-42.") for n in names), names
    assert run.kafka.topics.raw == f"demo-42.{base.kafka.topics.raw}"
    assert dead_letter_topic(run.kafka.topics.alerts, run.kafka.topics) in names
    assert run.stream.app_id == "demo-42"  # the worker's changelogs: "demo-42-..."
    # The dispatcher's group too: the live group never commits offsets of a run's topics.
    assert run.alerts.consumer_group == "demo-42-alerts"
    assert base.alerts.consumer_group == "finpulse-alerts"
    # Its environment gives another process the same names.
    env = run_env(run)
    assert env["FINPULSE_STREAM_APP_ID"] == "demo-42"
    assert env["FINPULSE_ALERTS_CONSUMER_GROUP"] == "demo-42-alerts"
    assert json.loads(env["FINPULSE_KAFKA_TOPICS"])["alerts"] == run.kafka.topics.alerts
    # Everything else is the base's; the base is untouched.
    assert run.kafka.bootstrap == base.kafka.bootstrap
    assert run.kafka.topics.partitions == base.kafka.topics.partitions
    assert base.kafka.topics.raw == "news.raw"
    assert not base.stream.app_id.startswith("demo-42")


class _Consumer:
    """Stops as aiokafka's consumer does after a broker went away mid-fetch (aio-libs/aiokafka#647),
    or, `slow`, takes its time."""

    def __init__(self, *, slow: bool = False) -> None:
        self.slow, self.stopping = slow, asyncio.Event()

    async def stop(self) -> None:
        self.stopping.set()
        if self.slow:
            await asyncio.sleep(30)
        raise asyncio.CancelledError


async def test_a_cancellation_aiokafka_lets_out_of_stop_does_not_end_the_caller() -> None:
    await stop_consumer(_Consumer())  # returns: the cancellation was not the caller's


async def test_the_callers_own_cancellation_while_it_stops_a_consumer_goes_through() -> None:
    consumer = _Consumer(slow=True)
    task = asyncio.create_task(stop_consumer(consumer))
    await consumer.stopping.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
