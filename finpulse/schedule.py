"""A job every so often on the running event loop (APScheduler 3 AsyncIOScheduler): the API's
retention and the dispatcher's daily digests."""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from finpulse.lifecycle import AsyncResource


class Periodic(AsyncResource):
    """Runs `run_once` at `start()` and then every `interval` until `stop()`."""

    job_id: str = "periodic"

    def __init__(self, interval: timedelta) -> None:
        self.interval = interval
        self._scheduler: AsyncIOScheduler | None = None

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    @abstractmethod
    async def run_once(self) -> Any:
        """One run; its failures are its own to log (the schedule goes on)."""

    async def start(self) -> None:
        if self._scheduler is not None:
            return
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        scheduler.add_job(
            self.run_once,
            IntervalTrigger(seconds=self.interval.total_seconds(), timezone=UTC),
            id=self.job_id,
            next_run_time=datetime.now(UTC),  # the first run at start, not one interval later
            coalesce=True,  # after a suspended host, one catch-up run, not a burst
            max_instances=1,
            misfire_grace_time=None,
        )
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
