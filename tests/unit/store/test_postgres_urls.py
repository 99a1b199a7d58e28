"""PostgreSQL store helpers that need no server: what a message shows of a URL, the version check,
the error for a server that refused or did not answer."""

from __future__ import annotations

import psycopg
import pytest

from store import StoreConfigError, StoreUnavailable
from store.backends import is_postgres
from store.postgres import PostgresStore, check_server_version, masked, redacted, unopened


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
        ("postgresql://fp:S3cret Pw@db/x", "postgresql://fp:***@db/x"),  # a space libpq refuses
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


# libpq's messages, as psycopg's OperationalError gives them (its sqlstate is None).
_FAILED = 'connection failed: connection to server at "127.0.0.1", port 5432 failed: '


@pytest.mark.parametrize(
    ("said", "error"),
    [
        ('FATAL:  database "nodb" does not exist', StoreUnavailable),
        ('FATAL:  password authentication failed for user "fp"', StoreUnavailable),
        ('FATAL:  role "nobody" does not exist', StoreUnavailable),
        ('FATAL:  no pg_hba.conf entry for host "10.0.0.9", user "fp", database "x"', StoreUnavailable),
        ("fe_sendauth: no password supplied", StoreUnavailable),
        (
            "Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?",
            StoreUnavailable,
        ),
        ("FATAL:  the database system is starting up", StoreUnavailable),
        ("FATAL:  sorry, too many clients already", StoreUnavailable),
    ],
)
def test_a_pool_that_did_not_open_says_the_servers_words_and_if_trying_again_may_work(
    said: str, error: type[Exception]
) -> None:
    raised = unopened("postgresql://fp:***@db/x", 10, psycopg.OperationalError(_FAILED + said))
    assert type(raised) is error
    assert " ".join(said.split()) in str(raised)


def test_a_pool_that_never_connected_did_not_answer_and_no_password_shows() -> None:
    assert str(unopened("db", 10, None)).startswith("history store db did not answer in 10 s: is the")
    leaky = psycopg.OperationalError("invalid URI query parameter in postgresql://fp:s3cret@db/x")
    assert "s3cret" not in str(unopened("db", 10, leaky))


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgresql://app:Xy7%Qp2@127.0.0.1:1/db", "Xy7%Qp2"),  # a % not percent-encoded
        ("postgresql://app:S3cret Pw@127.0.0.1:1/db", "S3cret Pw"),
        ("postgresql://app:Pa@ssW0rd@127.0.0.1:1/db", "ssW0rd"),  # libpq: host "ssW0rd@127.0.0.1"
    ],
)
def test_a_url_libpq_cannot_read_is_a_config_error_at_once_without_its_password(
    url: str, password: str
) -> None:
    """libpq quotes the password alone in its complaint; the pool retried it until the timeout."""
    with pytest.raises(StoreConfigError, match="percent-encode %, @, / and spaces") as caught:
        PostgresStore(url, connect_timeout_s=30).start()
    assert password not in str(caught.value)


def test_libpq_messages_lose_the_password_it_quotes_back() -> None:
    url = "postgresql://app:Pa@ssW0rd@127.0.0.1:1/db"  # libpq takes "ssW0rd@127.0.0.1" for the host
    said = "failed to resolve host 'ssW0rd@127.0.0.1': Name or service not known"
    assert "ssW0rd" not in masked(said, url)
    assert "ssW0rd" not in str(unopened(redacted(url), 10, psycopg.OperationalError(said), url))
