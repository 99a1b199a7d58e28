"""The database's own errors (a full disk, a server refusing a write) reach users as StoreError in
the database's words: the CLI's one line, the API's 503. They were tracebacks and a bare 500."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from store import DuckDBStore, StoreError
from store.postgres import PostgresStore
from tests.fixtures.store import T0, scored, seed_known

# A trigger as a DBA might add one: PostgreSQL refuses the statement (SQLSTATE P0001).
_FROZEN = """
CREATE FUNCTION frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'feedback is frozen for the audit'; END $$;
CREATE TRIGGER frozen BEFORE INSERT OR UPDATE ON feedback FOR EACH ROW EXECUTE FUNCTION frozen();
"""


def _no_room() -> None:
    """In the child: files may not grow (a full disk's write error; Python ignores SIGXFSZ)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_prune_on_a_disk_without_room_says_one_line(tmp_path: Path) -> None:
    path = tmp_path / "h.duckdb"
    with DuckDBStore(path) as db:
        seed_known(db)  # 2024: older than the retention, so prune deletes
    (tmp_path / "empty.toml").write_text("")
    env = {
        **os.environ, "FINPULSE_STORE_URL": f"duckdb:///{path}",
        "FINPULSE_CONFIG": str(tmp_path / "empty.toml"), "COLUMNS": "300",
    }  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "finpulse.cli", "prune"],
        env=env, capture_output=True, text=True, timeout=120, preexec_fn=_no_room,
    )  # fmt: skip
    said = out.stdout + out.stderr
    assert out.returncode != 0, said
    assert "Traceback" not in said
    assert f"error: history store {path}: " in said
    assert "File too large" in said
    assert "deleted=" not in said  # said once committed: this commit failed, nothing was deleted


@pytest.fixture
def api_store_url(postgres_url: str) -> str:
    """The API tests' app on PostgreSQL, refusing every verdict written."""
    with PostgresStore(postgres_url) as db:
        seed_known(db)
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(_FROZEN)
    return postgres_url


def test_a_write_the_server_refuses_is_a_store_error_and_a_503(api_store_url: str, api_client: Any) -> None:
    r = api_client.post("/api/v1/alerts/a1/feedback", json={"verdict": "fp", "note": "known"})
    assert r.status_code == 503, r.text
    assert "feedback is frozen for the audit" in r.json()["detail"]
    with PostgresStore(api_store_url) as db:
        with pytest.raises(StoreError, match="frozen for the audit") as frozen:
            db.put_feedback("a1", "tp")
        assert isinstance(frozen.value.__cause__, psycopg.Error)
        assert not db.refuses_record(frozen.value)  # the store's fault: the sink reads the batch again
        with pytest.raises(StoreError, match="NUL") as nul:
            db.upsert_scored([scored("nul", T0, "macro", "neutral", 0.0, title="a NUL \x00")])
        assert db.refuses_record(nul.value)  # the record's: the sink dead-letters it alone
