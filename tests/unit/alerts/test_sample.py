"""Test messages (`finpulse alerts test`): what they say and how every sink marks them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from rich.console import Console

from alerts.links import FeedbackLinks
from alerts.render import TEST_HEADER, blocks, fallback_text
from alerts.sample import describe, sample_notification
from alerts.sinks.console import ConsoleSink
from alerts.subscriptions import DetectorParams, MuteWindow, Subscription, SubscriptionFilter
from alerts.windows import window_sizes
from finpulse.settings import AlertsSettings

from .synth import subscription

NOW = datetime(2026, 3, 2, 9, 7, 30, tzinfo=UTC)
LINKS = FeedbackLinks("https://fp.example", SecretStr("api-token"))


def _desk(**kw: object) -> Subscription:
    return Subscription.model_validate(
        {
            "id": "energy-desk",
            "name": "Energy desk",
            "channel": "#energy",
            "filter": SubscriptionFilter(topics=("Energy | Oil",), tickers=("XOM", "CVX")),
            "detector": DetectorParams(min_volume=30, min_rise=0.25, significance=0.01),
            **kw,
        }
    )


def test_the_example_is_a_fired_alert_of_the_subscriptions_own_entity_and_rules() -> None:
    n = sample_notification(_desk(), NOW)
    [event] = n.events
    assert (n.channel, n.state, event.subscription_id) == ("#energy", "fired", "energy-desk")
    assert (event.entity_kind, event.entity) == ("topic", "Energy | Oil")
    assert event.count >= 30  # enough stories to be tested
    assert event.negative_share - event.baseline_negative_share >= 0.25  # past the rise
    assert event.p_value < event.significance == 0.01
    assert event.window_end == datetime(2026, 3, 2, 9, 7, tzinfo=UTC)
    assert event.alert_id.startswith("test-")
    assert sample_notification(_desk(), NOW).alert_ids != n.alert_ids, "never taken for a delivered alert"
    assert n.test_note is not None
    for expected in ("energy-desk (Energy desk)", "topics Energy | Oil; tickers XOM, CVX", "25 points"):
        assert expected in n.test_note
    assert "none will" not in n.test_note


def test_a_wildcard_a_disabled_and_a_muted_subscription_say_so() -> None:
    [event] = sample_notification(subscription(topics=("*",)), NOW).events
    assert (event.entity_kind, event.entity) == ("topic", "Earnings")  # a name a topic could have
    assert "It watches every topic; fires" in (sample_notification(subscription(), NOW).test_note or "")
    off = _desk(enabled=False, mute=(MuteWindow.model_validate({"until": "2027-01-01T00:00:00Z"}),))
    note = sample_notification(off, NOW).test_note or ""
    assert "it is disabled and muted right now, so none will until that changes" in note
    assert describe(off) in note


def test_an_unadjusted_subscription_says_so() -> None:
    raw = _desk(detector=DetectorParams(min_volume=30, min_rise=0.25, significance=0.01, correction="none"))
    n = sample_notification(raw, NOW)
    assert "with p < 0.01 (unadjusted)" in (n.test_note or "")
    assert "(one-sided binomial, unadjusted; α = 0.01)" in json.dumps(blocks(n), ensure_ascii=False)
    assert "with p < 0.01 (Benjamini-Hochberg-adjusted)" in describe(_desk())


def test_slack_blocks_are_marked_and_carry_no_verdict_links() -> None:
    n = sample_notification(_desk(), NOW)
    rendered = blocks(n, LINKS)
    assert rendered[0]["text"]["text"] == TEST_HEADER
    assert "energy-desk (Energy desk)" in rendered[1]["text"]["text"]
    body = json.dumps(rendered)
    assert "Example headline" in body
    assert "topic *Energy | Oil*" in body
    assert "Real event?" not in body
    assert "fp.example" not in body
    assert "finpulse alerts test" in rendered[-1]["elements"][0]["text"]
    assert fallback_text(n).startswith(f"[{TEST_HEADER}] Negative news spike: topic Energy | Oil")
    # News-free, but the subscription's own names are still escaped.
    hostile = _desk(name="<!channel> desk")
    assert "<!channel>" not in json.dumps(blocks(sample_notification(hostile, NOW)))


async def test_console_prints_the_note_and_no_verdict_links() -> None:
    console = Console(record=True, width=400, color_system=None)
    await ConsoleSink(console, links=LINKS).send(sample_notification(_desk(), NOW))
    out = console.export_text()
    assert out.startswith("test Alerts of subscription energy-desk")
    assert "example topic Energy | Oil" in out  # not "fired": the log, read later, says it was an example
    assert "fired" not in out
    assert "real event?" not in out


def test_the_example_window_is_the_subscriptions_kind() -> None:
    hourly = subscription().model_copy(update={"detector": DetectorParams(window="hopping")})
    [event] = sample_notification(hourly, NOW, window_sizes(AlertsSettings())["hopping"]).events
    assert (event.window_kind, event.window_end - event.window_start) == ("hopping", timedelta(hours=1))
    [event] = sample_notification(subscription(), NOW).events
    assert event.window_end - event.window_start == timedelta(minutes=5)
