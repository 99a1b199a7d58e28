"""Signed feedback links in alert messages."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from pydantic import SecretStr, ValidationError

from alerts.links import CHART, MUTE, FeedbackLinks, alert_view, check_link_token, feedback_url, link_token
from alerts.sinks.build import build_sinks
from finpulse.settings import AlertsSettings, ApiSettings, Settings
from tests.fixtures.slack import VALID_TOKEN
from tests.unit.alerts.events import alert

SECRET = SecretStr("s3cret")


def test_a_link_token_is_bound_to_its_alert_and_verdict() -> None:
    token = link_token(SECRET, "a1", "tp")
    assert len(token) == 32
    assert check_link_token(SECRET, "a1", "tp", token)
    assert not check_link_token(SECRET, "a1", "fp", token)
    assert not check_link_token(SECRET, "a2", "tp", token)
    assert not check_link_token(SECRET, "a1", "tp", None)
    assert not check_link_token(SECRET, "a1", "tp", link_token(SecretStr("other"), "a1", "tp"))
    assert check_link_token(SECRET, "a1", "fp", "s3cret")  # the API token itself also works
    assert check_link_token(None, "a1", "tp", None)  # no token configured: local use


def test_feedback_url_quotes_the_id_and_never_contains_the_secret() -> None:
    url = feedback_url("https://finpulse.example/", SECRET, "sub/1:x y", "fp")
    assert url.startswith("https://finpulse.example/feedback/sub%2F1%3Ax%20y?verdict=fp&token=")
    assert "s3cret" not in url
    assert (
        feedback_url("http://127.0.0.1:8000", None, "a1", "tp")
        == "http://127.0.0.1:8000/feedback/a1?verdict=tp"
    )


def test_feedback_links_from_the_api_settings() -> None:
    local = FeedbackLinks.from_settings(ApiSettings(port=8123))
    assert local.url("a1", "tp") == "http://127.0.0.1:8123/feedback/a1?verdict=tp"
    public = FeedbackLinks.from_settings(ApiSettings(public_url="https://fp.example/", token=SECRET))
    assert public.url("a1", "fp") == feedback_url("https://fp.example/", SECRET, "a1", "fp")
    assert "s3cret" not in repr(public)


def test_non_ascii_tokens_are_simply_wrong() -> None:
    assert not check_link_token(SECRET, "a1", "tp", "jeton-é")


def test_a_chart_link_is_signed_for_the_chart_only() -> None:
    links = FeedbackLinks("https://fp.example/", SECRET)
    url = links.chart_url("sub/1")
    assert url == f"https://fp.example/feedback/sub%2F1/chart.png?token={link_token(SECRET, 'sub/1', CHART)}"
    token = url.rsplit("=", 1)[1]
    assert check_link_token(SECRET, "sub/1", CHART, token)
    assert not check_link_token(SECRET, "sub/1", "tp", token)  # a chart link records no verdict
    assert (
        FeedbackLinks("http://127.0.0.1:8000").chart_url("a1")
        == "http://127.0.0.1:8000/feedback/a1/chart.png"
    )
    assert (
        links.mute_url("a1") == f"https://fp.example/feedback/a1/mute?token={link_token(SECRET, 'a1', MUTE)}"
    )
    event = alert(1)
    assert links.urls(event) == {
        "tp": links.url(event.alert_id, "tp"),
        "fp": links.url(event.alert_id, "fp"),
        "chart": links.chart_url(event.alert_id),
        "dashboard": links.dashboard_url(event),
        "mute": links.mute_url(event.alert_id),
    }


def test_the_dashboard_link_shows_the_alerts_entity_as_its_chart_does() -> None:
    event = alert(1, entity="ACME")  # a 5-minute window: 5-minute buckets, 60 before its end, 12 after
    url = FeedbackLinks("https://fp.example/", SECRET).dashboard_url(event)
    start, end = event.window_end - timedelta(hours=5), event.window_end + timedelta(hours=1)
    assert url == (
        f"https://fp.example/?kind=ticker&entity=ACME&range=custom&from={start:%Y-%m-%dT%H%%3A%M}"
        f"&to={end:%Y-%m-%dT%H%%3A%M}&step=5min"
    )
    assert "token" not in url  # the dashboard asks for the API token itself
    hourly = event.model_copy(update={"window_start": event.window_end - timedelta(hours=1)})
    assert alert_view(hourly) == (
        "hour",
        event.window_end - timedelta(hours=60),
        event.window_end + timedelta(hours=12),
    )


def test_the_public_address_is_an_http_address() -> None:
    assert ApiSettings(public_url=" https://fp.example/ ").public_url == "https://fp.example/"
    assert ApiSettings(public_url="").public_url is None
    for bad in ("not-a-url", "fp.example", "ftp://fp.example", "https://"):
        with pytest.raises(ValidationError, match="is not an http"):
            ApiSettings(public_url=bad)


def test_links_that_open_on_this_machine_only_are_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    assert ApiSettings().local_only()  # http://127.0.0.1:8000
    assert ApiSettings(host="0.0.0.0").local_only()
    assert ApiSettings(public_url="http://localhost:8000").local_only()
    assert not ApiSettings(public_url="https://fp.example").local_only()
    assert not ApiSettings(host="10.1.2.3").local_only()
    slack = AlertsSettings(slack_token=SecretStr(VALID_TOKEN))
    with caplog.at_level(logging.WARNING, logger="alerts.sinks.build"):
        build_sinks(["console"], Settings(alerts=slack))  # read here: no warning
        assert not caplog.records
        build_sinks(["slack"], Settings(alerts=slack))
    assert "point at http://127.0.0.1:8000, which opens on this machine only" in caplog.text
    assert "FINPULSE_API_PUBLIC_URL" in caplog.text
    caplog.clear()
    public = ApiSettings(public_url="https://fp.example", token=SecretStr("api-secret"))
    build_sinks(["slack"], Settings(alerts=slack, api=public))
    assert not caplog.records
    # A dispatcher without the API's token sends unsigned links, which that API refuses: said.
    build_sinks(["slack"], Settings(alerts=slack, api=ApiSettings(public_url="https://fp.example")))
    assert "go unsigned: FINPULSE_API_TOKEN is not set in this process" in caplog.text
