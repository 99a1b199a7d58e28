"""`finpulse status` on the real broker, a real store and the quick model."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import duckdb
from aiokafka import AIOKafkaProducer, TopicPartition

from finpulse.schema import DeadLetter
from finpulse.settings import KafkaSettings
from finpulse.topics import kafka_consumer, send_dead_letter
from store import DuckDBStore
from store.migrations import LATEST_VERSION
from tests.conftest import FINPULSE, free_port
from tests.fixtures.feeds import FeedServer
from tests.fixtures.store import known_items, seed_known
from tests.kafka_io import commit_offsets, read_topic


async def _traffic(kafka: KafkaSettings, worker_group: str, uncommitted: int = 0) -> None:
    """Five stories on news.raw, the worker's group three of them through, one dead letter;
    `uncommitted` more on a partition the group has committed nothing of."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(kafka.topics.raw, b"{}", key=f"s{i}".encode(), partition=0)
        for i in range(uncommitted):
            await producer.send_and_wait(kafka.topics.raw, b"{}", key=f"u{i}".encode(), partition=1)
        letter = DeadLetter.wrap(
            source_topic=kafka.topics.raw, stage="score", error=ValueError("x"), value=b"{}"
        )
        await send_dead_letter(producer, kafka.topics, letter)
    finally:
        await producer.stop()
    await commit_offsets(kafka, worker_group, {TopicPartition(kafka.topics.raw, 0): 3})


def _status(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", **env}
    return subprocess.run([str(FINPULSE), "status"], env=env, capture_output=True, text=True, timeout=120)


async def _status_while_consuming(env: dict[str, str], kafka: KafkaSettings, group: str) -> tuple[int, str]:
    """`finpulse status` while a consumer of `group` (client id "dispatcher-x") is a live member."""
    member = {"group_id": group, "client_id": "dispatcher-x"}
    async with kafka_consumer(kafka, kafka.topics.alerts, **member) as consumer:
        await consumer.getmany(timeout_ms=1000)  # joined: the group has its member
        proc = await asyncio.create_subprocess_exec(
            str(FINPULSE), "status", env={**os.environ, "COLUMNS": "200", **env},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


def _row(out: str, first: str) -> list[str]:
    """The cells of the table row starting with `first`."""
    for line in out.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if cells and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r} in:\n{out}")


def test_status_shows_records_dead_letters_lag_store_and_model(
    kafka: KafkaSettings, tmp_path: Path, quick_model_dir: Path
) -> None:
    app = f"status-{uuid.uuid4().hex[:8]}"
    asyncio.run(_traffic(kafka, app, uncommitted=4))
    store = tmp_path / "history.duckdb"
    with DuckDBStore(store) as db:
        seed_known(db)
    env = {
        "FINPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "FINPULSE_KAFKA_TOPICS": kafka.topics.model_dump_json(),
        "FINPULSE_STREAM_APP_ID": app,
        "FINPULSE_ALERTS_CONSUMER_GROUP": f"{app}-alerts",
        "FINPULSE_STORE_URL": f"duckdb:///{store}",
        "FINPULSE_MODEL_MODEL_DIR": str(quick_model_dir),
    }
    code, out = asyncio.run(_status_while_consuming(env, kafka, f"{app}-alerts"))
    assert code == 0, out
    assert f"kafka {kafka.bootstrap}: answering, 1 broker\n" in out  # its partitions all in sync
    assert _row(out, kafka.topics.raw) == [kafka.topics.raw, "9", "1"]
    assert _row(out, kafka.topics.scored) == [kafka.topics.scored, "0", "0"]
    # The worker's group is six stories behind on news.raw (two on the partition it committed,
    # four on one it has not reached) with no member now (it committed and left); the history
    # sink never ran; the dispatcher's consumer is a live member.
    assert _row(out, app) == [app, "worker", kafka.topics.raw, "6"]
    lines = out.splitlines()
    worker = next(i for i, line in enumerate(lines) if f"│ {app} " in line)
    assert "no member (Empty)" in lines[worker + 1]  # the role cell's second line
    assert _row(out, f"{app}-history") == [f"{app}-history", "history sink", "(nothing committed yet)", "-"]
    assert "no member (Dead)" in out
    assert re.search(r"1: dispatcher-x@[\d.]+", out), out
    assert "not running now (worker, history sink)" in out
    latest = max(s.scored_at for s in known_items()).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"{len(known_items())} scored stories (latest scored {latest})" in out
    card = json.loads((quick_model_dir / "card.json").read_text())
    assert f"model: {card['version']} in {quick_model_dir}" in out
    assert f"topic {card['metrics']['topic']['accuracy']:.3f}" in out

    # No broker: says so, exit 1, and still reports the rest.
    down = _status(
        env
        | {"FINPULSE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}", "FINPULSE_KAFKA_REQUEST_TIMEOUT_S": "2"}
    )
    assert down.returncode == 1
    assert "cannot reach Kafka" in down.stdout
    assert "scored stories" in down.stdout
    assert f"model: {card['version']}" in down.stdout


async def _watch_while_producing(env: dict[str, str], kafka: KafkaSettings) -> str:
    """`finpulse status --watch 1 --looks 2` with 10 stories sent to news.raw after its first look."""
    proc = await asyncio.create_subprocess_exec(
        str(FINPULSE), "status", "--watch", "1", "--looks", "2", env={**os.environ, "COLUMNS": "200", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    while not re.match(r"\d\d:\d\d:\d\d ", lines[-1] if lines else ""):
        lines.append((await asyncio.wait_for(proc.stdout.readline(), 60)).decode())
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(kafka.topics.raw, b"{}", key=f"w{i}".encode(), partition=0)
    finally:
        await producer.stop()
    rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    return "".join(lines) + rest.decode()


def test_watch_shows_rates_and_lag_changes(kafka: KafkaSettings) -> None:
    app = f"watch-{uuid.uuid4().hex[:8]}"
    asyncio.run(_traffic(kafka, app))  # 5 stories, the worker's group 2 behind, 1 dead letter
    env = {
        "FINPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "FINPULSE_KAFKA_TOPICS": kafka.topics.model_dump_json(),
        "FINPULSE_STREAM_APP_ID": app,
        "FINPULSE_ALERTS_CONSUMER_GROUP": f"{app}-alerts",
    }
    out = asyncio.run(_watch_while_producing(env, kafka))
    header, first, second = (line.split() for line in out.splitlines()[1:4])
    assert header[:2] == ["UTC", "raw/s"]
    assert first[1:5] == ["-", "-", "-", "-"]
    assert first[5] == "2"  # the worker's lag at the first look
    assert float(second[1]) > 0  # stories flowed into news.raw between the looks
    assert second[5:7] == ["12", "(+10)"]  # nothing consumed them: the worker's lag grew by ten
    assert second[-2:] == ["1", "(+0)"]  # the one dead letter, none new


def test_status_shows_each_sources_health_as_the_ingestor_published_it(
    kafka: KafkaSettings, tmp_path: Path, feed_server: FeedServer
) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[feeds]]\nname = "guardian-business"\nurl = "{feed_server.url("f/real-world/guardian.rss")}"\n'
        f'[[feeds]]\nname = "broken"\nurl = "{feed_server.url("html-error")}"\n'
        f'[[feeds]]\nname = "paused"\nurl = "{feed_server.url("f/real-world/heise.atom")}"\nenabled = false\n'
    )
    env = {
        "FINPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "FINPULSE_KAFKA_TOPICS": kafka.topics.model_dump_json(),
        "FINPULSE_INGEST_SOURCES_FILE": str(sources),
        "FINPULSE_INGEST_STATE_DIR": str(tmp_path / "ingest"),
        "FINPULSE_INGEST_ALLOW_PRIVATE_HOSTS": "true",
        "FINPULSE_STORE_URL": f"duckdb:///{tmp_path / 'none.duckdb'}",
    }
    before = _status(env)
    assert "no ingestor has published on ingest.sources." in before.stdout  # none has started

    once = subprocess.run(
        [str(FINPULSE), "ingest", "--once"],
        env={**os.environ, **env, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert once.returncode == 0, once.stdout + once.stderr
    # Its summary at 80 columns: each source's name whole, its error under the table.
    summary = once.stdout
    assert "…" not in summary, summary
    assert re.search(r"\n *guardian-business +ok +55 +0 +0 +en 55", summary), summary
    assert re.search(r"\n *broken +error +0 +0 +0 *\n", summary), summary
    assert "\nerror broken: not_a_feed" in summary, summary
    # Read on "another host": neither the ingestor's sources file nor its state dir.
    elsewhere = {
        "FINPULSE_INGEST_SOURCES_FILE": str(tmp_path / "none.toml"),
        "FINPULSE_INGEST_STATE_DIR": "/nonexistent",
    }
    out = _status(env | elsewhere)
    assert out.returncode == 0, out.stdout
    guardian = _row(out.stdout, "guardian-business")
    assert guardian[:4] == ["guardian-business", "feed", "ok", guardian[3]]
    assert guardian[3].endswith("s ago")
    assert guardian[5].startswith("in "), guardian  # its next poll, an interval on (it said "never")
    published = int(guardian[4].replace(",", ""))
    assert published == len(asyncio.run(read_topic(kafka, kafka.topics.raw, expect=published)))
    broken = _row(out.stdout, "broken")
    assert broken[:4] == ["broken", "feed", "failing", "never"]
    assert "\nfailing broken: 1 failed poll in a row: not_a_feed" in out.stdout  # why, under the table
    assert _row(out.stdout, "paused")[:3] == ["paused", "feed", "disabled"]
    # At 80 columns names and health stay whole, and the reason wraps under the table.
    narrow = _status(env | elsewhere | {"COLUMNS": "80"})
    assert _row(narrow.stdout, "guardian-business")[:3] == ["guardian-business", "feed", "ok"]
    assert _row(narrow.stdout, "broken")[:3] == ["broken", "feed", "failing"]
    assert "failing broken: 1 failed poll in a row: not_a_feed" in " ".join(narrow.stdout.split())
    assert f"published them on {kafka.topics.sources}" in out.stdout.replace("\n", "")


def test_a_store_newer_than_this_finpulse_is_said_and_the_report_goes_on(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    """Its configuration error ended the report at the store line (exit 2): no model, no sources.
    Said like a store that does not answer: the exit status stays Kafka's."""
    store = tmp_path / "history.duckdb"
    with DuckDBStore(store):
        pass
    with duckdb.connect(str(store)) as con:
        con.execute(
            "INSERT INTO schema_version (version, description) VALUES (?, 'later')", [LATEST_VERSION + 1]
        )
    env = {
        "FINPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "FINPULSE_KAFKA_TOPICS": kafka.topics.model_dump_json(),
        "FINPULSE_STORE_URL": f"duckdb:///{store}",
        "FINPULSE_MODEL_MODEL_DIR": str(tmp_path / "model"),
    }
    done = _status(env)
    out = " ".join(done.stdout.split())
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"has schema version {LATEST_VERSION + 1}, newer than this finpulse knows" in out
    assert f"model: none in {tmp_path / 'model'}" in out
    assert f"sources: no ingestor has published on {kafka.topics.sources} yet" in out
