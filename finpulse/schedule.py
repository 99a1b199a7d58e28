"""A job every so often on the running event loop (APScheduler 3 AsyncIOScheduler): the API's
retention and the dispatcher's daily digests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger


def every(interval: timedelta, job: Callable[[], Awaitable[Any]], job_id: str) -> AsyncIOScheduler:
    """A started scheduler running `job` now and then every `interval`; `shutdown(wait=False)`
    stops it."""
    scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
    scheduler.add_job(
        job,
        IntervalTrigger(seconds=interval.total_seconds(), timezone=UTC),
        id=job_id,
        next_run_time=datetime.now(UTC),  # the first run at start, not one interval later
        coalesce=True,  # after a suspended host, one catch-up run, not a burst
        max_instances=1,
        misfire_grace_time=None,
    )
    scheduler.start()
    return scheduler
