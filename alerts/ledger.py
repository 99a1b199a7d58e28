"""The delivery ledger: which alert went out through which sink, and its message ref.

A small SQLite file (default `<data_dir>/alerts/deliveries.sqlite`) that
survives restarts. Per (sink, alert_id) one row:

    sending  an attempt started at `started_at` (we may have crashed mid-post)
    sent     the sink accepted it; `ref` is the message reference (Slack ts)

The dispatcher skips alerts already `sent`, asks the sink about alerts left
`sending` (`AlertSink.find_delivered`), and threads a resolved notice under the
`ref` of its fired alert. Daily digests are kept here too, under their digest
ids. Writes are tiny and committed at once (WAL journal). One dispatcher per file: a
second one opening it is refused (an exclusive lock beside it), as two would post
digests twice and lose threads.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from finpulse.exclusive import ExclusiveLock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    sink TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('sending', 'sent')),
    channel TEXT NOT NULL,
    ref TEXT,
    started_at TEXT NOT NULL,
    sent_at TEXT,
    PRIMARY KEY (sink, alert_id)
)
"""


class Delivery(NamedTuple):
    state: str
    channel: str
    ref: str | None
    started_at: datetime


class DeliveryLedger:
    """SQLite-backed record of deliveries; one writer process per file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = ExclusiveLock(
            Path(f"{path}.lock"),
            f"the delivery ledger {path} is in use by another dispatcher: run one dispatcher per "
            "ledger (FINPULSE_ALERTS_LEDGER_FILE), or stop the other first",
        )

    def open(self) -> None:
        """Open the file, refusing (ConfigError) if another process has it open."""
        if self._db is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a 'sent' row must survive a power cut
        db.execute(_SCHEMA)
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            db.close()
        self._lock.release()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("DeliveryLedger.open() was not called")
        return self._db

    def get(self, sink: str, alert_id: str) -> Delivery | None:
        row = self._conn.execute(
            "SELECT state, channel, ref, started_at FROM deliveries WHERE sink = ? AND alert_id = ?",
            (sink, alert_id),
        ).fetchone()
        if row is None:
            return None
        return Delivery(row[0], row[1], row[2], datetime.fromisoformat(row[3]))

    def begin(self, sink: str, alert_ids: Iterable[str], channel: str, now: datetime) -> None:
        """Record an attempt (rows already `sent` stay as they are)."""
        rows = [(sink, a, channel, now.astimezone(UTC).isoformat()) for a in alert_ids]
        self._conn.executemany(
            "INSERT INTO deliveries (sink, alert_id, state, channel, started_at) "
            "VALUES (?, ?, 'sending', ?, ?) ON CONFLICT (sink, alert_id) DO NOTHING",
            rows,
        )

    def sent(self, sink: str, alert_ids: Iterable[str], channel: str, ref: str | None, now: datetime) -> None:
        """Record that the sink accepted these alerts in the message `ref`."""
        at = now.astimezone(UTC).isoformat()
        rows = [(sink, a, channel, ref, at, at) for a in alert_ids]
        self._conn.executemany(
            "INSERT INTO deliveries (sink, alert_id, state, channel, ref, started_at, sent_at) "
            "VALUES (?, ?, 'sent', ?, ?, ?, ?) ON CONFLICT (sink, alert_id) DO UPDATE SET "
            "state = 'sent', channel = excluded.channel, ref = excluded.ref, sent_at = excluded.sent_at",
            rows,
        )

    def count(self, state: str = "sent") -> int:
        row = self._conn.execute("SELECT count(*) FROM deliveries WHERE state = ?", (state,)).fetchone()
        return int(row[0])
