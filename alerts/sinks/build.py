"""The sinks named in settings (`alerts.sinks`), built for the dispatcher, `alerts test` and the API."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from alerts.links import FeedbackLinks
from alerts.sinks.base import AlertSink
from alerts.sinks.console import ConsoleSink
from alerts.sinks.webhook import WebhookSink
from alerts.slack import SlackNotifier
from finpulse.errors import ConfigError
from finpulse.settings import Settings

logger = logging.getLogger(__name__)
# Sinks whose messages people read elsewhere: their links must open there.
SENT_AWAY = ("slack", "webhook")


def build_sinks(names: Sequence[str] | None, s: Settings) -> list[AlertSink]:
    """Sinks by name (none given: `alerts.sinks`); ConfigError names the setting that is missing.
    Every sink's fired alerts carry links to the API (`api.public_url`, signed with the API token)."""
    settings, links = s.alerts, FeedbackLinks.from_settings(s.api)
    chosen = list(dict.fromkeys(names or settings.sinks))
    if s.api.local_only() and any(name in SENT_AWAY for name in chosen):
        logger.warning(
            "alert links (verdicts, mute, chart, dashboard) point at %s, which opens on this machine only: "
            "set FINPULSE_API_PUBLIC_URL to the API's address as subscribers reach it",
            links.base_url,
        )
    elif s.api.token is None and any(name in SENT_AWAY for name in chosen):
        logger.warning(
            "alert links (verdicts, mute, chart) to %s go unsigned: FINPULSE_API_TOKEN is not set in this "
            "process, and an API that needs one refuses them; give the dispatcher the API's token",
            links.base_url,
        )
    sinks: list[AlertSink] = []
    for name in chosen:
        if name == "slack":
            token = settings.resolved_slack_token()
            if token is None or not token.get_secret_value():
                raise ConfigError(
                    "the slack sink needs a token: set FINPULSE_ALERTS_SLACK_TOKEN or "
                    "FINPULSE_ALERTS_SLACK_TOKEN_FILE (or use --sink console)"
                )
            if settings.slack_charts and not s.api.public_url:
                raise ConfigError(
                    "FINPULSE_ALERTS_SLACK_CHARTS needs FINPULSE_API_PUBLIC_URL: the API's address as Slack "
                    "reaches it (Slack fetches the charts from there)"
                )
            sinks.append(
                SlackNotifier(
                    token,
                    base_url=settings.slack_base_url,
                    timeout_s=settings.request_timeout_s,
                    links=links,
                    charts=settings.slack_charts,
                )
            )
        elif name == "console":
            sinks.append(ConsoleSink(links=links))
        elif name == "webhook":
            if not settings.webhook_url:
                raise ConfigError("the webhook sink needs FINPULSE_ALERTS_WEBHOOK_URL")
            sinks.append(WebhookSink(settings.webhook_url, timeout_s=settings.request_timeout_s, links=links))
        else:
            raise ConfigError(f"unknown sink {name!r}: use slack, console or webhook")
    return sinks
