"""DuckDB's one-writer rule across processes: a clear error, or taking turns."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from store import DuckDBStore, StoreLocked
from tests.fixtures.store import T0, another_process_holding, scored, seed_known

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
    with another_process_holding(store_path) as holder:
        began = time.monotonic()
        with pytest.raises(StoreLocked, match="DuckDB allows one writer process") as info:
            DuckDBStore(store_path, lock_timeout_s=0.3).start()
        assert 0.3 <= time.monotonic() - began < 5
        assert str(store_path) in str(info.value)
        assert f"PID {holder.pid}" in str(info.value)
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


@pytest.mark.parametrize("keep_open", [False, True])
def test_threads_of_one_process_share_the_file(store_path: Path, keep_open: bool) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from store import AlertsQuery, TrendQuery

    span = {"start": T0, "end": T0 + timedelta(days=2)}
    known_store = DuckDBStore(store_path)
    other = DuckDBStore(store_path, keep_open=keep_open)  # a second store on the same file
    with known_store, other, ThreadPoolExecutor(8) as pool:
        seed_known(known_store)

        def work(n: int) -> int:
            db = other if n % 2 else known_store
            db.upsert_scored([scored(f"t{n}", T0 + timedelta(hours=3), "macro", "neutral", 0.0)])
            return len(db.fetch(TrendQuery(**span))) + len(db.fetch(AlertsQuery(**span)))

        results = list(pool.map(work, range(40)))
        assert all(r >= 8 for r in results)
        assert known_store.stats().scored_items == 7 + 40


PROBE = """
import sys
from store import DuckDBStore, StoreLocked
try:
    DuckDBStore(sys.argv[1], lock_timeout_s=0.2).start()
except StoreLocked:
    print("locked")
else:
    print("free")
"""


def test_a_session_keeps_the_file_between_its_writes_then_lets_go(store_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]

    def other_process() -> str:
        probe = [sys.executable, "-c", PROBE, str(store_path)]
        return subprocess.run(probe, cwd=repo, capture_output=True, text=True, check=True).stdout.strip()

    with DuckDBStore(store_path) as db:
        with db.session():
            db.upsert_scored([scored("s1", T0, "macro", "neutral", 0.0)])
            assert other_process() == "locked"
            db.upsert_scored([scored("s2", T0, "macro", "neutral", 0.0)])
        assert other_process() == "free"
        assert db.stats().scored_items == 2
