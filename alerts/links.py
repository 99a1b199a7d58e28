"""Signed links in alert messages: `/feedback/{alert_id}?verdict=tp&token=...` records a
verdict, `/feedback/{alert_id}/chart.png?token=...` draws the alert's trend,
`/feedback/{alert_id}/mute?token=...` mutes the alert's entity in its subscription.

The token is an HMAC of the alert id and the link's purpose (tp, fp, chart, mute)
keyed by the API token, so a link serves only its own alert and purpose and
never reveals the API token. Without an API token (local use) links carry no token. The sinks build
the links (`FeedbackLinks`), the API's feedback page checks them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from pydantic import SecretStr

from finpulse.settings import ApiSettings

# Hex digits kept from the SHA-256 HMAC: 128 bits, plenty for a link token.
TOKEN_HEX = 32


# What a link may do besides recording a verdict (tp / fp).
CHART = "chart"
MUTE = "mute"


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

    def urls(self, alert_id: str) -> dict[str, str]:
        """The alert's links: its two verdicts ("tp", "fp"), its "chart" and "mute"."""
        verdicts = {verdict: self.url(alert_id, verdict) for verdict in ("tp", "fp")}
        return {**verdicts, CHART: self.chart_url(alert_id), MUTE: self.mute_url(alert_id)}

    def _action(self, alert_id: str, purpose: str, suffix: str) -> str:
        url = f"{self.base_url.rstrip('/')}/feedback/{quote(alert_id, safe='')}{suffix}"
        return url if self.secret is None else f"{url}?token={link_token(self.secret, alert_id, purpose)}"
