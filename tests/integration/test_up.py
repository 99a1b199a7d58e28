"""`finpulse up` as a newcomer runs it: real broker, quick-trained model, a feed on a loopback
server; the API, dispatcher, worker and ingestor as its children, one killed and restarted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from finpulse.processes import settings_env
from finpulse.settings import ApiSettings, IngestSettings, KafkaSettings, Settings
from tests.conftest import FINPULSE, free_port
from tests.fixtures.feeds import FeedServer


def _wait(what: str, ok: Callable[[], bool], timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.5)
    raise AssertionError(
        f"timed out waiting for {what}; finpulse up said:\n{log.read_text(errors='replace')}"
    )


def _alive(pid: int) -> bool:
    """Running (a zombie left for a reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_up_runs_every_service_restarts_one_that_dies_and_stops_them_all(
    stream_settings: Settings, ingest_settings: IngestSettings, feed_server: FeedServer, tmp_path: Path
) -> None:
    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[feeds]]\nname = "guardian"\nurl = "{feed_server.url("f/real-world/guardian.rss")}"\n'
    )
    port, ingest_port, worker_port, alerts_port = free_port(), free_port(), free_port(), free_port()
    settings = stream_settings.model_copy(
        update={
            "ingest": ingest_settings.model_copy(
                update={"sources_file": sources, "metrics_port": ingest_port}
            ),
            "api": ApiSettings(port=port),
            "stream": stream_settings.stream.model_copy(update={"metrics_port": worker_port}),
            "alerts": stream_settings.alerts.model_copy(update={"metrics_port": alerts_port}),
        }
    )
    env = {**settings_env(settings), "COLUMNS": "200"}
    out = tmp_path / "up.log"
    with out.open("wb") as log:
        up = subprocess.Popen([str(FINPULSE), "up", "--sink", "console"], env=env, stdout=log, stderr=log)
    try:

        def stored() -> int:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).json()
            except httpx.HTTPError:
                return 0
            return int(health["store"]["scored_items"])

        _wait("the feed's stories scored and stored", lambda: stored() > 0, 150, out)
        text = out.read_text()
        for name in ("api", "alerts", "worker", "ingest"):
            assert name in text
        assert f"http://127.0.0.1:{port}/" in text
        logs = settings.data_dir / "logs"
        assert "console" in text

        # Each process's Prometheus metrics: what the ingestor published, the worker scored
        # (or dead-lettered: a story in a language the model does not read).
        published = _metric(ingest_port, "finpulse_ingest_events_total", source="guardian", event="published")
        assert published > 0

        def processed() -> float:
            scored = _metric(worker_port, "finpulse_stream_scored_total")
            return scored + _metric(worker_port, "finpulse_dead_letters_total", stage="score")

        _wait("the worker to process every story", lambda: processed() == published, 60, out)
        assert _metric(worker_port, "finpulse_stream_batch_size_count") >= 1
        # Its consumer lag on news.raw: a gauge per partition it owns, down to 0 once it committed.
        raw = settings.kafka.topics.raw

        def raw_lag() -> list[float]:
            return _samples(worker_port, "finpulse_stream_consumer_lag", topic=raw)

        _wait(
            "the worker to commit every story",
            lambda: raw_lag() == [0.0] * settings.kafka.topics.partitions,
            60,
            out,
        )
        assert _metric(alerts_port, "finpulse_alerts_delivered_total") == 0  # no alert in these stories

        worker_pid = _pid_of("worker", text)
        os.kill(worker_pid, signal.SIGKILL)  # dies without a word
        _wait("the worker restarted", lambda: "worker started again" in out.read_text(), 30, out)
        text = out.read_text()
        assert "worker was killed (SIGKILL) after" in text
        assert f"Its log {logs / 'worker.log'} ends" in text
        pids = [_pid_of(name, text) for name in ("api", "alerts", "ingest")]
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(timeout=90)
    text = out.read_text()
    assert code == 0, text
    assert text.index("stopping ingest") < text.index("stopping worker") < text.index("stopping api"), text
    assert not any(_alive(pid) for pid in pids), text
    assert "stopped" in text


def _metric(port: int, name: str, **labels: str) -> float:
    """The sum of a metric's samples with these labels in a process's /metrics (0 if none)."""
    return sum(_samples(port, name, **labels))


def _samples(port: int, name: str, **labels: str) -> list[float]:
    """The values of a metric's samples with these labels in a process's /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]


def _pid_of(name: str, text: str) -> int:
    """The pid `finpulse up` gave a service: its last restart line, else its row in the table."""
    restarted = [line for line in text.splitlines() if line.startswith(f"{name} started again (pid ")]
    if restarted:
        return int(restarted[-1].split("(pid ")[1].split(",")[0])
    rows = [[cell.strip() for cell in line.split("│")] for line in text.splitlines() if "│" in line]
    [pid] = [row[2] for row in rows if len(row) > 2 and row[1] == name]
    return int(pid)


def test_up_with_its_api_port_taken_says_so_before_starting_anything(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "FINPULSE_API_PORT": str(port), "FINPULSE_DATA_DIR": str(tmp_path / "data"),
           "FINPULSE_KAFKA_BOOTSTRAP": kafka_settings.bootstrap}  # fmt: skip
    with socket.create_server(("127.0.0.1", port)):  # another API, `up` or demo
        done = subprocess.run([FINPULSE, "up"], env=env, capture_output=True, text=True, timeout=60)
    out = " ".join((done.stdout + done.stderr).split())
    assert done.returncode != 0, out
    assert f"cannot listen on 127.0.0.1:{port}" in out
    assert "FINPULSE_API_PORT" in out
    assert not (tmp_path / "data" / "logs").exists(), out  # no service started, not even to fail


def test_up_without_a_slack_token_says_so_before_starting_anything(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FINPULSE_ALERTS_SLACK_TOKEN")}
    env |= {
        "FINPULSE_API_PORT": str(free_port()),
        "FINPULSE_DATA_DIR": str(tmp_path / "data"),
        "FINPULSE_KAFKA_BOOTSTRAP": kafka_settings.bootstrap,
        "FINPULSE_ALERTS_SINKS": '["slack"]',
        "FINPULSE_STORE_URL": f"duckdb:///{tmp_path / 'history.duckdb'}",
    }
    done = subprocess.run([FINPULSE, "up"], env=env, capture_output=True, text=True, timeout=60)
    out = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, out
    assert "the slack sink needs a token: set FINPULSE_ALERTS_SLACK_TOKEN" in out
    assert "--sink console" in out
    # Not the dispatcher's restarts, five times, and then everything stopped: nothing started.
    assert not (tmp_path / "data" / "logs").exists(), out


def test_up_with_an_unknown_service_says_so_before_starting_anything(tmp_path: Path) -> None:
    # No broker at that address: the answer comes before any look at Kafka, which would fail.
    env = {**os.environ, "FINPULSE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
           "FINPULSE_DATA_DIR": str(tmp_path / "data"), "FINPULSE_API_PORT": str(free_port())}  # fmt: skip
    done = subprocess.run(
        [FINPULSE, "up", "--without", "wokrer"], env=env, capture_output=True, text=True, timeout=60
    )
    out = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, out
    assert "unknown service(s) wokrer: choose from api, alerts, worker, ingest" in out
    assert not (tmp_path / "data" / "logs").exists(), out


PARENT = """
import os, sys, time
from pathlib import Path
from finpulse.processes import CliProcess
env = dict(os.environ, FINPULSE_KAFKA_BOOTSTRAP="127.0.0.1:1", FINPULSE_KAFKA_REQUEST_TIMEOUT_S="1")
child = CliProcess(["status", "--watch", "1"], env, Path(sys.argv[1]), own_group=True).start()
print(child.pid, flush=True)
time.sleep(300)
"""


def test_up_s_children_stop_when_it_is_killed_outright(tmp_path: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "child.log")], stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.kill()  # SIGKILL: no clean-up of its own
    parent.wait(timeout=10)
    _wait("the orphan to get SIGTERM", lambda: not _alive(child), 30, tmp_path / "child.log")
