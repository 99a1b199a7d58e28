"""`finpulse ingest`: APScheduler (3.x, asyncio) jobs that poll each source on its interval.

Each feed/API source gets an interval job with jitter (so sources sharing a
host do not fire together), at most one run at a time, missed runs
coalesced. A source that is backing off (after errors or a Retry-After) skips
runs until its `next_poll_at`. Replay sources run once, at start.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from ingest.ingestor import Ingestor
from ingest.sources import ReplaySource

logger = logging.getLogger(__name__)


def build_scheduler(ingestor: Ingestor) -> AsyncIOScheduler:
    """A scheduler with one job per source (not started)."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    now = datetime.now().astimezone()
    jitter = ingestor.settings.jitter_s
    for name, source in ingestor.sources.items():
        first_run = now + timedelta(seconds=random.uniform(0, jitter))
        if isinstance(source, ReplaySource):
            scheduler.add_job(ingestor.poll, "date", run_date=first_run, args=[name], id=name, name=name)
            continue
        scheduler.add_job(
            ingestor.poll,
            IntervalTrigger(seconds=ingestor.interval_s(source), jitter=jitter or None),
            args=[name],
            id=name,
            name=name,
            next_run_time=first_run,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(ingestor.interval_s(source))),
        )
    return scheduler


async def run_scheduled(ingestor: Ingestor, stop: asyncio.Event) -> None:
    """Run the jobs until `stop` is set, then shut down cleanly."""
    async with ingestor:
        scheduler = build_scheduler(ingestor)
        scheduler.start()
        logger.info("ingest scheduler started sources=%d", len(ingestor.sources))
        try:
            await stop.wait()
        finally:
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # let cancelled job tasks unwind before the clients close
            logger.info("ingest scheduler stopped metrics=%s", ingestor.metrics.snapshot())
