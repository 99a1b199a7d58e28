"""WebhookSink: notifications POSTed as JSON to any HTTP endpoint.

Body: `{"delivery_id", "group_key", "channel", "state", "thread_ref", "events": [AlertEvent...],
"subscription_names": {subscription_id: name}}`,
and `"feedback": {alert_id: {"tp": url, "fp": url, "chart": url, "mute": url}}` for fired alerts
when links are configured (a test message from `finpulse alerts test` has `"test_note"` instead);
header `Idempotency-Key: <delivery_id>`, so receivers can drop repeats. A daily digest is
`{"digest": {...}, "channel"}` with its `digest_id` as the key. 2xx accepts;
429 (Retry-After), 5xx, timeouts are retried; other 4xx are rejected (dead-lettered).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx

from alerts.digest import Digest
from alerts.links import FeedbackLinks
from alerts.sinks.base import (
    AlertSink,
    DeliveryRejected,
    Notification,
    RateLimited,
    SinkUnavailable,
    parse_retry_after,
)
from finpulse.errors import ConfigError

logger = logging.getLogger(__name__)


class WebhookSink(AlertSink):
    """Generic HTTP JSON sink."""

    name = "webhook"

    def __init__(self, url: str, *, timeout_s: float, links: FeedbackLinks | None = None) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._links = links
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s, follow_redirects=False)

    async def stop(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def send(self, notification: Notification) -> str | None:
        if self._client is None:
            raise RuntimeError("WebhookSink.start() was not called")
        body: dict[str, Any] = {
            "delivery_id": notification.delivery_id,
            "group_key": notification.group_key,
            "channel": notification.channel,
            "state": notification.state,
            "thread_ref": notification.thread_ref,
            "events": [json.loads(e.to_bytes()) for e in notification.events],
            "subscription_names": dict(notification.subscription_names),
        }
        if notification.test_note is not None:
            body["test_note"] = notification.test_note
        elif self._links is not None and notification.state == "fired":
            body["feedback"] = {e.alert_id: self._links.urls(e) for e in notification.events}
        return await self._post(body, notification.delivery_id)

    async def send_digest(self, digest: Digest) -> str | None:
        return await self._post({"digest": digest.to_json(), "channel": digest.channel}, digest.digest_id)

    async def _post(self, body: dict[str, Any], idempotency_key: str) -> str | None:
        if self._client is None:
            raise RuntimeError("WebhookSink.start() was not called")
        try:
            response = await self._client.post(
                self._url, json=body, headers={"Idempotency-Key": idempotency_key}
            )
        except httpx.TimeoutException as exc:
            raise SinkUnavailable(f"webhook: timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise SinkUnavailable(f"webhook: connection failed ({type(exc).__name__})") from None
        status = response.status_code
        if status == 429:
            raise RateLimited("webhook: rate limited", parse_retry_after(response.headers.get("Retry-After")))
        if status >= 500:
            raise SinkUnavailable(f"webhook: HTTP {status}")
        if status == 401:  # no alert's fault: a credential in the URL rotated, say (a 403 may be one's)
            raise ConfigError(
                "webhook: HTTP 401: the receiver refuses this sink; check FINPULSE_ALERTS_WEBHOOK_URL"
            )
        if status >= 400:
            raise DeliveryRejected(f"webhook: HTTP {status}")
        return None
