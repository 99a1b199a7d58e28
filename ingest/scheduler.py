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

_TASK_PREFIX = "ingest-poll:"


def build_scheduler(ingestor: Ingestor) -> AsyncIOScheduler:
    """A scheduler with one job per source (not started)."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    now = datetime.now().astimezone()
    jitter = ingestor.settings.jitter_s
    for name, source in ingestor.sources.items():
        first_run = now + timedelta(seconds=random.uniform(0, jitter))
        if isinstance(source, ReplaySource):
            scheduler.add_job(
                _poll_job, "date", run_date=first_run, args=[ingestor, name], id=name, name=name
            )
            continue
        scheduler.add_job(
            _poll_job,
            IntervalTrigger(seconds=ingestor.interval_s(source), jitter=jitter or None),
            args=[ingestor, name],
            id=name,
            name=name,
            next_run_time=first_run,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, int(ingestor.interval_s(source))),
        )
    return scheduler


async def _poll_job(ingestor: Ingestor, name: str) -> None:
    task = asyncio.current_task()
    if task is not None:
        task.set_name(f"{_TASK_PREFIX}{name}")
    await ingestor.poll(name)


async def run_scheduled(ingestor: Ingestor, stop: asyncio.Event, grace_s: float = 20.0) -> None:
    """Run the jobs until `stop` is set, then let running polls finish (up to `grace_s`) and stop."""
    async with ingestor:
        scheduler = build_scheduler(ingestor)
        scheduler.start()
        logger.info("ingest scheduler started sources=%d", len(ingestor.sources))
        try:
            await stop.wait()
        finally:
            scheduler.pause()  # no new polls; let running ones finish (they are bounded by timeouts)
            running = [t for t in asyncio.all_tasks() if t.get_name().startswith(_TASK_PREFIX)]
            if running:
                logger.info("waiting for %d running polls to finish", len(running))
                await asyncio.wait(running, timeout=grace_s)
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # let cancelled job tasks unwind before the clients close
            logger.info("ingest scheduler stopped metrics=%s", ingestor.metrics.snapshot())
