"""SlackNotifier: posts notifications with slack-sdk's AsyncWebClient.

Fired alerts are top-level messages; resolved notices reply in the fired
message's thread (`thread_ts`). Each message carries Slack message metadata
(`event_type` finpulse_alert, the alert ids; finpulse_digest, the digest id),
so after a crash the dispatcher can ask Slack which alerts and digests it already
shows (`find_delivered`, `find_digest`) instead of posting them twice.

The token is a SecretStr; it is handed to the client and appears nowhere else:
errors carry Slack's error code, never the request (slack-sdk's own debug log
redacts the Authorization header).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

import aiohttp
from pydantic import SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from finpulse.errors import ConfigError

from .digest import Digest
from .links import FeedbackLinks
from .render import blocks, digest_blocks, digest_text, fallback_text
from .sinks.base import (
    AlertSink,
    DeliveryRejected,
    Notification,
    RateLimited,
    SinkUnavailable,
    parse_retry_after,
)

logger = logging.getLogger(__name__)

METADATA_EVENT = "finpulse_alert"
# Test messages carry their own event type, so crash recovery never mistakes one for an alert.
METADATA_TEST_EVENT = "finpulse_test"
METADATA_DIGEST_EVENT = "finpulse_digest"
# Slack error codes that mean the token itself is unusable: stop rather than dead-letter.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission"}
)
# chat.postMessage errors that no message of this token can get past (no chat:write scope, a user
# token): stop, as for a refused token, rather than dead-letter every alert. (Enterprise Grid's
# team_access_not_granted and ekm_access_denied can be one channel's: dead-lettered.)
POST_TOKEN_ERRORS = frozenset({"missing_scope", "not_allowed_token_type"})
# Messages per page when reconciling after a crash (Slack's page size maximum is 1000), and the
# pages read: a busy channel's posts since the crash are all looked at, up to 2,000.
HISTORY_LIMIT = 200
HISTORY_PAGES = 10
# Channels per conversations.list page, and pages read, when a channel given by name is looked up.
LIST_LIMIT = 1000
LIST_PAGES = 20
# A conversation id (public C…, private G…, direct D…); a name is anything else.
_CONVERSATION_ID = re.compile(r"[CGD][A-Z0-9]{6,}")
# Look back this much before the recorded send attempt (clock skew between us and Slack).
LOOKBACK_SLACK_S = 120.0


class SlackNotifier(AlertSink):
    """Slack Web API sink (chat.postMessage, conversations.history/replies/list, auth.test)."""

    name = "slack"

    def __init__(
        self,
        token: SecretStr,
        *,
        base_url: str,
        timeout_s: float,
        links: FeedbackLinks | None = None,
        charts: bool = False,
    ) -> None:
        self._token = token
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._links = links
        self._charts = charts and links is not None
        self._client: AsyncWebClient | None = None
        # Channel name ("#alerts" or "alerts") -> id: conversations.history and .replies take ids.
        self._ids: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"SlackNotifier(base_url={self._base_url!r})"

    async def start(self) -> None:
        """Create the client and check the token with auth.test (ConfigError if refused)."""
        if self._client is not None:
            return
        self._client = AsyncWebClient(
            token=self._token.get_secret_value(),
            base_url=self._base_url,
            timeout=max(1, round(self._timeout_s)),
            retry_handlers=[],  # the dispatcher retries, with its own stop and backoff
        )
        data = await self._call("auth.test")
        logger.info("slack ready team=%s user=%s", data.get("team"), data.get("user_id"))

    async def stop(self) -> None:
        self._client = None

    async def send(self, notification: Notification) -> str | None:
        charts = self._charts and notification.state == "fired" and notification.test_note is None
        try:
            return await self._post(notification, charts)
        except DeliveryRejected as exc:
            if not (charts and exc.code == "invalid_blocks"):
                raise
            # Slack could not fetch a chart (the API unreachable from Slack): the alert goes without it.
            logger.warning(
                "slack could not fetch the alert charts, posting without them: is FINPULSE_API_PUBLIC_URL "
                "reachable from Slack? error=%s", exc
            )  # fmt: skip
            return await self._post(notification, False)

    async def _post(self, notification: Notification, charts: bool) -> str | None:
        payload = {
            "channel": notification.channel,
            "text": fallback_text(notification),
            "blocks": blocks(notification, self._links, charts),
            "thread_ts": notification.thread_ref,
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {
                "event_type": METADATA_EVENT if notification.test_note is None else METADATA_TEST_EVENT,
                "event_payload": {
                    "delivery_id": notification.delivery_id,
                    "alert_ids": ",".join(notification.alert_ids),
                },
            },
        }
        return self._sent(notification.channel, await self._call("chat.postMessage", **payload))

    async def send_digest(self, digest: Digest) -> str | None:
        payload = {
            "channel": digest.channel,
            "text": digest_text(digest),
            "blocks": digest_blocks(digest),
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {
                "event_type": METADATA_DIGEST_EVENT,
                "event_payload": {"digest_id": digest.digest_id},
            },
        }
        return self._sent(digest.channel, await self._call("chat.postMessage", **payload))

    def _sent(self, channel: str, data: dict[str, Any]) -> str | None:
        """The posted message's ts; the channel's id Slack answered is kept for crash recovery."""
        if data.get("channel"):
            self._ids[channel.lstrip("#")] = str(data["channel"])
        ts = data.get("ts")
        return str(ts) if ts is not None else None

    async def find_delivered(
        self, notification: Notification, since: datetime
    ) -> dict[str, tuple[str, str | None]]:
        wanted = set(notification.alert_ids)
        found: dict[str, tuple[str, str | None]] = {}
        for message in await self._marked(
            notification.channel, METADATA_EVENT, since, notification.thread_ref
        ):
            ids = str((message["metadata"].get("event_payload") or {}).get("alert_ids", "")).split(",")
            for alert_id in wanted.intersection(ids):
                found[alert_id] = (notification.channel, message.get("ts"))
        return found

    async def find_digest(self, digest: Digest, since: datetime) -> str | None:
        for message in await self._marked(digest.channel, METADATA_DIGEST_EVENT, since):
            if (message["metadata"].get("event_payload") or {}).get("digest_id") == digest.digest_id:
                return str(message.get("ts"))
        return None

    async def _marked(
        self, channel: str, event_type: str, since: datetime, thread_ref: str | None = None
    ) -> list[dict[str, Any]]:
        """The channel's messages since `since` (or the thread's) whose metadata is `event_type`;
        none when Slack refuses to show them (logged)."""
        args: dict[str, Any] = {
            "channel": await self._conversation(channel),
            "include_all_metadata": True,
            "limit": HISTORY_LIMIT,
        }
        if thread_ref is not None:
            method, args["ts"] = "conversations.replies", thread_ref
        else:
            method, args["oldest"] = "conversations.history", f"{since.timestamp() - LOOKBACK_SLACK_S:.6f}"
        try:
            messages = await self._pages(method, "messages", HISTORY_PAGES, **args)
        except DeliveryRejected as exc:
            logger.warning("cannot look back channel=%s error=%s", channel, exc)
            return []
        return [m for m in messages if (m.get("metadata") or {}).get("event_type") == event_type]

    async def _conversation(self, channel: str) -> str:
        """The channel's id: the history methods answer channel_not_found to a name. From the
        posts' answers, else conversations.list (scopes channels:read, groups:read); as given
        when not found (logged: an id in the subscription makes crash recovery exact)."""
        name = channel.lstrip("#")
        if _CONVERSATION_ID.fullmatch(channel) or name in self._ids:
            return self._ids.get(name, channel)
        listed: list[dict[str, Any]] = []
        # Private channels need groups:read as well: without it, public ones alone.
        for types in ("public_channel,private_channel", "public_channel"):
            try:
                listed = await self._pages(
                    "conversations.list", "channels", LIST_PAGES,
                    types=types, exclude_archived=True, limit=LIST_LIMIT,
                )  # fmt: skip
                break
            except DeliveryRejected as exc:
                if exc.code != "missing_scope" or types == "public_channel":
                    logger.warning(
                        "cannot look up channel=%s error=%s; give its id (C0…) instead", channel, exc
                    )
                    return channel
        self._ids |= {str(c["name"]): str(c["id"]) for c in listed if c.get("name") and c.get("id")}
        return self._ids.get(name, channel)

    async def _pages(self, method: str, key: str, pages: int, **args: Any) -> list[dict[str, Any]]:
        """The `key` items of up to `pages` pages of a cursor-paginated method."""
        items: list[dict[str, Any]] = []
        for _ in range(pages):
            data = await self._call(method, **args)
            items += data.get(key, [])
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
            args["cursor"] = cursor
        return items

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """One Web API call, its failures mapped onto the sink errors."""
        if self._client is None:
            raise RuntimeError("SlackNotifier.start() was not called")
        try:
            if method == "chat.postMessage":
                response = await self._client.api_call(method, json=kwargs)
            else:
                response = await self._client.api_call(method, http_verb="GET", params=kwargs)
        except SlackApiError as exc:
            raise _map_error(method, exc) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            why = str(exc) or "no answer within the timeout, FINPULSE_ALERTS_REQUEST_TIMEOUT_S"
            raise SinkUnavailable(
                f"slack {method}: cannot reach {self._base_url} ({type(exc).__name__}: {why}); check the "
                "network or proxy (FINPULSE_ALERTS_SLACK_BASE_URL names another address)"
            ) from None
        return dict(response.data) if isinstance(response.data, dict) else {}


def _map_error(method: str, exc: SlackApiError) -> Exception:
    data = getattr(exc.response, "data", None)
    if not isinstance(data, dict):  # slack_sdk hands over aiohttp's own response then
        said = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return SinkUnavailable(
            f"slack {method}: not a Slack API reply (HTTP {getattr(exc.response, 'status', '?')}: {said}); "
            "a proxy's error page, or FINPULSE_ALERTS_SLACK_BASE_URL names something else"
        )
    status = exc.response.status_code
    error = str(data.get("error", f"http_{status}"))
    if status == 429 or error == "ratelimited":
        headers = exc.response.headers
        retry_after = parse_retry_after(headers.get("Retry-After", headers.get("retry-after")))
        return RateLimited(f"slack {method}: rate limited, retry after {retry_after:g} s", retry_after)
    if status >= 500 or error in {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}:
        return SinkUnavailable(f"slack {method}: {error} (HTTP {status})")
    if error in AUTH_ERRORS:
        return ConfigError(
            f"slack {method}: {error}: the Slack token was refused; set FINPULSE_ALERTS_SLACK_TOKEN "
            "or FINPULSE_ALERTS_SLACK_TOKEN_FILE to a valid bot token"
        )
    if method == "chat.postMessage" and error in POST_TOKEN_ERRORS:
        needed = f" (it needs {data['needed']})" if data.get("needed") else ""
        return ConfigError(
            f"slack {method}: {error}: the Slack token may not post messages{needed}; give the app the "
            "chat:write scope and use its bot token (xoxb-) in FINPULSE_ALERTS_SLACK_TOKEN"
        )
    return DeliveryRejected(f"slack {method}: {error}", code=error)
