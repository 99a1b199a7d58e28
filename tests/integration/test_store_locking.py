"""DuckDB's one-writer rule across processes: a clear error, or taking turns."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from store import DuckDBStore, StoreLocked
from tests.fixtures.store import T0, scored

HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""

WRITE_TURNS = """
import sys
from datetime import UTC, datetime, timedelta
from store import DuckDBStore
from tests.fixtures.store import T0, scored
db = DuckDBStore(sys.argv[1], lock_timeout_s=20)
db.start()
for n in range(15):
    db.upsert_scored([scored(f"w{n}", T0 + timedelta(minutes=n), "macro", "neutral", 0.0)])
print("wrote", flush=True)
"""


def test_a_held_lock_gives_a_clear_error_then_clears(store_path: Path) -> None:
    with DuckDBStore(store_path):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(store_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        began = time.monotonic()
        with pytest.raises(StoreLocked, match="DuckDB allows one writer process") as info:
            DuckDBStore(store_path, lock_timeout_s=0.3).start()
        assert 0.3 <= time.monotonic() - began < 5
        assert str(store_path) in str(info.value)
        assert f"PID {holder.pid}" in str(info.value)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    with DuckDBStore(store_path, lock_timeout_s=0.3) as db:
        assert db.stats().scored_items == 0


def test_two_processes_take_turns_with_per_call_connections(store_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    with DuckDBStore(store_path, lock_timeout_s=20) as db:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITE_TURNS, str(store_path)], cwd=repo, stdout=subprocess.PIPE, text=True
        )
        reads = 0
        while writer.poll() is None:
            db.upsert_scored(
                [scored(f"r{reads}", T0 + timedelta(hours=1, minutes=reads), "macro", "neutral", 0.0)]
            )
            reads += 1
        assert writer.returncode == 0
        assert writer.stdout is not None
        assert writer.stdout.read().strip() == "wrote"
        assert db.stats().scored_items == 15 + reads
        assert reads > 0
