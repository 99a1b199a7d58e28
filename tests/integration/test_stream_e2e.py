"""The stream end to end: replay -> Kafka -> worker (quick-trained model) -> windows -> alerts.

Real broker, real Faust worker process, real classifier. Expected window
counts come from the replay file itself through the same window bounds (tests/stream_checks.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from datetime import datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from api.backtest import BacktestRequest, run_from_store
from finpulse.kafka_local import LocalKafka
from finpulse.processes import CliProcess, settings_env
from finpulse.schema import AlertEvent, DeadLetter
from finpulse.settings import KafkaSettings, Settings
from finpulse.topics import dead_letter_topic, ensure_topics, pipeline_topics
from ingest.replay import publish_replay_async
from ingest.sample import PlantedSpike
from store import open_store
from stream.topics import by_entity_topic
from tests.conftest import free_port
from tests.fixtures.stream import REPLAY_START
from tests.kafka_io import commits_reach, end_offsets, group_members, read_topic
from tests.stream_checks import (
    ALERT_WAIT_S,
    assert_every_window_counts_its_input,
    expected_counts,
    read_until,
    replay,
)

GERMAN = "Western Union und italienisches Unternehmen Postepay ermöglichen grenzübergreifende Zahlungen"


# On PostgreSQL too: the worker process writes its history there, the backtest reads it back.
@pytest.mark.parametrize("store_backend", ["duckdb", "postgresql"])
async def test_planted_spike_fires_exactly_one_alert_with_evidence(
    stream_settings: Settings, worker: CliProcess, tmp_path: Path
) -> None:
    truth = replay(stream_settings, tmp_path, spike=True)
    worker.start()
    report = await publish_replay_async(stream_settings.kafka, truth.path, speed=0)
    assert report.published == truth.items

    raw = await read_until(stream_settings, stream_settings.kafka.topics.alerts, 1, ALERT_WAIT_S)
    events = [AlertEvent.from_bytes(v) for v in raw]
    fired = [e for e in events if e.state == "fired"]
    assert len(fired) == 1, worker.tail()
    alert = fired[0]
    assert (alert.subscription_id, alert.entity_kind, alert.entity) == ("acme-desk", "ticker", "ACME")
    # Detected within two windows of the spike's start, and inside the spike.
    assert truth.spike_start <= alert.window_start < truth.spike_end
    assert alert.negative_share >= alert.baseline_negative_share + 0.2
    assert alert.p_value <= alert.significance
    assert alert.channel == "#acme-alerts"
    spike_titles = {
        json.loads(line)["title"]
        for line in truth.path.read_text().splitlines()
        if truth.spike_start <= datetime.fromisoformat(json.loads(line)["published_at"]) < truth.spike_end
    }
    assert alert.top_headlines
    assert {h.title for h in alert.top_headlines} <= spike_titles
    # Every event is about the planted entity; a resolve (if any) closes the fired alert.
    assert all(e.entity == "ACME" for e in events)
    assert all(e.fired_alert_id == alert.alert_id for e in events if e.state == "resolved")
    await assert_backtest_reproduces(stream_settings, events, truth)
    await assert_aggregate_commits(stream_settings, worker)


async def assert_aggregate_commits(settings: Settings, worker: CliProcess) -> None:
    """The aggregate and detect stages commit as they go (a restart replays only what it had not committed),
    also past records its consumer skipped and it read back (stream/skipped.py)."""
    app_id = settings.stream.app_id
    short = await commits_reach(settings.kafka, app_id, by_entity_topic(app_id), timeout_s=30)
    assert not short, f"by-entity partition: (committed, end): {short}\n{worker.tail()}"
    # The detect stage commits as it goes too.
    short = await commits_reach(settings.kafka, app_id, settings.kafka.topics.windows, timeout_s=30)
    assert not short, f"windows partition: (committed, end): {short}\n{worker.tail()}"


async def assert_backtest_reproduces(settings: Settings, live: list[AlertEvent], truth: PlantedSpike) -> None:
    """The backtest over the history the worker stored sends exactly the live alerts."""
    store = open_store(settings.store, read_only=True)
    request = BacktestRequest(subscription_id="acme-desk", start=REPLAY_START, end=truth.end)
    deadline = asyncio.get_running_loop().time() + 60
    while True:  # the sink writes in batches: wait until it stored the alerts
        with store:
            stored = store.alert_events()
            if len(stored) >= len(live) or asyncio.get_running_loop().time() > deadline:
                outcome = run_from_store(request, settings, store, now=truth.end)
                break
        await asyncio.sleep(1)
    replayed = outcome.report.results[0].events
    # The live events as stored: a resolve can follow the fired alert the caller waited for.
    live = [
        AlertEvent.from_bytes(v)
        for v in await read_until(settings, settings.kafka.topics.alerts, len(stored), 30)
    ]

    def key(e: AlertEvent) -> tuple[str, str, datetime, int, int]:
        return (e.alert_id, e.state, e.window_end, e.count, e.negative_count)

    # A worker killed between an alert's delivery and its state's write has it sent again, under
    # the same alert_id, by the one taking over (stream/detect.py); the dispatcher posts each once.
    assert sorted(map(key, replayed)) == sorted(set(map(key, live)))


async def test_calm_replay_fires_nothing(
    stream_settings: Settings, worker: CliProcess, tmp_path: Path
) -> None:
    truth = replay(stream_settings, tmp_path, spike=False)
    worker.own_group = True  # stopped at the end by a Ctrl+C to its group, as in a terminal
    worker.start()
    await publish_replay_async(stream_settings.kafka, truth.path, speed=0)
    # Wait until the last windows closed (idle close), then look for alerts.
    expected = expected_counts(truth.path, stream_settings)
    raw = await read_until(stream_settings, stream_settings.kafka.topics.windows, len(expected), ALERT_WAIT_S)
    assert len(raw) >= len(expected), worker.tail()
    alerts = await read_topic(
        stream_settings.kafka, stream_settings.kafka.topics.alerts, expect=1, timeout_s=5
    )
    assert alerts == []
    # The history sink dead-letters a scored record it cannot read, and goes on.
    kafka = stream_settings.kafka
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(kafka.topics.scored, b'{"not": "a scored item"}', key=b"bad")
    finally:
        await producer.stop()
    dead_topic = dead_letter_topic(kafka.topics.scored, kafka.topics)
    [dead] = await read_topic(kafka, dead_topic, expect=1, timeout_s=30)
    letter = DeadLetter.from_bytes(dead.value)
    assert (letter.stage, letter.error_type, letter.key_b64) == ("history", "InvalidRecord", "YmFk")
    # The score stage dead-letters a story in a language the model does not read (the row
    # declares none: ingest detected German), and goes on.
    german = tmp_path / "german.jsonl"
    row = {"source": "wire", "title": GERMAN, "published_at": truth.end.isoformat()}
    german.write_text(json.dumps(row) + "\n")
    await publish_replay_async(kafka, german, speed=0)
    deads = await read_topic(kafka, dead_letter_topic(kafka.topics.raw, kafka.topics), expect=1, timeout_s=30)
    letters = [DeadLetter.from_bytes(d.value) for d in deads]
    assert len(letters) == 1, f"{letters}\n{worker.tail(200)}"
    letter = letters[0]
    assert (letter.stage, letter.error_type) == ("score", "UnsupportedLanguage")
    assert "language 'de' is not one the model reads (en)" in letter.reason
    assert GERMAN in (letter.original_value() or b"").decode()
    assert worker.running, worker.tail()
    # Ctrl+C stops it cleanly: no service crashes on the way out, no classifier process
    # interrupted, no extension's objects left for the interpreter's exit to report as leaked.
    assert worker.pid is not None
    os.killpg(worker.pid, signal.SIGINT)
    assert worker.proc is not None
    assert worker.proc.wait(timeout=60) == 0, worker.tail()
    log = worker.log.read_text(errors="replace")
    for trouble in ("Crashed", "KeyboardInterrupt", "leaked"):
        assert trouble not in log, worker.tail()


async def test_sigkill_and_restart_lose_and_double_count_nothing(
    stream_settings: Settings, worker: CliProcess, tmp_path: Path
) -> None:
    truth = replay(stream_settings, tmp_path, spike=True)
    worker.start()
    publishing = asyncio.create_task(publish_replay_async(stream_settings.kafka, truth.path, speed=0))
    # Kill mid-stream: once a third of the stories were scored.
    scored = await read_until(stream_settings, stream_settings.kafka.topics.scored, truth.items // 3, 120)
    assert len(scored) >= truth.items // 3, worker.tail()
    worker.kill()
    await publishing
    worker.start()
    await assert_every_window_counts_its_input(stream_settings, truth, worker)
    await assert_aggregate_commits(stream_settings, worker)


@pytest.mark.parametrize("store_backend", ["postgresql"])  # several workers: a shared store
@pytest.mark.parametrize("leaving", ["stop", "kill"])
async def test_two_workers_share_the_stream_and_one_leaving_loses_and_double_counts_nothing(
    stream_settings: Settings, worker: CliProcess, tmp_path: Path, leaving: str
) -> None:
    """Scale-out: two workers split the partitions; one leaves mid-stream (stops, or is killed:
    its partitions move once its session times out), the other takes over."""
    truth = replay(stream_settings, tmp_path, spike=True)
    other = stream_settings.model_copy(update={"data_dir": tmp_path / "data-2"})
    second = CliProcess(["worker", "--loglevel", "info"], settings_env(other), tmp_path / "worker-2.log")
    worker.start()
    second.start()
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while await group_members(stream_settings.kafka, stream_settings.stream.app_id) != ("Stable", 2):
            assert asyncio.get_running_loop().time() < deadline, worker.tail() + second.tail()
            await asyncio.sleep(0.5)
        publishing = asyncio.create_task(publish_replay_async(stream_settings.kafka, truth.path, speed=0))
        scored = await read_until(stream_settings, stream_settings.kafka.topics.scored, truth.items // 3, 120)
        assert len(scored) >= truth.items // 3, worker.tail() + second.tail()
        # The second worker takes its partitions over, tables and all.
        worker.stop() if leaving == "stop" else worker.kill()
        await publishing
        await assert_every_window_counts_its_input(stream_settings, truth, second)
        raw = await read_until(stream_settings, stream_settings.kafka.topics.alerts, 2, 10)
        events = [AlertEvent.from_bytes(v) for v in raw]
        assert len({e.alert_id for e in events if e.state == "fired"}) == 1, second.tail()
        # The history both wrote to the shared store replays to the same alerts.
        await assert_backtest_reproduces(stream_settings, events, truth)
        assert second.running, second.tail()
    finally:
        second.stop()


# Faust's consumer dropping fetched records (stream/skipped.py), simulated in the worker process:
# each news.raw record in FP_TEST_DROP ("topic:partition:start-end,...") is kept from the agent the
# first time it is fetched.
DROPPING_SITE = """
import os
from faust.transport import consumer

RANGES = [(t, int(p), *map(int, r.split("-"))) for t, p, r in
          (x.rsplit(":", 2) for x in os.environ["FP_TEST_DROP"].split(","))]
DROPPED = set()
ORIGINAL = consumer.Consumer._wait_next_records

async def _wait_next_records(self, timeout):
    records, active = await ORIGINAL(self, timeout)
    for tp in list(records or {}):
        for topic, partition, start, end in RANGES:
            if (tp.topic, tp.partition) == (topic, partition):
                drop = {r.offset for r in records[tp] if start <= r.offset < end} - DROPPED
                if drop:
                    DROPPED.update(drop)
                    print(f"simulated skip partition={partition} records={len(drop)}", flush=True)
                    records[tp] = [r for r in records[tp] if r.offset not in drop]
    return records, active

consumer.Consumer._wait_next_records = _wait_next_records
"""


async def test_records_the_consumer_skips_are_scored_all_the_same(
    stream_settings: Settings, tmp_path: Path
) -> None:
    """At a partition's start (the first record handed over is past where the group resumed),
    within a partition (the next record handed over is past the one expected: both read back from
    the broker) and at its end (no later record shows the gap: sought back once quiet)."""
    truth = replay(stream_settings, tmp_path, spike=True)
    kafka = stream_settings.kafka
    await publish_replay_async(kafka, truth.path, speed=0)
    raw = kafka.topics.raw
    ends = await end_offsets(kafka, raw)
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(DROPPING_SITE)
    env = settings_env(stream_settings) | {
        "PYTHONPATH": str(site),
        "FP_TEST_DROP": f"{raw}:0:10-20,{raw}:1:{ends[1] - 6}-{ends[1]},{raw}:2:0-8",
    }  # fmt: skip
    worker = CliProcess(["worker", "--loglevel", "info"], env, tmp_path / "worker.log").start()
    try:
        await assert_every_window_counts_its_input(stream_settings, truth, worker)
        log = worker.log.read_text(errors="replace")
        assert "simulated skip partition=0 records=10" in log, worker.tail()
        assert (
            "news.raw records skipped by the consumer, read back partition=0 offsets=10-19 records=10" in log
        )
        assert "simulated skip partition=2 records=8" in log, worker.tail()
        assert "news.raw records skipped by the consumer, read back partition=2 offsets=0-7 records=8" in log
        assert f"consumer partition=1: it stopped after offset {ends[1] - 7} of {ends[1]}" in log
    finally:
        worker.stop()


async def test_broker_restart_loses_and_double_counts_nothing(
    stream_settings: Settings, tmp_path: Path
) -> None:
    """The broker (its own, not the session's) stops cleanly mid-stream and comes back."""
    own = KafkaSettings(
        bootstrap=f"127.0.0.1:{(port := free_port())}", local_port=port, local_controller_port=free_port(),
        local_dir=tmp_path / "kafka", topics=stream_settings.kafka.topics,
    )  # fmt: skip
    settings = stream_settings.model_copy(update={"kafka": own})
    broker = LocalKafka(own)
    await asyncio.to_thread(broker.start)  # it runs its own event loop to probe the broker
    worker = CliProcess(["worker", "--loglevel", "info"], settings_env(settings), tmp_path / "worker.log")
    try:
        await ensure_topics(own, pipeline_topics(own.topics))
        truth = replay(settings, tmp_path, spike=True)
        worker.start()
        assert (await publish_replay_async(own, truth.path, speed=0)).published == truth.items
        scored = await read_until(settings, own.topics.scored, truth.items // 3, 120)
        assert len(scored) >= truth.items // 3, worker.tail()
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(3)  # the worker notices: fetches and commits fail
        await asyncio.to_thread(broker.start)
        await assert_every_window_counts_its_input(settings, truth, worker)
        assert worker.running, worker.tail()
    finally:
        worker.stop()
        await asyncio.to_thread(broker.stop)
