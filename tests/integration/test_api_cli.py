"""`finpulse api` as users run it: a real uvicorn process on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.cli import serve
from finpulse.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_finpulse_api_serves_the_dashboard_and_the_api(tmp_path: Path) -> None:
    port, metrics_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "FINPULSE_STORE_URL": f"duckdb:///{tmp_path / 'h.duckdb'}",
        "FINPULSE_API_PORT": str(port),
        "FINPULSE_API_TOKEN": "cli-token",
        "FINPULSE_API_METRICS_PORT": str(metrics_port),
    }
    env.pop("FINPULSE_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", "from finpulse.cli import main; main()", "api"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/api/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "finpulse api did not answer in 30 s"
                time.sleep(0.2)
        assert health.json()["auth"] is True
        assert httpx.get(f"{base}/api/v1/alerts", timeout=5).status_code == 401
        ok = httpx.get(f"{base}/api/v1/alerts", headers={"Authorization": "Bearer cli-token"}, timeout=5)
        assert ok.json()["items"] == []
        page = httpx.get(f"{base}/?token=cli-token", timeout=5)  # the dashboard opened with its token
        assert "uPlot.iife.min.js" in page.text
        assert httpx.get(f"{base}/static/vendor/uplot/uPlot.iife.min.js", timeout=5).status_code == 200
        assert httpx.get(f"{base}/wp-login.php", timeout=5).status_code == 404
        # Its Prometheus metrics: each request by handler and status, timed.
        metrics = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(
                httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
            )
            for s in family.samples
        }

        def requests(handler: str, status: str) -> float:
            labels = (("handler", handler), ("method", "GET"), ("status", status))
            return metrics.get(("finpulse_api_requests_total", labels), 0)

        assert requests("alerts", "401") == requests("alerts", "200") == 1
        assert requests("dashboard", "200") == requests("/static", "200") == requests("unmatched", "404") == 1
        assert requests("health", "200") >= 1
        assert metrics[("finpulse_api_request_seconds_count", (("handler", "alerts"),))] == 2
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert f"dashboard at http://127.0.0.1:{port}/" in out
    assert '"GET /?token=*** HTTP/1.1" 200' in out  # the access log keeps the token out
    assert "cli-token" not in out


def test_refuses_a_public_address_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("uvicorn must not start")

    monkeypatch.setattr(uvicorn.Server, "run", never)
    monkeypatch.setenv("FINPULSE_API_TOKEN", "  ")  # blank counts as unset
    monkeypatch.delenv("FINPULSE_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="set FINPULSE_API_TOKEN"):
        serve(host="0.0.0.0", port=None)


def test_a_port_in_use_is_one_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "FINPULSE_STORE_URL": f"duckdb:///{tmp_path / 'h.duckdb'}", "COLUMNS": "200"}
        env.pop("FINPULSE_CONFIG", None)
        for command in (["api", "--port", str(port)], ["demo", "--no-keep-running"]):
            done = subprocess.run(
                [sys.executable, "-c", "from finpulse.cli import main; main()", *command],
                cwd=REPO, env={**env, "FINPULSE_API_PORT": str(port)}, capture_output=True, text=True,
                timeout=60,
            )  # fmt: skip
            out = " ".join((done.stdout + done.stderr).split())
            assert done.returncode == 2, out
            assert f"error: cannot listen on 127.0.0.1:{port} (Address already in use)" in out
            assert "Traceback" not in out
            assert "dashboard at" not in out  # said nothing it could not keep
            assert "1. kafka" not in out  # the demo started nothing


def test_prune_applies_retention(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta

    from api.cli import prune
    from store import DuckDBStore
    from tests.fixtures.store import scored

    path = tmp_path / "h.duckdb"
    now = datetime.now(UTC)
    with DuckDBStore(path) as db:
        db.upsert_scored([scored("old", now - timedelta(days=40), "macro", "neutral", 0.0)])
        db.upsert_scored([scored("new", now - timedelta(days=2), "macro", "neutral", 0.0)])
    monkeypatch.setenv("FINPULSE_STORE_URL", f"duckdb:///{path}")
    monkeypatch.setenv("FINPULSE_STORE_RETENTION_DAYS", "30")
    monkeypatch.delenv("FINPULSE_CONFIG", raising=False)
    prune()
    with DuckDBStore(path) as db:
        assert db.stats().scored_items == 1


def test_prune_of_a_store_that_does_not_exist_is_an_error_and_creates_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli import prune
    from store import StoreConfigError

    path = tmp_path / "histroy.duckdb"  # mistyped
    monkeypatch.setenv("FINPULSE_STORE_URL", f"duckdb:///{path}")
    monkeypatch.delenv("FINPULSE_CONFIG", raising=False)
    with pytest.raises(StoreConfigError, match=r"histroy\.duckdb does not exist: check FINPULSE_STORE_URL"):
        prune()
    assert not path.exists()


def test_migrate_updates_an_old_store_keeping_every_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The history commands refused a store older code wrote and named `prune` or the API to update
    it: both delete history past retention, the analysts' verdicts with it (here all of it: 2024)."""
    import duckdb
    import typer
    from typer.testing import CliRunner

    from api.cli import register
    from store import DuckDBStore
    from store.migrations import LATEST_VERSION, MIGRATIONS, migrate
    from tests.fixtures.store import seed_known

    current, old = tmp_path / "current.duckdb", tmp_path / "old.duckdb"
    with DuckDBStore(current) as db:
        seed_known(db)
        db.put_feedback("a1", "fp", note="season", author="ann")
        rows = db.stats().model_dump(exclude={"schema_version"})
    with duckdb.connect(str(old)) as con:  # the same rows at schema 3, before scored_items.duplicate_of
        migrate(con, "test", migrations=MIGRATIONS[:3])
        con.execute(f"ATTACH '{current}' AS current (READ_ONLY)")
        for table in ("scored_items", "windows", "alerts", "feedback"):
            columns = ", ".join(d[0] for d in con.execute(f"SELECT * FROM {table} LIMIT 0").description)
            con.execute(f"INSERT INTO {table} SELECT {columns} FROM current.{table}")
    monkeypatch.setenv("FINPULSE_STORE_URL", f"duckdb:///{old}")
    monkeypatch.delenv("FINPULSE_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "160")
    app, runner, span = typer.Typer(), CliRunner(), ["--since", "2024-03-04", "--until", "2024-03-06"]
    register(app)
    refused = runner.invoke(app, ["history", "alerts", *span])
    assert refused.exit_code == 2, refused.output
    assert "run `finpulse migrate` to update it, deleting nothing" in " ".join(refused.output.split())
    done = runner.invoke(app, ["migrate"])
    assert done.exit_code == 0, done.output
    assert f"schema version 3 -> {LATEST_VERSION}; no rows deleted" in " ".join(done.output.split())
    with DuckDBStore(old, read_only=True) as db:
        stats = db.stats()
    assert (stats.schema_version, stats.model_dump(exclude={"schema_version"})) == (LATEST_VERSION, rows)
    answered = runner.invoke(app, ["history", "alerts", "--state", "fired", *span])
    assert answered.exit_code == 0, answered.output
    assert "fp" in next(line for line in answered.output.splitlines() if "topic:earnings" in line)
