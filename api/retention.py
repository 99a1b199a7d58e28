"""Scheduled retention for `finpulse api`: prune the history store at start, then every few hours.

The same delete as `finpulse prune` (HistoryStore.apply_retention), run by an
APScheduler 3 AsyncIOScheduler on the API's event loop; the delete itself runs
in a thread, since DuckDB blocks.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import duckdb

from finpulse.schedule import Periodic
from store import HistoryStore, StoreError, StoreUnavailable

logger = logging.getLogger(__name__)

JOB_ID = "store-retention"


class RetentionScheduler(Periodic):
    """Runs `store.apply_retention()` at `start()` and then every `interval_h` hours until `stop()`."""

    job_id = JOB_ID

    def __init__(self, store: HistoryStore, interval_h: float) -> None:
        if interval_h <= 0:
            raise ValueError(f"retention interval must be positive hours, got {interval_h}")
        super().__init__(timedelta(hours=interval_h))
        self.store = store
        self.runs = 0
        self.last_deleted: dict[str, int] | None = None

    async def start(self) -> None:
        if self.running:
            return
        await super().start()
        logger.info(
            "retention scheduled every_h=%g retention_days=%d path=%s",
            self.interval / timedelta(hours=1), self.store.retention_days, self.store.where,
        )  # fmt: skip

    async def run_once(self) -> dict[str, int] | None:
        """One pass: rows deleted per table, or None when the store could not be pruned this time."""
        try:
            deleted = await asyncio.to_thread(self.store.apply_retention)
        except (StoreUnavailable, StoreError, duckdb.Error) as exc:  # one run's failure; the next run retries
            logger.warning(
                "retention skipped path=%s error=%s: %s", self.store.where, type(exc).__name__, exc
            )
            return None
        if deleted is None:
            logger.info("retention skipped path=%s: another process is pruning it now", self.store.where)
            return None
        self.runs += 1
        self.last_deleted = deleted
        summary = " ".join(f"{table}={n}" for table, n in deleted.items())
        logger.info(
            "retention deleted total=%d %s retention_days=%d",
            sum(deleted.values()), summary, self.store.retention_days,
        )  # fmt: skip
        return deleted
