"""Links in alert messages. Signed: `/feedback/{alert_id}?verdict=tp&token=...` records a
verdict, `/feedback/{alert_id}/chart.png?token=...` draws the alert's trend,
`/feedback/{alert_id}/mute?token=...` mutes the alert's entity in its subscription. Not
signed: the dashboard's view of the entity around the alert (`/?kind=...&entity=...`; the
dashboard asks for the API token itself).

The token is an HMAC of the alert id and the link's purpose (tp, fp, chart, mute)
keyed by the API token, so a link serves only its own alert and purpose and
never reveals the API token. Without an API token (local use) links carry no token. The sinks build
the links (`FeedbackLinks`), the API's feedback page checks them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from pydantic import SecretStr

from finpulse.schema import AlertEvent
from finpulse.settings import ApiSettings
from store import STEPS, Granularity

# Hex digits kept from the SHA-256 HMAC: 128 bits, plenty for a link token.
TOKEN_HEX = 32


# What a link may do besides recording a verdict (tp / fp).
CHART = "chart"
MUTE = "mute"
DASHBOARD = "dashboard"
# An alert is shown in buckets about its window's size: this many before the window's end, after.
BUCKETS_BEFORE, BUCKETS_AFTER = 60, 12


def alert_view(e: AlertEvent) -> tuple[Granularity, datetime, datetime]:
    """The buckets and range an alert is shown in: its chart, its dashboard link."""
    span = e.window_end - e.window_start
    granularity: Granularity = (
        "5min" if span <= timedelta(minutes=15) else "hour" if span <= timedelta(hours=6) else "day"
    )
    step = STEPS[granularity]
    return granularity, e.window_end - BUCKETS_BEFORE * step, e.window_end + BUCKETS_AFTER * step


def link_token(secret: SecretStr, alert_id: str, purpose: str) -> str:
    """The token that authorises `purpose` (a verdict, CHART or MUTE) for `alert_id`."""
    message = f"feedback:{alert_id}:{purpose}".encode()
    return hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).hexdigest()[:TOKEN_HEX]


def check_link_token(secret: SecretStr | None, alert_id: str, purpose: str, token: str | None) -> bool:
    """True when no secret is set, or the token is the link token or the API token itself."""
    if secret is None:
        return True
    if not token:
        return False
    given = token.encode()  # bytes: compare_digest refuses non-ASCII str
    expected = link_token(secret, alert_id, purpose).encode()
    return hmac.compare_digest(given, expected) or hmac.compare_digest(
        given, secret.get_secret_value().encode()
    )


def feedback_url(base_url: str, secret: SecretStr | None, alert_id: str, verdict: str) -> str:
    """The link an analyst clicks to mark an alert true (tp) or false (fp) positive."""
    params = {"verdict": verdict}
    if secret is not None:
        params["token"] = link_token(secret, alert_id, verdict)
    return f"{base_url.rstrip('/')}/feedback/{quote(alert_id, safe='')}?{urlencode(params)}"


@dataclass(frozen=True)
class FeedbackLinks:
    """Where the API answers feedback links, and the API token that signs them."""

    base_url: str
    secret: SecretStr | None = None

    @classmethod
    def from_settings(cls, api: ApiSettings) -> FeedbackLinks:
        return cls(api.public_url or f"http://{api.host}:{api.port}", api.token)

    def url(self, alert_id: str, verdict: str) -> str:
        return feedback_url(self.base_url, self.secret, alert_id, verdict)

    def chart_url(self, alert_id: str) -> str:
        """The alert's trend chart (PNG), served by the API without its token."""
        return self._action(alert_id, CHART, "/chart.png")

    def mute_url(self, alert_id: str) -> str:
        """A page that mutes the alert's entity in its subscription for a while."""
        return self._action(alert_id, MUTE, "/mute")

    def dashboard_url(self, e: AlertEvent) -> str:
        """The dashboard's trend of the alert's entity around it (the view its chart draws)."""
        granularity, start, end = alert_view(e)
        view = {
            "kind": e.entity_kind, "entity": e.entity, "range": "custom",
            "from": f"{start:%Y-%m-%dT%H:%M}", "to": f"{end:%Y-%m-%dT%H:%M}", "step": granularity,
        }  # fmt: skip
        return f"{self.base_url.rstrip('/')}/?{urlencode(view)}"

    def urls(self, e: AlertEvent) -> dict[str, str]:
        """The alert's links: its two verdicts ("tp", "fp"), its "chart", "dashboard" and "mute"."""
        verdicts = {verdict: self.url(e.alert_id, verdict) for verdict in ("tp", "fp")}
        return {
            **verdicts, CHART: self.chart_url(e.alert_id), DASHBOARD: self.dashboard_url(e),
            MUTE: self.mute_url(e.alert_id),
        }  # fmt: skip

    def _action(self, alert_id: str, purpose: str, suffix: str) -> str:
        url = f"{self.base_url.rstrip('/')}/feedback/{quote(alert_id, safe='')}{suffix}"
        return url if self.secret is None else f"{url}?token={link_token(self.secret, alert_id, purpose)}"
