"""The digest job of `finpulse alerts`: once a minute, send the daily digests that are due.

Runs on the dispatcher's event loop (APScheduler 3 AsyncIOScheduler) with the
dispatcher's sinks and delivery ledger: a digest id recorded `sent` for a sink is
never sent through it again. One left `sending` (the process died mid-send) is
first looked up at the destination (Slack: the channel's messages carry the
digest id in their metadata) and sent again only if it is not there; sinks that
cannot look back send it again (the webhook's idempotency key lets the receiver
drop the repeat). So a restart neither repeats nor loses a digest. A failure
that may pass (rate limit, 5xx, timeout) is retried the next minute the same
way, looked up first (a rate limit once its Retry-After has passed); a refusal
(unknown channel) is logged and not retried by this process. Reading the store
runs in a thread, since DuckDB blocks.
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
from store import HistoryStore, StoreError, StoreUnavailable

from .digest import Digest, build_digest, due_digests
from .ledger import DeliveryLedger
from .metrics import DIGESTS
from .sinks.base import AlertSink, RateLimited
from .subscriptions import Subscription

logger = logging.getLogger(__name__)
JOB_ID = "daily-digests"


class DigestJob(Periodic):
    """Sends each subscription's daily digest through every sink that sends digests."""

    job_id = JOB_ID

    def __init__(
        self,
        store: HistoryStore,
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
        # (sink, digest id) refused for good (unknown channel): not tried again by this process.
        self._refused: set[tuple[str, str]] = set()
        # sink -> the end of the Retry-After its destination asked for: nothing goes through it before.
        self._held_until: dict[str, datetime] = {}

    def _settled(self, sink: AlertSink, day_id: str) -> bool:
        record = self._ledger.get(sink.name, day_id)
        return (record is not None and record.state == "sent") or (sink.name, day_id) in self._refused

    def _recorded(self, day_id: str) -> bool:
        return all(self._settled(sink, day_id) for sink in self._sinks)

    def _build(self, sub: Subscription, day_id: str, end: datetime) -> Digest:
        self._store.start()  # idempotent; a store that cannot open now is retried next minute
        return build_digest(self._store, sub, day_id, end)

    async def run_once(self) -> list[str]:
        """Send what is due now; returns the digest ids sent through at least one sink."""
        now = self._clock()
        sent: list[str] = []
        for sub, day_id, end in due_digests(self._subscriptions(), now, self._recorded):
            try:
                if await self._deliver(sub, day_id, end, now):
                    sent.append(day_id)
            except Exception:  # a bug in one digest: the others still go; the next minute retries
                logger.exception("digest failed subscription=%s id=%s", sub.id, day_id)
        return sent

    async def _deliver(self, sub: Subscription, day_id: str, end: datetime, now: datetime) -> bool:
        """Build one subscription's digest and send it through each sink yet to have it; True if
        any sent it now."""
        try:
            digest = await asyncio.to_thread(self._build, sub, day_id, end)
        except (StoreError, StoreUnavailable, duckdb.Error) as exc:  # the next minute retries
            logger.warning("digest not built subscription=%s error=%s", sub.id, exc)
            return False
        sent = False
        for sink in self._sinks:
            held = now < self._held_until.get(sink.name, now)
            if not held and not self._settled(sink, day_id) and await self._send(sink, digest, now):
                sent = True
        return sent

    async def _send(self, sink: AlertSink, digest: Digest, now: datetime) -> bool:
        """Send one digest through one sink unless it already shows it; True if sent now."""
        day_id, channel = digest.digest_id, digest.channel
        earlier = self._ledger.get(sink.name, day_id)
        try:
            if earlier is not None:  # left `sending` by a process that died mid-send
                ref = await sink.find_digest(digest, earlier.started_at)
                if ref is not None:
                    self._ledger.sent(sink.name, [day_id], channel, ref, now)
                    logger.info(
                        "digest already delivered sink=%s id=%s (not sending again)", sink.name, day_id
                    )
                    return False
            self._ledger.begin(sink.name, [day_id], channel, now)
            ref = await sink.send_digest(digest)
        except NotImplementedError:
            self._ledger.sent(sink.name, [day_id], channel, None, now)  # nothing to send there
            return False
        except TransientError as exc:  # left `sending`: a timeout's post may have landed after all
            if isinstance(exc, RateLimited) and exc.retry_after_s > self.interval.total_seconds():
                self._held_until[sink.name] = now + timedelta(seconds=exc.retry_after_s)
            logger.warning("digest retried next minute sink=%s id=%s error=%s", sink.name, day_id, exc)
            return False
        except (PermanentError, ConfigError) as exc:
            self._refused.add((sink.name, day_id))
            logger.error("digest not sent sink=%s id=%s error=%s", sink.name, day_id, exc)
            return False
        self._ledger.sent(sink.name, [day_id], channel, ref, now)
        DIGESTS.labels(sink.name).inc()
        logger.info("digest sent sink=%s id=%s channel=%s ref=%s", sink.name, day_id, channel, ref)
        return True
