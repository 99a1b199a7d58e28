"""The sink interface every alert destination implements, and what it may raise.

    FinpulseError
    ├── ConfigError            the sink cannot work at all (bad token): stop, commit nothing
    ├── TransientError
    │   └── SinkUnavailable    try again later (timeout, 5xx, rate limit after retries)
    │       └── RateLimited    the service asked to wait `retry_after_s`
    └── PermanentError
        └── DeliveryRejected   this notification can never go (unknown channel): dead-letter it

Lifecycle: `start()` once before the first `send` (checks credentials), `stop()`
idempotent. `send` is called once per notification attempt; the dispatcher
retries and records deliveries, so a sink keeps no delivery state.
"""

from __future__ import annotations

import hashlib
import math
from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from finpulse.errors import PermanentError, TransientError
from finpulse.lifecycle import AsyncResource
from finpulse.schema import AlertEvent

if TYPE_CHECKING:
    from alerts.digest import Digest


class SinkUnavailable(TransientError):
    """The destination did not accept the notification now; retry with backoff."""


class RateLimited(SinkUnavailable):
    """The destination answered 429; wait `retry_after_s` before the next attempt."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# The wait a 429 without a usable Retry-After gets: short; the retries' backoff comes on top.
DEFAULT_RETRY_AFTER_S = 1.0
# Slack's rate limits are per minute: a longer wait than an hour is a broken header or gateway,
# and an unbounded one (inf, 1e400) would hold a sink's alerts and digests for good.
RETRY_AFTER_CAP_S = 3600.0


def parse_retry_after(value: str | None) -> float:
    """Seconds a 429's Retry-After header asks to wait, at most RETRY_AFTER_CAP_S.

    Anything but a finite number >= 0 (absent, garbage, inf, nan, an HTTP date) is
    DEFAULT_RETRY_AFTER_S.
    """
    try:
        seconds = float(value or "")
    except ValueError:
        return DEFAULT_RETRY_AFTER_S
    if not (math.isfinite(seconds) and seconds >= 0):
        return DEFAULT_RETRY_AFTER_S
    return min(seconds, RETRY_AFTER_CAP_S)


class DeliveryRejected(PermanentError):
    """The destination refused this notification for good (e.g. channel_not_found); `code` is
    the destination's own error code, when it gives one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Notification:
    """One message to send: events of one group, all fired or all resolved.

    `thread_ref` is the destination's reference of the fired message (Slack `ts`)
    that resolved notices reply to; None posts at top level. `test_note` marks a
    test message (`finpulse alerts test`): the note leads it and its events are examples.
    `subscription_names` maps its events' subscription ids to their names, for the words.
    """

    group_key: str
    channel: str
    state: Literal["fired", "resolved"]
    events: tuple[AlertEvent, ...]
    thread_ref: str | None = None
    test_note: str | None = None
    subscription_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def alert_ids(self) -> tuple[str, ...]:
        return tuple(e.alert_id for e in self.events)

    @property
    def delivery_id(self) -> str:
        """Deterministic id of this notification (its alert ids), sent as an idempotency key."""
        digest = hashlib.sha256("\x1f".join(sorted(self.alert_ids)).encode("utf-8"))
        return digest.hexdigest()[:24]


class AlertSink(AsyncResource):
    """A destination for notifications. Subclasses: SlackNotifier, ConsoleSink, WebhookSink."""

    name: str = "sink"

    async def start(self) -> None:
        """Open connections and check credentials; raise ConfigError if unusable."""
        return None

    async def stop(self) -> None:
        """Close connections; safe to call twice."""
        return None

    @abstractmethod
    async def send(self, notification: Notification) -> str | None:
        """Deliver one notification; return the message reference (Slack ts) or None.

        Raises SinkUnavailable / RateLimited (retry), DeliveryRejected (dead-letter),
        ConfigError (stop the dispatcher).
        """

    async def send_digest(self, digest: Digest) -> str | None:
        """Deliver a daily digest to its channel; return the message reference or None.
        Raises as `send`."""
        raise NotImplementedError(f"the {self.name} sink sends no digests")

    async def find_delivered(
        self, notification: Notification, since: datetime
    ) -> dict[str, tuple[str, str | None]]:
        """Alert ids of `notification` the destination already shows (sent before a crash).

        Returns alert_id -> (channel, message ref). Sinks that cannot look back return {}.
        """
        return {}

    async def find_digest(self, digest: Digest, since: datetime) -> str | None:
        """The message ref of `digest` if the destination already shows it (sent since `since`,
        before a crash); None if it does not, or the sink cannot look back (it is sent again)."""
        return None
