"""Retention: delete history older than `store.retention_days`.

Items go by publication time, windows by their end, alerts by creation time;
feedback goes with its alert (a label without its alert cannot be used).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from store.queries import naive_utc
from store.sql import Connection

# Order matters: feedback before the alerts it refers to.
DELETES: tuple[tuple[str, str], ...] = (
    ("feedback", "DELETE FROM feedback WHERE alert_id IN (SELECT alert_id FROM alerts WHERE created_at < ?)"),
    ("alerts", "DELETE FROM alerts WHERE created_at < ?"),
    ("windows", "DELETE FROM windows WHERE window_end < ?"),
    ("scored_items", "DELETE FROM scored_items WHERE published_at < ?"),
)


def retention_cutoff(retention_days: int, now: datetime | None = None) -> datetime:
    """The oldest time kept: `now - retention_days` (UTC)."""
    return (now or datetime.now(UTC)) - timedelta(days=retention_days)


def delete_before(con: Connection, cutoff: datetime) -> dict[str, int]:
    """Delete rows older than the cutoff (call it in a transaction); returns rows deleted per table."""
    deleted: dict[str, int] = {}
    for table, sql in DELETES:
        row = con.execute(sql, [naive_utc(cutoff)]).fetchone()
        deleted[table] = int(row[0]) if row else 0
    return deleted
