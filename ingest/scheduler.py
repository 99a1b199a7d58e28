"""`finpulse ingest`: APScheduler (3.x, asyncio) jobs that poll each source on its interval.

Each feed/API source gets an interval job with jitter (so sources sharing a
host do not fire together), at most one run at a time, missed runs
coalesced. A source that is backing off (after errors or a Retry-After) skips
runs until its `next_poll_at`. Replay sources run once, at start (or when a
reload adds them). With a ConfigWatch, edits of the sources and companies
files apply while it runs (ingest/live_config.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from ingest.ingestor import Ingestor, SourceChanges
from ingest.live_config import ConfigWatch
from ingest.sources import ReplaySource

logger = logging.getLogger(__name__)

_TASK_PREFIX = "ingest-poll:"


def build_scheduler(ingestor: Ingestor) -> AsyncIOScheduler:
    """A scheduler with one job per source (not started)."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    for name in ingestor.sources:
        _schedule(scheduler, ingestor, name)
    return scheduler


def _schedule(scheduler: AsyncIOScheduler, ingestor: Ingestor, name: str) -> None:
    """The source's job: its first run within `jitter_s` from now."""
    source, jitter = ingestor.sources[name], ingestor.settings.jitter_s
    first_run = datetime.now().astimezone() + timedelta(seconds=random.uniform(0, jitter))
    if isinstance(source, ReplaySource):
        scheduler.add_job(_poll_job, "date", run_date=first_run, args=[ingestor, name], id=name, name=name)
    else:
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


def _reschedule(scheduler: AsyncIOScheduler, ingestor: Ingestor, changes: SourceChanges) -> None:
    """The jobs after a reload: removed sources' gone, added and changed ones' (re)started."""
    for name in (*changes.removed, *changes.changed):
        if scheduler.get_job(name) is not None:  # a replay's job is gone once it ran
            scheduler.remove_job(name)
    for name in (*changes.added, *changes.changed):
        _schedule(scheduler, ingestor, name)


async def _follow(scheduler: AsyncIOScheduler, ingestor: Ingestor, watch: ConfigWatch) -> None:
    while True:
        config, names = await watch.next_change()
        try:
            changes = await ingestor.apply(config, names)
            _reschedule(scheduler, ingestor, changes)
        except Exception:  # one reload: never let it end the ingestor
            logger.exception("ingest config reload failed")
            continue
        logger.info(
            "ingest config reloaded sources=%d added=%s removed=%s changed=%s company_names=%d",
            len(ingestor.sources), ",".join(changes.added) or "-", ",".join(changes.removed) or "-",
            ",".join(changes.changed) or "-", len(names.by_name),
        )  # fmt: skip


async def _poll_job(ingestor: Ingestor, name: str) -> None:
    task = asyncio.current_task()
    if task is not None:
        task.set_name(f"{_TASK_PREFIX}{name}")
    await ingestor.poll(name)


async def run_scheduled(
    ingestor: Ingestor, stop: asyncio.Event, grace_s: float = 20.0, watch: ConfigWatch | None = None
) -> None:
    """Run the jobs until `stop` is set, then let running polls finish (up to `grace_s`) and stop.
    With `watch`, edits of the sources and companies files apply meanwhile."""
    async with ingestor:
        scheduler = build_scheduler(ingestor)
        scheduler.start()
        logger.info("ingest scheduler started sources=%d", len(ingestor.sources))
        follow = asyncio.create_task(_follow(scheduler, ingestor, watch)) if watch else None
        try:
            await stop.wait()
        finally:
            if follow is not None:
                follow.cancel()
            scheduler.pause()  # no new polls; let running ones finish (they are bounded by timeouts)
            running = [t for t in asyncio.all_tasks() if t.get_name().startswith(_TASK_PREFIX)]
            if running:
                logger.info("waiting for %d running polls to finish", len(running))
                await asyncio.wait(running, timeout=grace_s)
            scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # let cancelled job tasks unwind before the clients close
            logger.info("ingest scheduler stopped metrics=%s", ingestor.metrics.snapshot())
