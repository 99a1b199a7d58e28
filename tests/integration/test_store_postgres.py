"""What the PostgreSQL store adds over the DuckDB file, on a real server: several writers at
once, processes starting together, a server that is away. (Every store test also runs on it:
the `store` fixture.)"""

from __future__ import annotations

import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from finpulse.settings import StoreSettings
from store import HeadlinesQuery, StoreError, StoreUnavailable, TrendQuery, WindowsQuery, open_store
from store.dialect import POSTGRES
from store.migrations import LATEST_VERSION
from store.postgres import PostgresStore
from tests.conftest import free_port
from tests.fixtures.store import T0, scored

REPO = Path(__file__).resolve().parents[2]
WRITERS = 4
BATCHES = 12

WRITER = """
import random, sys
from datetime import timedelta
from store.postgres import PostgresStore
from tests.fixtures.store import T0, window
url, seed, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
with PostgresStore(url) as db:
    for b in range(batches):
        keys = list(range(40))
        rng.shuffle(keys)  # each writer meets the shared rows in its own order
        db.upsert_windows([window(f"e{k}", T0, 10, k % 5, revision=b * 10 + seed) for k in keys])
print("done", flush=True)
"""


def test_writer_processes_share_rows_without_deadlocks_and_the_highest_revision_wins(
    postgres_url: str,
) -> None:
    with PostgresStore(postgres_url):  # the schema, before the writers race to it
        pass
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, postgres_url, str(seed), str(BATCHES)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(WRITERS)
    ]
    for w in writers:
        out, err = w.communicate(timeout=120)
        assert (w.returncode, out.strip()) == (0, "done"), err[-2000:]
    with PostgresStore(postgres_url, read_only=True) as db:
        rows = db.fetch(WindowsQuery(start=T0, end=T0 + timedelta(hours=1)), paged=False)
    # Each key's last batch came from every writer; the highest revision (last batch, last seed) stays.
    assert len(rows) == 40
    assert {r.revision for r in rows} == {(BATCHES - 1) * 10 + WRITERS - 1}  # type: ignore[attr-defined]


def test_processes_starting_together_apply_each_migration_once(postgres_url: str) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(6)]
    with ThreadPoolExecutor(len(stores)) as pool:
        list(pool.map(lambda s: s.start(), stores))
    try:
        with stores[0]._connection() as con:
            versions = [
                row[0] for row in con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
            ]
        assert versions == list(range(1, LATEST_VERSION + 1))
        assert stores[0].stats().schema_version == LATEST_VERSION
        # 3: title searches use a trigram index (ILIKE '%word%' scans every title without one).
        indexes = con_indexes(stores[0])
        assert "scored_items_title_trgm" in indexes
    finally:
        for s in stores:
            s.stop()


def con_indexes(db: PostgresStore) -> set[str]:
    with db._connection() as con:
        return {
            r[0]
            for r in con.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'scored_items'"
            ).fetchall()
        }


def test_title_searches_and_one_topics_trend_use_their_indexes(postgres_url: str) -> None:
    with PostgresStore(postgres_url) as db:
        at = [T0 + timedelta(minutes=i) for i in range(20_000)]
        calm = [
            scored(f"s{i}", t, "macro", "neutral", 0.0, title=f"story {i} on wheat") for i, t in enumerate(at)
        ]
        db.upsert_scored(
            [*calm, scored("hit", T0, "macro", "negative", -0.8, title="Fed signals a rate cut")]
        )
        query = HeadlinesQuery(start=T0, end=T0 + timedelta(days=2), sentiment="any", search="rate cut")
        assert [h.story_id for h in db.fetch(query)] == ["hit"]  # type: ignore[attr-defined]
        sql, params = query.select(POSTGRES)
        with db._connection() as con:  # the plan with the scan of the whole table ruled out
            con.execute("ANALYZE scored_items")
            con.execute("SET enable_seqscan = off")
            plan = "\n".join(r[0] for r in con.execute(f"EXPLAIN {sql}", params).fetchall())
            con.execute("RESET enable_seqscan")
        assert "scored_items_title_trgm" in plan, plan
        # One topic's trend: its stories through the (topic, time) index, not the whole range's.
        db.upsert_scored([scored(f"e{i}", at[i * 100], "energy", "negative", -0.5) for i in range(10)])
        trend = TrendQuery(entity_kind="topic", entity="energy", start=T0, end=T0 + timedelta(days=2))
        assert sum(p.count for p in db.fetch(trend)) == 10  # type: ignore[attr-defined]
        sql, params = trend.select(POSTGRES)
        with db._connection() as con:
            con.execute("ANALYZE scored_items")
            con.execute("SET enable_seqscan = off")
            plan = "\n".join(r[0] for r in con.execute(f"EXPLAIN {sql}", params).fetchall())
            con.execute("RESET enable_seqscan")
        assert "scored_items_topic" in plan, plan


def test_a_server_that_is_away_is_a_transient_error_that_keeps_the_password_out(tmp_path: Path) -> None:
    url = f"postgresql://finpulse:s3cret-pw@127.0.0.1:{free_port()}/history"
    db = open_store(StoreSettings(url=url, lock_timeout_s=1))
    assert isinstance(db, PostgresStore)
    assert db.where == f"postgresql://finpulse:***@127.0.0.1:{url.split(':')[3]}"
    with pytest.raises(StoreUnavailable, match="is the PostgreSQL server running") as caught:
        db.start()
    assert "s3cret-pw" not in str(caught.value)


def test_read_only_on_an_empty_database_says_to_start_the_worker_and_writes_are_refused(
    postgres_url: str,
) -> None:
    empty = PostgresStore(postgres_url, read_only=True)
    with empty, pytest.raises(StoreError, match="no history tables yet: start the stream worker"):
        empty.stats()
    with PostgresStore(postgres_url):
        pass
    with PostgresStore(postgres_url, read_only=True) as db:
        assert db.stats().scored_items == 0
        with pytest.raises(StoreError, match="opened read-only"):
            db.upsert_scored([scored("s1", T0, "macro", "neutral", 0.0)])


def test_a_busy_store_serves_readers_while_writers_write(postgres_url: str) -> None:
    """The API reads while workers write: neither waits for the other (a DuckDB file takes turns)."""
    rng = random.Random(3)
    with PostgresStore(postgres_url) as writer, PostgresStore(postgres_url, read_only=True) as reader:

        def write(n: int) -> int:
            items = [scored(f"w{n}-{i}", T0 + timedelta(minutes=rng.randint(0, 59)), "macro", "neutral", 0.0)
                     for i in range(50)]  # fmt: skip
            return writer.upsert_scored(items)

        with ThreadPoolExecutor(4) as pool:
            writes = pool.map(write, range(20))
            reads = [reader.stats().scored_items for _ in range(20)]
            assert sum(writes) == 1000
        assert reads == sorted(reads)  # counts only grow, never an error
        assert reader.stats().scored_items == 1000


def test_status_shows_the_store_without_its_password(postgres_url: str) -> None:
    from rich.console import Console

    from api.status import print_store
    from finpulse.settings import Settings

    # The test server trusts loopback, so any password gets in: the status line must not show it.
    with_password = postgres_url.replace("postgres@", "postgres:hunter2@", 1)
    with PostgresStore(with_password) as db:
        db.upsert_scored([scored("s1", T0, "macro", "neutral", 0.0)])
    console = Console(record=True, width=300)
    print_store(console, Settings(store=StoreSettings(url=with_password)))
    out = console.export_text()
    assert "1 scored story" in out
    assert "hunter2" not in out
    assert "postgres:***@" in out


def test_connections_the_server_dropped_are_replaced_unnoticed(postgres_url: str) -> None:
    """A server restart (or a failover) closes every connection: the next operation gets a new one."""
    import psycopg

    with PostgresStore(postgres_url) as db:
        db.upsert_scored([scored("before", T0, "macro", "neutral", 0.0)])
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert dropped is not None
        assert dropped[0] >= 1
        db.upsert_scored([scored("after", T0, "macro", "neutral", 0.0)])
        assert db.stats().scored_items == 2
