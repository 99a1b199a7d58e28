"""The digest job of `finpulse alerts`: once a minute, send the daily digests that are due.

Runs on the dispatcher's event loop (APScheduler 3 AsyncIOScheduler) with the
dispatcher's sinks and delivery ledger: a digest id recorded for a sink is never
sent through it again, so restarts repeat nothing. An answer that says the
digest did not go (rate limit, 5xx) is forgotten and retried the next minute; a
refusal (unknown channel) is logged and not retried. Reading the store runs in
a thread, since DuckDB blocks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import duckdb

from finpulse.errors import ConfigError, PermanentError, TransientError
from finpulse.schedule import Periodic
from finpulse.schema import utcnow
from store import DuckDBStore, StoreError, StoreLocked

from .digest import Digest, build_digest, due_digests
from .ledger import DeliveryLedger
from .sinks.base import AlertSink
from .subscriptions import Subscription

logger = logging.getLogger(__name__)
JOB_ID = "daily-digests"


class DigestJob(Periodic):
    """Sends each subscription's daily digest through every sink that sends digests."""

    job_id = JOB_ID

    def __init__(
        self,
        store: DuckDBStore,
        sinks: list[AlertSink],
        ledger: DeliveryLedger,
        subscriptions: Callable[[], tuple[Subscription, ...]],
        *,
        interval_s: float = 60.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(timedelta(seconds=interval_s))
        self._store = store
        self._sinks = sinks
        self._ledger = ledger
        self._subscriptions = subscriptions
        self._clock = clock

    def _recorded(self, day_id: str) -> bool:
        return all(self._ledger.get(sink.name, day_id) is not None for sink in self._sinks)

    def _build(self, sub: Subscription, day_id: str, end: datetime) -> Digest:
        self._store.start()  # idempotent; a store that cannot open now is retried next minute
        return build_digest(self._store, sub, day_id, end)

    async def run_once(self) -> list[str]:
        """Send what is due now; returns the digest ids sent through at least one sink."""
        now = self._clock()
        sent: list[str] = []
        for sub, day_id, end in due_digests(self._subscriptions(), now, self._recorded):
            try:
                digest = await asyncio.to_thread(self._build, sub, day_id, end)
            except (StoreError, StoreLocked, duckdb.Error) as exc:  # the next minute retries
                logger.warning("digest not built subscription=%s error=%s", sub.id, exc)
                continue
            for sink in self._sinks:
                if self._ledger.get(sink.name, day_id) is not None:
                    continue
                self._ledger.begin(sink.name, [day_id], sub.channel, now)
                try:
                    ref = await sink.send_digest(digest)
                except NotImplementedError:
                    self._ledger.sent(sink.name, [day_id], sub.channel, None, now)  # nothing to send there
                    continue
                except TransientError as exc:
                    self._ledger.forget(sink.name, day_id)
                    logger.warning(
                        "digest retried next minute sink=%s id=%s error=%s", sink.name, day_id, exc
                    )
                    continue
                except (PermanentError, ConfigError) as exc:
                    logger.error("digest not sent sink=%s id=%s error=%s", sink.name, day_id, exc)
                    continue
                self._ledger.sent(sink.name, [day_id], sub.channel, ref, now)
                logger.info(
                    "digest sent sink=%s id=%s channel=%s ref=%s", sink.name, day_id, sub.channel, ref
                )
                if day_id not in sent:
                    sent.append(day_id)
        return sent
