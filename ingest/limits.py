"""Per-host politeness: a concurrency cap and a minimum interval between request starts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class HostLimiter:
    """At most `concurrency` requests in flight per host, starts `min_interval_s` apart."""

    def __init__(self, concurrency: int, min_interval_s: float) -> None:
        self.concurrency = concurrency
        self.min_interval_s = min_interval_s
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self._next_start: dict[str, float] = {}

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's request slots for the duration of the block."""
        semaphore = self._semaphores.setdefault(host, asyncio.Semaphore(self.concurrency))
        async with semaphore:
            loop = asyncio.get_running_loop()
            now = loop.time()
            # Reserve a start time before awaiting, so concurrent callers queue up behind it.
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + self.min_interval_s
            if start > now:
                await asyncio.sleep(start - now)
            yield
