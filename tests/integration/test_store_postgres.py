"""What the PostgreSQL store adds over the DuckDB file, on a real server: several writers at
once, processes starting together, a server that is away. (Every store test also runs on it:
the `store` fixture.)"""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import duckdb
import psycopg
import pytest
from psycopg import sql

from finpulse.settings import StoreSettings
from store import (
    AlertsQuery,
    DuckDBStore,
    EntitiesQuery,
    FeedbackQuery,
    HeadlinesQuery,
    HistoryStore,
    MoversQuery,
    Query,
    StoreError,
    StoreUnavailable,
    TrendQuery,
    VolumeQuery,
    WindowsQuery,
    open_store,
)
from store.dialect import POSTGRES
from store.migrations import LATEST_VERSION
from store.postgres import MIGRATION_LOCK, RETENTION_LOCK, PostgresStore
from tests.conftest import free_port
from tests.fixtures.postgres import PostgresServer
from tests.fixtures.store import T0, alert, scored, seed_known, window

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


def test_a_process_waiting_for_anothers_migration_names_it(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(postgres_url, autocommit=True, application_name="upgrade-7") as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK])
        pid = holder.info.backend_pid
        waiting = PostgresStore(postgres_url)
        with ThreadPoolExecutor(1) as pool, caplog.at_level("WARNING", logger="store.postgres"):
            started = pool.submit(waiting.start)
            deadline = time.monotonic() + 10
            while "is migrating its schema" not in caplog.text and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not started.done()
            holder.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK])
            started.result(timeout=60)
        waiting.stop()
    assert f"pid {pid} (upgrade-7, from " in caplog.text


def test_one_retention_pass_at_a_time(postgres_url: str) -> None:
    db = PostgresStore(postgres_url, retention_days=1)
    with db, psycopg.connect(postgres_url) as other:
        seed_known(db)
        other.execute("SELECT pg_advisory_xact_lock(%s)", [RETENTION_LOCK])  # another replica pruning
        assert db.apply_retention(now=T0 + timedelta(days=1, hours=2)) is None
        other.rollback()  # its pass is over
        deleted = db.apply_retention(now=T0 + timedelta(days=1, hours=2))
        assert deleted is not None
        assert deleted["scored_items"] == 6


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
    assert "Connection refused" in str(caught.value)  # libpq's own words
    assert "s3cret-pw" not in str(caught.value)


@pytest.mark.parametrize(("user", "dbname", "said"), [
    ("postgres", "nodb", 'database "nodb" does not exist'),
    ("nobody", "postgres", 'role "nobody" does not exist'),
])  # fmt: skip
def test_a_server_refusing_the_database_or_user_is_said_in_its_words(
    postgres_server: PostgresServer, user: str, dbname: str, said: str
) -> None:
    url = replace(postgres_server, user=user).url(dbname)
    with pytest.raises(StoreUnavailable, match=said):
        PostgresStore(url, connect_timeout_s=1).start()


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


@pytest.fixture
def icu_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new database whose text sorts by ICU's en-US collation ("apnews" before "Bloomberg"),
    as a server set up with `initdb --locale-provider=icu` makes them, dropped afterwards."""
    name = f"fp_icu_{uuid.uuid4().hex[:8]}"
    admin = postgres_server.url(postgres_server.admin_dbname)
    create = sql.SQL(
        "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' "
        "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
    ).format(sql.Identifier(name))
    with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
        try:
            conn.execute(create)
        except psycopg.Error as exc:  # PostgreSQL 14, or a server built without ICU
            pytest.skip(f"this server makes no ICU database ({exc}): the SQL's COLLATE is checked alone")
    try:
        yield postgres_server.url(name)
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _ties(db: HistoryStore) -> list[list[object]]:
    """Rows tied but for a text column in each list query, seeded into `db`, as each query orders them."""
    names = ("reuters", "Bloomberg", "apnews")  # byte-wise: Bloomberg, apnews, reuters
    db.upsert_scored(
        [
            *(scored(f"{n}-1", T0, "markets", "negative", -0.5, ("ACME",), n) for n in names),
            # Two copies at once of a story from before the range: the first of them stands for it.
            scored("wire", T0 - timedelta(days=3), "macro", "negative", -0.5, source="wire"),
            *(
                scored(c, T0, "macro", "negative", -0.5, source="wire", duplicate_of="wire")
                for c in ("Zed", "ant")
            ),
        ]
    )
    db.upsert_windows([window(n, T0, 10, 2) for n in names])
    db.upsert_alerts([alert(a, "ACME", T0, entity_kind="ticker") for a in ("B-1", "a-1")])
    for a in ("B-1", "a-1"):
        db.put_feedback(a, "tp")
    day = {"start": T0, "end": T0 + timedelta(days=1)}
    queries: list[Query] = [
        TrendQuery(entity_kind="source", granularity="day", **day),
        EntitiesQuery(entity_kind="source", **day),
        MoversQuery(entity_kind="source", direction="any", min_stories=1, **day),
        HeadlinesQuery(sentiment="any", **day),
        AlertsQuery(**day),
        FeedbackQuery(**day),
        WindowsQuery(**day),
    ]
    rows = [[_key(r.model_dump()) for r in db.fetch(q)] for q in queries]
    series = [
        [w.entity for w in db.window_series(start=T0, end=T0 + timedelta(days=1))],
        [s.story_id for s in db.scored_series(**day)],
        [a.alert_id for a in db.alert_events(AlertsQuery(**day))],
    ]
    return [*rows, *series]


def _key(row: dict[str, object]) -> object:
    return row.get("alert_id") or row.get("story_id") or row["entity"]


def test_ties_order_as_in_duckdb_whatever_the_database_collation(icu_url: str, tmp_path: Path) -> None:
    """PostgreSQL orders text by the database's collation (ICU en-US: "apnews", "Bloomberg"), DuckDB
    by bytes ("Bloomberg", "apnews"): pages of ties would hold other rows on each."""
    with PostgresStore(icu_url) as pg:
        with pg._connection() as con:  # the database does sort by en-US
            got = con.execute("SELECT s FROM (VALUES ('apnews'), ('Bloomberg')) v(s) ORDER BY s").fetchall()
        assert [r[0] for r in got] == ["apnews", "Bloomberg"]
        on_postgres = _ties(pg)
    with DuckDBStore(tmp_path / "history.duckdb") as duck:
        on_duckdb = _ties(duck)
    assert on_duckdb[1] == ["Bloomberg", "apnews", "reuters", "wire"]  # entities
    assert on_duckdb[3] == ["Bloomberg-1", "Zed", "apnews-1", "reuters-1"]  # headlines: "Zed" the first copy
    for query, (duck_rows, pg_rows) in enumerate(zip(on_duckdb, on_postgres, strict=True)):
        assert pg_rows == duck_rows, query


def _parquet_schema(path: Path) -> list[tuple[str, str]]:
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(?))", [str(path)]
        )
        return [(str(name), str(kind)) for name, kind in rows.fetchall()]


def test_parquet_exports_have_duckdb_s_column_types_when_columns_are_all_null_or_empty(
    postgres_url: str, tmp_path: Path
) -> None:
    """PostgreSQL's rows come through pandas, where a column of NULLs (an alert without its verdict
    yet; any column of an empty export) knows no type: written as it is, its Parquet type is NULL."""
    ranges = {
        "now": {"start": T0, "end": T0 + timedelta(days=1)},
        "empty": {"start": T0 - timedelta(days=30), "end": T0 - timedelta(days=29)},
    }
    queries: dict[str, Query] = {
        f"{name}-{when}": query
        for when, day in ranges.items()
        for name, query in {
            "trend": TrendQuery(entity_kind="ticker", **day),
            "volume": VolumeQuery(**day),
            "entities": EntitiesQuery(**day),
            "movers": MoversQuery(min_stories=1, direction="any", **day),
            "headlines": HeadlinesQuery(sentiment="any", **day),
            "alerts": AlertsQuery(**day),
            "feedback": FeedbackQuery(**day),
            "windows": WindowsQuery(**day),
        }.items()
    }
    schemas: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for db in (DuckDBStore(tmp_path / "history.duckdb"), PostgresStore(postgres_url)):
        with db:
            db.upsert_scored([scored("s1", T0, "macro", "negative", -0.5, ("ACME",))])
            db.upsert_windows([window("macro", T0, 10, 2)])
            # Two alerts, neither with feedback: their verdicts, notes, authors are NULL.
            db.upsert_alerts([alert(a, "ACME", T0, entity_kind="ticker") for a in ("a1", "a2")])
            out = tmp_path / db.dialect.name
            out.mkdir()
            schemas[db.dialect.name] = {
                name: _parquet_schema(db.export(query, out / f"{name}.parquet", "parquet"))
                for name, query in queries.items()
            }
    assert schemas["duckdb"]["alerts-now"][-7:] == [
        ("verdict", "VARCHAR"), ("note", "VARCHAR"), ("feedback_by", "VARCHAR"),
        ("feedback_at", "TIMESTAMP WITH TIME ZONE"), ("fired_alert_id", "VARCHAR"),
        ("resolved_because", "VARCHAR"), ("still_open", "BOOLEAN"),
    ]  # fmt: skip
    assert schemas["postgresql"] == schemas["duckdb"]
