"""The PostgreSQL fixtures: a real, recent-enough server and an empty database of each test's own."""

from __future__ import annotations

import psycopg

from tests.fixtures.postgres import PostgresServer

_SEEN: set[str] = set()


def _check_own_database(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT current_database()").fetchone()
        assert row is not None
        name = str(row[0])
        assert name.startswith("fp_test_")
        assert name not in _SEEN, "two tests got the same database"
        _SEEN.add(name)
        # Empty: no table of an earlier test is visible.
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
        return name


def test_database_round_trip(postgres_server: PostgresServer, postgres_url: str) -> None:
    name = _check_own_database(postgres_url)
    assert postgres_url == postgres_server.url(name)
    with psycopg.connect(postgres_url) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None
        assert int(version[0]) >= 140000  # the store uses date_bin
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO t VALUES (%s, %s)", (1, "héllo"))
    with psycopg.connect(postgres_url) as conn:  # committed, seen by a new connection
        assert conn.execute("SELECT id, note FROM t").fetchall() == [(1, "héllo")]


def test_each_test_gets_a_fresh_database(postgres_url: str) -> None:
    _check_own_database(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
