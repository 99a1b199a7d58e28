"""Versioned schema migrations: ordered SQL steps recorded in `schema_version`.

Each step runs once, in its own transaction, in order; the table records the
version, a description and when it was applied. Add a step by appending to
MIGRATIONS (never edit a released one). All timestamps are UTC, stored as
TIMESTAMP without zone; each row keeps its whole message as JSON in `record`
so fields added to the schema later are never lost. Statements are written in
DuckDB's type names; a dialect renames those its database spells otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from store.dialect import DUCKDB, Dialect
from store.errors import StoreConfigError
from store.sql import Connection, transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    """One schema step: the version it brings the database to, and its SQL.

    `only`: the dialect whose database runs the statements; others record the version alone.
    `optional`: a step that makes the store faster, not different; if it fails (say, an
    extension the database user may not create) a warning says why and the store starts
    without it, trying again at each start until it lands.
    `concurrent`: the statements run one by one, each committed on its own; the version is
    recorded once all have run."""

    version: int
    description: str
    statements: tuple[str, ...]
    only: str | None = None
    optional: bool = False
    # Each statement committed on its own, not in one transaction: PostgreSQL indexes built
    # CONCURRENTLY (writers go on meanwhile; a failed build leaves an invalid index, dropped
    # first), a table's lock held for its one statement. Each must bear running again.
    concurrent: bool = False


# A syndicated copy's original, read from the stored message: migration 4's backfill, and a copy
# out of a store from before it (store/base.py).
DUPLICATE_OF = "(record->'item'->>'duplicate_of')"

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "scored items, windows, alerts, feedback, subscriptions",
        (
            """CREATE TABLE scored_items (
                story_id VARCHAR PRIMARY KEY,
                source VARCHAR NOT NULL,
                title VARCHAR NOT NULL,
                url VARCHAR,
                published_at TIMESTAMP NOT NULL,
                tickers VARCHAR[] NOT NULL,
                topic VARCHAR NOT NULL,
                sentiment VARCHAR NOT NULL,
                sentiment_score DOUBLE NOT NULL,
                model_version VARCHAR NOT NULL,
                scored_at TIMESTAMP NOT NULL,
                record JSON NOT NULL)""",
            "CREATE INDEX scored_items_published ON scored_items (published_at)",
            """CREATE TABLE windows (
                key VARCHAR PRIMARY KEY,
                entity_kind VARCHAR NOT NULL,
                entity VARCHAR NOT NULL,
                window_kind VARCHAR NOT NULL,
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                count INTEGER NOT NULL,
                negative_count INTEGER NOT NULL,
                negative_share DOUBLE NOT NULL,
                mean_score DOUBLE NOT NULL,
                baseline_negative_share DOUBLE,
                baseline_volume DOUBLE,
                revision INTEGER NOT NULL,
                record JSON NOT NULL)""",
            "CREATE INDEX windows_entity ON windows (entity_kind, entity, window_start)",
            """CREATE TABLE alerts (
                alert_id VARCHAR PRIMARY KEY,
                subscription_id VARCHAR NOT NULL,
                state VARCHAR NOT NULL,
                entity_kind VARCHAR NOT NULL,
                entity VARCHAR NOT NULL,
                window_start TIMESTAMP NOT NULL,
                window_end TIMESTAMP NOT NULL,
                count INTEGER NOT NULL,
                negative_count INTEGER NOT NULL,
                negative_share DOUBLE NOT NULL,
                baseline_negative_share DOUBLE NOT NULL,
                p_value DOUBLE NOT NULL,
                channel VARCHAR,
                created_at TIMESTAMP NOT NULL,
                record JSON NOT NULL)""",
            "CREATE INDEX alerts_created ON alerts (created_at)",
            # One verdict per alert: the latest analyst's mark wins (who and when are kept).
            """CREATE TABLE feedback (
                alert_id VARCHAR PRIMARY KEY,
                verdict VARCHAR NOT NULL CHECK (verdict IN ('tp', 'fp')),
                note VARCHAR NOT NULL,
                author VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL)""",
            """CREATE TABLE subscriptions (
                id VARCHAR PRIMARY KEY,
                body JSON NOT NULL,
                updated_at TIMESTAMP NOT NULL)""",
        ),
    ),
    Migration(
        2,
        "store_meta: small key/value facts about the store (the subscriptions file last imported)",
        (
            """CREATE TABLE store_meta (
                key VARCHAR PRIMARY KEY,
                value VARCHAR NOT NULL,
                updated_at TIMESTAMP NOT NULL)""",
        ),
    ),
    # A week of 1M stories on a 2-core VM: a two-word search 1.4 s -> 10 ms (topic trend,
    # busiest tickers, headlines); writes 65 -> 90 us a story. DuckDB scans in 0.1 s.
    Migration(
        3,
        "title search index (PostgreSQL: pg_trgm)",
        (
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
            # Concurrently (since 2026-12-07; a database that has the index never runs this again):
            # enabled on a big history months on, a plain build held every writer for its length.
            "DROP INDEX CONCURRENTLY IF EXISTS scored_items_title_trgm",
            "CREATE INDEX CONCURRENTLY scored_items_title_trgm ON scored_items "
            "USING gin (title gin_trgm_ops)",
        ),
        only="postgresql",
        optional=True,
        concurrent=True,
    ),
    # Trends count a story once, as its windows do: a syndicated copy under its original's id.
    # One statement at a time: PostgreSQL's ALTER locks the table out, for an instant alone.
    Migration(
        4,
        "scored_items.duplicate_of: the original a syndicated copy repeats",
        (
            "ALTER TABLE scored_items ADD COLUMN IF NOT EXISTS duplicate_of VARCHAR",
            f"UPDATE scored_items SET duplicate_of = {DUPLICATE_OF} WHERE {DUPLICATE_OF} IS NOT NULL",  # noqa: S608
        ),
        concurrent=True,
    ),
    # One topic's or source's trend over a month read the whole month's rows (PostgreSQL; DuckDB
    # scans its columns fast enough).
    Migration(
        5,
        "one topic's or source's stories by time (PostgreSQL)",
        (
            "DROP INDEX CONCURRENTLY IF EXISTS scored_items_topic",
            "CREATE INDEX CONCURRENTLY scored_items_topic ON scored_items (topic, published_at)",
            "DROP INDEX CONCURRENTLY IF EXISTS scored_items_source",
            "CREATE INDEX CONCURRENTLY scored_items_source ON scored_items (source, published_at)",
        ),
        only="postgresql",
        concurrent=True,
    ),
    # Late stories replace a window's row with a higher revision; the detector tested the first.
    # Rows from before keep NULL: their first revision is gone (the backtest reads `record`).
    Migration(
        6,
        "windows.first_record: a window as first emitted, the counts the detector tested",
        ("ALTER TABLE windows ADD COLUMN IF NOT EXISTS first_record JSON",),
        concurrent=True,
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
# The version that added store_meta.
META_VERSION = 2

_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    description VARCHAR NOT NULL,
    applied_at TIMESTAMP NOT NULL DEFAULT (now()::TIMESTAMP))"""


def current_version(con: Connection) -> int:
    """The highest applied version; 0 for an empty database."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_name = 'schema_version' AND table_schema = current_schema()"
    ).fetchone()
    if not exists or not exists[0]:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def check_version(version: int, where: str, latest: int = LATEST_VERSION) -> None:
    """Refuse a database written by newer code than this."""
    if version > latest:
        raise StoreConfigError(
            f"history store {where} has schema version {version}, newer than this finpulse "
            f"knows ({latest}); upgrade finpulse or point FINPULSE_STORE_URL elsewhere"
        )


def _recorded(con: Connection) -> set[int]:
    """The versions schema_version records (an optional step skipped leaves a gap)."""
    return {int(row[0]) for row in con.execute("SELECT version FROM schema_version").fetchall()}


def check_current(con: Connection, where: str) -> None:
    """Refuse a database that older code wrote and no writer has brought up to date since."""
    version = current_version(con)
    recorded = _recorded(con) if version else set()  # no schema_version table: none
    if any(step.version not in recorded for step in MIGRATIONS if not step.optional):
        raise StoreConfigError(
            f"history store {where} has schema version {version}, older than this finpulse reads "
            f"({LATEST_VERSION}): run `finpulse migrate` to update it, deleting nothing (the API and "
            "`finpulse prune` update it too, but also delete history older than store.retention_days)"
        )


def migrate(
    con: Connection, where: str, dialect: Dialect = DUCKDB, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[int]:
    """Apply the missing steps in order; returns the versions applied (empty when current)."""
    con.execute(_VERSION_TABLE)
    # By the versions recorded, not the highest: an optional step skipped once is tried again at
    # each start, also after later steps have landed.
    recorded = _recorded(con)
    check_version(max(recorded, default=0), where, migrations[-1].version)
    applied = []
    for step in migrations:
        if step.version in recorded:
            continue
        statements = (
            [dialect.ddl(sql) for sql in step.statements] if step.only in (None, dialect.name) else []
        )
        try:
            if step.concurrent:
                for sql in statements:
                    con.execute(sql)
                statements = []
            with transaction(con):
                for sql in statements:
                    con.execute(sql)
                con.execute(
                    "INSERT INTO schema_version (version, description) VALUES (?, ?)",
                    [step.version, step.description],
                )
        except Exception as exc:
            if not step.optional:
                raise
            logger.warning(
                "store step skipped where=%s version=%d (%s): %s; the store works without it",
                where, step.version, step.description, exc,
            )  # fmt: skip
            continue
        logger.info("store migrated where=%s version=%d (%s)", where, step.version, step.description)
        applied.append(step.version)
    return applied
