"""PostgreSQL store helpers that need no server: what a message shows of a URL, the version check."""

from __future__ import annotations

import pytest

from store import StoreConfigError
from store.backends import is_postgres
from store.postgres import check_server_version, redacted


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://fp:s3cret@db:5432/finpulse", "postgresql://fp:***@db:5432/finpulse"),
        ("postgres://fp:p%40ss@db/finpulse?sslmode=require", "postgres://fp:***@db/finpulse?sslmode=require"),
        ("postgresql://fp@db/finpulse", "postgresql://fp@db/finpulse"),
        (" postgresql://db/finpulse ", "postgresql://db/finpulse"),
        (
            "postgresql://fp@db/x?password=s3cret&sslmode=require",
            "postgresql://fp@db/x?password=***&sslmode=require",
        ),
        ("postgresql://fp:a@db/x?sslpassword=k3y", "postgresql://fp:***@db/x?sslpassword=***"),
        # libpq reads these as part of the password; the host does not end it
        ("postgresql://fp:Zq8#Kx3?Wp9@db/x", "postgresql://fp:***@db/x"),
        ("postgresql://fp:Zq8/Kx3+Wp9@db:5432/x", "postgresql://fp:***@db:5432/x"),
    ],
)
def test_messages_show_the_url_without_its_password(url: str, shown: str) -> None:
    assert is_postgres(url)
    assert redacted(url) == shown


def test_urls_that_name_a_file_are_not_postgres() -> None:
    assert not any(
        is_postgres(u) for u in ("duckdb:///x.duckdb", "/data/history.duckdb", "postgresql.duckdb")
    )


def test_servers_older_than_14_are_refused_with_their_version() -> None:
    check_server_version(140000, "db")
    check_server_version(170002, "db")
    with pytest.raises(StoreConfigError, match="runs PostgreSQL 13; the store needs 14 or newer"):
        check_server_version(130012, "db")
