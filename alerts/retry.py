"""Retries for sink calls: exponential backoff with full jitter, Retry-After honoured, a stop."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .metrics import RETRIES
from .sinks.base import RateLimited, SinkUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")

# First backoff 0.5 s, doubling, capped at 30 s (AWS "full jitter" scheme).
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
# A Retry-After longer than this is not waited out inside one attempt loop.
MAX_RETRY_AFTER_S = 120.0


def backoff_s(attempt: int, rng: random.Random | None = None) -> float:
    """Delay before retry `attempt` (1-based): uniform in [0, min(cap, base * 2^(attempt-1))]."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
    return (rng or random).uniform(0, ceiling)


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `call`, retrying SinkUnavailable up to `attempts` times in all.

    RateLimited waits its `retry_after_s` (at least the backoff); one over
    MAX_RETRY_AFTER_S, and other errors, propagate at once. The last
    SinkUnavailable propagates when attempts run out.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except SinkUnavailable as exc:
            if attempt == attempts:
                raise
            delay = backoff_s(attempt)
            if isinstance(exc, RateLimited):
                if exc.retry_after_s > MAX_RETRY_AFTER_S:
                    raise
                delay = max(delay, exc.retry_after_s)
            RETRIES.labels(type(exc).__name__).inc()
            logger.warning(
                "retrying what=%s attempt=%d/%d in_s=%.2f error=%s", what, attempt, attempts, delay, exc
            )
            await sleep(delay)
    raise AssertionError("unreachable: attempts >= 1")
