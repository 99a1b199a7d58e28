"""Trend charts inside Slack messages (FINPULSE_ALERTS_SLACK_CHARTS): the local Slack-API server
downloads each image block from the real API, as Slack does, or refuses the message."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from alerts.links import FeedbackLinks
from alerts.sinks.base import Notification
from alerts.sinks.build import build_sinks
from alerts.slack import SlackNotifier
from api.app import create_app
from finpulse.errors import ConfigError
from finpulse.settings import AlertsSettings, ApiSettings, Settings, StoreSettings
from store import DuckDBStore
from tests.conftest import free_port
from tests.fixtures.slack import VALID_TOKEN, FakeSlack
from tests.fixtures.store import alert, seed_spike, serve_app

API_TOKEN = "api-token-charts-77"


def _send(slack: FakeSlack, links: FeedbackLinks, notification: Notification) -> str | None:
    async def go() -> str | None:
        async with SlackNotifier(
            SecretStr(VALID_TOKEN), base_url=slack.base_url, timeout_s=10, links=links, charts=True
        ) as sink:
            return await sink.send(notification)

    return asyncio.run(go())


def test_fired_alerts_show_their_chart_and_go_without_it_when_slack_cannot_fetch_it(
    tmp_path: Path, slack_api: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "h.duckdb"
    with DuckDBStore(path) as db:
        burst = seed_spike(db, end=datetime.now(UTC) - timedelta(minutes=5))
        fired = alert("acme-1", "ACME", burst[0], entity_kind="ticker")
        db.upsert_alerts([fired])
    settings = Settings(
        store=StoreSettings(url=f"duckdb:///{path}"), api=ApiSettings(token=SecretStr(API_TOKEN))
    )
    with serve_app(create_app(settings)) as base:
        links = FeedbackLinks(base, SecretStr(API_TOKEN))
        assert _send(slack_api, links, Notification("k", "#alerts", "fired", (fired,))) is not None
        resolved = alert("acme-1r", "ACME", burst[1], state="resolved", entity_kind="ticker")
        _send(slack_api, links, Notification("k", "#alerts", "resolved", (resolved,)))
    first, notice = slack_api.posts
    [image] = [b for b in first.blocks if b["type"] == "image"]
    assert image["image_url"] == links.chart_url("acme-1")
    assert slack_api.images[image["image_url"]].startswith(b"\x89PNG")  # Slack got the real chart
    assert "ACME" in image["alt_text"]
    assert not [b for b in notice.blocks if b["type"] == "image"]  # a resolved notice has none
    assert API_TOKEN not in json.dumps(first.blocks)

    # The API is not reachable from Slack: Slack refuses the message; it goes again without the chart.
    unreachable = FeedbackLinks(f"http://127.0.0.1:{free_port()}", SecretStr(API_TOKEN))
    with caplog.at_level(logging.WARNING, logger="alerts.slack"):
        assert _send(slack_api, unreachable, Notification("k", "#alerts", "fired", (fired,))) is not None
    last = slack_api.posts[-1]
    assert len(slack_api.posts) == 3
    assert not [b for b in last.blocks if b["type"] == "image"]
    assert "Trend chart" in json.dumps(last.blocks)  # the link stays
    assert "is FINPULSE_API_PUBLIC_URL reachable from Slack" in caplog.text


def test_charts_need_a_public_api_address() -> None:
    alerts = AlertsSettings(slack_token=SecretStr(VALID_TOKEN), slack_charts=True)
    with pytest.raises(ConfigError, match="FINPULSE_API_PUBLIC_URL"):
        build_sinks(["slack"], Settings(alerts=alerts))
    [sink] = build_sinks(["slack"], Settings(alerts=alerts, api=ApiSettings(public_url="https://fp.example")))
    assert isinstance(sink, SlackNotifier)
