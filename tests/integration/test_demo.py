"""`finpulse demo` end to end on the session's broker: a second run fires its alert too; its wait
for the alert."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import duckdb
import pytest
from aiokafka import AIOKafkaProducer

from api.trend_plot import alert_chart
from finpulse.demo import DEMO_PREFIX, _first_alert
from finpulse.errors import FinpulseError
from finpulse.processes import CliProcess
from finpulse.schema import AlertEvent
from finpulse.settings import KafkaSettings, Settings
from finpulse.topics import ensure_topics, topics_starting
from store import DuckDBStore
from tests.conftest import FINPULSE, free_port, own_topics
from tests.unit.alerts.events import alert


def test_demo_fires_its_alert_on_every_run(
    kafka_settings: KafkaSettings, quick_model_dir: Path, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "FINPULSE_DATA_DIR": str(tmp_path / "data"),
        "FINPULSE_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "FINPULSE_MODEL_MODEL_DIR": str(quick_model_dir),
        "FINPULSE_STORE_URL": f"duckdb:///{tmp_path / 'history.duckdb'}",
        "FINPULSE_INGEST_STATE_DIR": str(tmp_path / "ingest"),
        "FINPULSE_API_PORT": str(free_port()),
        "COLUMNS": "200",
    }
    for _ in range(2):  # the second run replays over the first one's event times
        done = subprocess.run(
            [FINPULSE, "demo", "--no-keep-running"], env=env, capture_output=True, text=True, timeout=420
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        # No error logged on the way (an early return from a read's generator logged one).
        assert " ERROR " not in done.stdout + done.stderr, done.stdout[-3000:] + done.stderr[-3000:]
        assert "5. alert fired" in done.stdout
        assert "Services stopped (no terminal to keep them for)" in " ".join(done.stdout.split())
        assert "ticker ACME: negative share" in done.stdout
        assert "/16 stories, p=" in done.stdout  # a window of the burst (16 stories), not a calm one (8)
        # Its evidence is news about Acme, not other companies' headlines filed under ACME.
        evidence = [line for line in done.stdout.splitlines() if line.startswith("│   - ")]
        assert evidence, done.stdout
        assert all("Acme" in line for line in evidence), evidence
        # Ingested by `finpulse ingest` from a replay source: all of it, none invalid, English (the
        # replay says so: most headlines are too short for a confident guess; a few labelled
        # posts are truly in another language, "en 267, it 1").
        assert re.search(r"\n *demo-replay +ok +2\d\d +\d+ +0 +en 2\d\d", done.stdout), done.stdout
    # Only the latest run's topics are left on the broker.
    topics = asyncio.run(topics_starting(kafka_settings, DEMO_PREFIX))
    [run] = {re.match(rf"{DEMO_PREFIX}(\d+)", t).group(1) for t in topics}  # type: ignore[union-attr]
    # Its env file points `finpulse status` at them: the stories went through every stage.
    env_file = tmp_path / "data" / "demo" / "env.sh"
    assert f"source {env_file}" in done.stdout
    status = subprocess.run(
        ["bash", "-c", f"source {env_file} && {FINPULSE} status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    # and `finpulse alerts ...` at the subscriptions the run's worker and dispatcher read.
    check = subprocess.run(
        ["bash", "-c", f"source {env_file} && {FINPULSE} alerts check"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith("acme-desk:"), check.stdout
    assert "1 subscription OK" in check.stdout, check.stdout
    raw = next(line for line in status.stdout.splitlines() if f"{DEMO_PREFIX}{run}.news.raw " in line)
    assert int(raw.split("│")[2].replace(",", "")) > 100, status.stdout
    # Its dispatcher's group is the run's own: the live one ("finpulse-alerts") holds no offsets of
    # topics a later run deletes.
    dispatcher = next(line for line in status.stdout.splitlines() if "alert dispatcher" in line)
    assert f"{DEMO_PREFIX}{run}-alerts " in dispatcher, status.stdout
    # The replay source's health, as the dashboard's sources panel shows it.
    source = next(line for line in status.stdout.splitlines() if "demo-replay" in line)
    assert "replay" in source.replace("demo-replay", "")
    assert " ok " in source, status.stdout
    assert source.rstrip(" │").endswith("read once"), source  # its next poll: none, the file was read
    # The history store holds the stories and the alert: the trend marks where it fired.
    assert "finpulse history trend ticker:ACME --granularity 5min" in done.stdout
    command = f"{FINPULSE} history trend ticker:ACME --granularity 5min --rows 1000"
    trend = subprocess.run(
        ["bash", "-c", f"source {env_file} && {command}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert trend.returncode == 0, trend.stdout + trend.stderr
    fired = [line for line in trend.stdout.splitlines() if "▲ acme-desk" in line]
    assert fired, trend.stdout
    # The subscription's digest over the same store names the spiking ticker.
    assert "finpulse alerts digest -s acme-desk --sink console" in done.stdout
    digest = subprocess.run(
        ["bash", "-c", f"source {env_file} && {FINPULSE} alerts digest -s acme-desk --sink console"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert digest.returncode == 0, digest.stdout + digest.stderr
    assert "digest ACME negative news: 24 hours to" in digest.stdout
    assert "ticker ACME:" in digest.stdout
    assert "alert " in digest.stdout  # the alert it fired
    # The alert's chart link (printed, and in the console sink's log) draws from that store.
    [alert_id] = re.findall(r"its chart: http://\S+/feedback/([^/\s]+)/chart\.png", done.stdout)
    log = (tmp_path / "data" / "demo" / "alerts.log").read_text(encoding="utf-8")
    assert f"/feedback/{alert_id}/chart.png" in log
    # Each run's logs are its own: the worker's names this run's app alone.
    worker_log = (tmp_path / "data" / "demo" / "worker.log").read_text(encoding="utf-8")
    assert re.findall(r"\| id +\| (\S+)", worker_log) == [f"{DEMO_PREFIX}{run}"], worker_log[-3000:]
    # The demo's history store is its own, and holds this run's stories alone (not the first
    # run's again); the store the settings name is untouched.
    demo_store = tmp_path / "data" / "demo" / "history.duckdb"
    assert not (tmp_path / "history.duckdb").exists()
    with duckdb.connect(str(demo_store), read_only=True) as con:
        [(stories,)] = con.execute("SELECT count(*) FROM scored_items").fetchall()
    assert 200 < stories <= 268, stories
    with DuckDBStore(demo_store, read_only=True) as db:
        alert = db.get_alert(unquote(alert_id))
        assert alert is not None
        assert (alert_chart(db, alert) or b"").startswith(b"\x89PNG")
    # And the dashboard's view of it: the alert's entity around its window.
    view = re.search(r"the alert there: (http://\S+)", done.stdout)
    assert view is not None, done.stdout
    assert "/?kind=ticker&entity=ACME&range=custom&from=" in view.group(1)


def test_demo_waits_for_its_alert_and_says_when_a_service_exited(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    settings = Settings(kafka=kafka)

    async def publish_later(*events: AlertEvent) -> None:
        await asyncio.sleep(2)  # after the wait's first look at the (empty) topic
        async with AIOKafkaProducer(bootstrap_servers=kafka.bootstrap) as producer:
            for event in events:
                await producer.send_and_wait(kafka.topics.alerts, event.to_bytes())

    async def wait_meanwhile() -> AlertEvent:
        publishing = asyncio.create_task(publish_later(alert(1, entity="MEGA"), alert(2, entity="ACME")))
        found = await _first_alert(settings, [], tmp_path)
        await publishing
        return found

    # Another ticker's alert is passed over; ACME's, published while it waits, is the one.
    assert asyncio.run(wait_meanwhile()).alert_id == alert(2, entity="ACME").alert_id
    # A service that has exited ends the wait with its name, status and log, not a timeout.
    exited = CliProcess(["kafka", "--help"], dict(os.environ), tmp_path / "kafka.log").start()
    assert exited.proc is not None
    exited.proc.wait(timeout=60)
    empty = Settings(kafka=own_topics(kafka))
    asyncio.run(ensure_topics(empty.kafka))
    with pytest.raises(
        FinpulseError, match=r"a service exited before the alert: kafka \(exit 0, log \S+kafka\.log\)"
    ):
        asyncio.run(_first_alert(empty, [exited], tmp_path))
