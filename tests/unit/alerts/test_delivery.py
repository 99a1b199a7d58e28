"""Grouping, retries, and the Slack / webhook / console sinks against the local Slack-API server."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from pydantic import SecretStr
from rich.console import Console

from alerts.dispatcher import AlertDispatcher
from alerts.grouping import Grouper, group_key
from alerts.ledger import DeliveryLedger
from alerts.links import FeedbackLinks
from alerts.retry import with_retries
from alerts.sinks.base import DeliveryRejected, Notification, RateLimited, SinkUnavailable, parse_retry_after
from alerts.sinks.console import ConsoleSink
from alerts.sinks.webhook import WebhookSink
from alerts.slack import SlackNotifier
from finpulse.errors import ConfigError
from finpulse.settings import AlertsSettings, KafkaSettings
from tests.fixtures.slack import VALID_TOKEN, FakeSlack

from .events import alert
from .synth import subscription


def test_grouper_waits_then_respects_the_interval() -> None:
    g: Grouper[str] = Grouper()
    g.add("k", "a", wait_s=30, interval_s=300, now=0)
    g.add("k", "b", wait_s=30, interval_s=300, now=10)
    assert g.due(29) == []
    assert g.next_due() == 30
    assert g.due(30) == [("k", ["a", "b"])]
    g.add("k", "c", wait_s=30, interval_s=300, now=40)  # same group soon after: waits the interval
    assert g.due(100) == []
    assert g.due(330) == [("k", ["c"])]
    g.add("other", "d", wait_s=0, interval_s=300, now=331)
    assert g.due(331) == [("other", ["d"])]
    g.add("k", "e", wait_s=30, interval_s=300, now=1000)  # long after: a fresh group
    assert g.due(1030) == [("k", ["e"])]


def test_grouper_retry_and_drop() -> None:
    g: Grouper[int] = Grouper()
    g.add("k", 1, wait_s=0, interval_s=60, now=0)
    [(key, items)] = g.due(0)
    g.retry(key, items, at=5)
    g.add("k2", 2, wait_s=0, interval_s=60, now=1)
    assert g.drop(lambda i: i == 2) == 1
    assert g.due(5) == [("k", [1])]
    assert len(g) == 0


def test_group_keys_follow_group_by() -> None:
    sub = subscription().model_copy(update={"group_by": ("subscription", "entity")})
    a, b = alert(1), alert(2)
    assert group_key(a, sub, "#a") != group_key(b, sub, "#a")
    assert group_key(a, None, "#a") == group_key(b, None, "#a")
    assert group_key(a, None, "#a") != group_key(a, None, "#b")


async def test_retries_stop_and_honour_retry_after() -> None:
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)

    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RateLimited("429", 7)
        if calls == 2:
            raise SinkUnavailable("503")
        return "ok"

    assert await with_retries(flaky, attempts=3, what="t", sleep=sleep) == "ok"
    assert slept[0] >= 7
    assert len(slept) == 2

    async def down() -> str:
        raise SinkUnavailable("503")

    with pytest.raises(SinkUnavailable):
        await with_retries(down, attempts=4, what="t", sleep=sleep)
    assert len(slept) == 2 + 3

    async def rejected() -> str:
        raise DeliveryRejected("channel_not_found")

    with pytest.raises(DeliveryRejected):
        await with_retries(rejected, attempts=4, what="t", sleep=sleep)


def _slack(server: FakeSlack, token: str = VALID_TOKEN, timeout_s: float = 5) -> SlackNotifier:
    return SlackNotifier(SecretStr(token), base_url=server.base_url, timeout_s=timeout_s)


async def test_a_long_retry_after_holds_the_group_that_long(slack_api: FakeSlack, tmp_path: Path) -> None:
    """Past what with_retries waits out, the dispatcher reschedules the group after Retry-After,
    not after its (here zero) group interval."""
    now = 0.0
    sub = subscription().model_copy(update={"group_wait_s": 0.0, "group_interval_s": 0.0})
    slack_api.fail_next(1, status=429, retry_after_s=600)
    async with _slack(slack_api) as sink:
        d = AlertDispatcher(
            kafka=KafkaSettings(),
            settings=AlertsSettings(),
            sinks=[sink],
            subscriptions=[sub],
            ledger=DeliveryLedger(tmp_path / "ledger.sqlite"),
            clock=lambda: now,
        )
        d._ledger.open()
        await d._accept(TopicPartition("alerts", 0), 0, None, alert(1).to_bytes())
        for now in (0.0, 1.0, 300.0, 599.0, 600.0):
            for key, items in d._grouper.due(now):
                await d._flush(key, items)
            posts = [m for m, _ in slack_api.requests if m == "chat.postMessage"]
            assert len(posts) == (1 if now < 600 else 2), f"posts by t={now:g}s"
        d._ledger.close()
    assert d.delivered == 1


async def test_slack_posts_threads_and_finds_its_messages(slack_api: FakeSlack) -> None:
    async with _slack(slack_api) as slack:
        fired = Notification("k", "#alerts", "fired", (alert(1), alert(2)))
        ts = await slack.send(fired)
        resolved = Notification("k", "#alerts", "resolved", (alert(1, "resolved", fired="f0001-desk"),), ts)
        reply = await slack.send(resolved)
        from datetime import UTC, datetime

        now = datetime.now(UTC)
        assert await slack.find_delivered(fired, now) == {a: ("#alerts", ts) for a in fired.alert_ids}
        assert await slack.find_delivered(resolved, now) == {"r0001-desk": ("#alerts", reply)}
    first, second = slack_api.posts
    assert (first.channel, first.thread_ts, second.thread_ts) == ("C0ALERTS", None, ts)
    assert first.alert_ids == ["f0001-desk", "f0002-desk"]
    assert first.blocks[0]["type"] == "header"


async def test_a_post_whose_answer_was_lost_is_found_by_its_channels_name(
    slack_api: FakeSlack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """After a crash the dispatcher asks a new client: the history methods want the channel's id,
    which it looks up by name (Slack answers channel_not_found to '#alerts'), and read every page."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    monkeypatch.setattr("alerts.slack.HISTORY_LIMIT", 2)
    lost = Notification("k", "#alerts", "fired", (alert(1),))
    async with _slack(slack_api) as slack:
        await slack.send(lost)
        for i in range(2, 7):  # newer posts: the lost one is on the third page
            await slack.send(Notification("k", "alerts", "fired", (alert(i),)))
    async with _slack(slack_api) as restarted:
        assert await restarted.find_delivered(lost, now) == {"f0001-desk": ("#alerts", slack_api.posts[0].ts)}
    # Without groups:read (private channels): the public ones are listed alone.
    slack_api.error_next(1, "missing_scope", method="conversations.list")
    async with _slack(slack_api) as public_only:
        assert list(await public_only.find_delivered(lost, now)) == ["f0001-desk"]
    # Without the scope to list channels: nothing found (logged), as before; an id always works.
    slack_api.error_next(2, "missing_scope", method="conversations.list")
    async with _slack(slack_api) as unlisted:
        assert await unlisted.find_delivered(lost, now) == {}
        by_id = Notification("k", "C0ALERTS", "fired", (alert(1),))
        assert list(await unlisted.find_delivered(by_id, now)) == ["f0001-desk"]
    assert "cannot look up channel=#alerts error=slack conversations.list: missing_scope" in caplog.text


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ({"status": 429, "retry_after_s": 3}, RateLimited),
        ({"status": 503}, SinkUnavailable),
        ({"status": 500}, SinkUnavailable),
        ("channel_not_found", DeliveryRejected),
        ("invalid_auth", ConfigError),
        # No message of this token can be posted: stop, not dead-letter every alert.
        ("missing_scope", ConfigError),
        ("not_allowed_token_type", ConfigError),
        ("is_archived", DeliveryRejected),  # one channel's
        ("team_access_not_granted", DeliveryRejected),  # can be one channel's (Enterprise Grid)
    ],
)
async def test_slack_errors_map_to_what_to_do(slack_api: FakeSlack, fault: object, expected: type) -> None:
    async with _slack(slack_api) as slack:
        if isinstance(fault, dict):
            slack_api.fail_next(1, **fault)
        else:
            slack_api.error_next(1, str(fault))
        with pytest.raises(expected) as info:
            await slack.send(Notification("k", "#alerts", "fired", (alert(1),)))
    if expected is RateLimited:
        assert info.value.retry_after_s == 3


async def test_a_reply_that_is_no_json_is_unavailable_and_says_so(slack_api: FakeSlack) -> None:
    """slack_sdk raises its error with aiohttp's response then (no status_code, no data)."""
    slack_api.garbage_next(1)
    async with _slack(slack_api) as slack:
        with pytest.raises(SinkUnavailable, match=r"not a Slack API reply .*FINPULSE_ALERTS_SLACK_BASE_URL"):
            await slack.send(Notification("k", "#alerts", "fired", (alert(1),)))


async def test_slack_slow_response_is_a_timeout(slack_api: FakeSlack) -> None:
    slack_api.delay_s = 2.5
    async with _slack(slack_api, timeout_s=1) as slack:
        with pytest.raises(SinkUnavailable, match="timeout"):
            await slack.send(Notification("k", "#alerts", "fired", (alert(1),)))


async def test_slack_unknown_channel_is_rejected(slack_api: FakeSlack) -> None:
    async with _slack(slack_api) as slack:
        with pytest.raises(DeliveryRejected, match="channel_not_found"):
            await slack.send(Notification("k", "#nowhere", "fired", (alert(1),)))


async def test_token_never_in_errors_or_logs(slack_api: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("slack_sdk", "alerts", "aiohttp"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    bad = "xoxb-wrong-9999-TOPSECRET"
    with pytest.raises(ConfigError) as info:
        await _slack(slack_api, token=bad).start()
    notifier = _slack(slack_api)
    async with notifier as slack:
        await slack.send(Notification("k", "#alerts", "fired", (alert(1),)))
        slack_api.fail_next(1, status=503)
        with pytest.raises(SinkUnavailable) as unavailable:
            await slack.send(Notification("k", "#alerts", "fired", (alert(2),)))
    texts = [str(info.value), repr(info.value), str(unavailable.value), repr(notifier), caplog.text]
    assert "Sending a request" in caplog.text  # slack-sdk's debug log did run
    for text in texts:
        assert bad not in text
        assert VALID_TOKEN not in text
        assert "SECRETVALUE" not in text


@pytest.mark.parametrize(
    ("header", "wait_s"),
    [
        ("2", 2.0),
        ("0", 0.0),
        ("1e9", 3600.0),  # capped: no real rate limit asks for 31 years
        ("inf", 1.0),  # not finite, negative or no number: as if absent
        ("1e400", 1.0),
        ("nan", 1.0),
        ("-5", 1.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1.0),
        ("soon", 1.0),
        (None, 1.0),
    ],
)
def test_retry_after_is_a_finite_wait_of_at_most_an_hour(header: str | None, wait_s: float) -> None:
    assert parse_retry_after(header) == wait_s


async def test_webhook_sink(slack_api: FakeSlack) -> None:
    async with WebhookSink(slack_api.hook_url(), timeout_s=5) as hook:
        n = Notification("k", "#alerts", "fired", (alert(1),), subscription_names={"desk": "Risk desk"})
        assert await hook.send(n) is None
        slack_api.fail_next(1, status=429, retry_after_s=2)
        with pytest.raises(RateLimited):
            await hook.send(n)
        slack_api.fail_next(1, status=404)
        with pytest.raises(DeliveryRejected):
            await hook.send(n)
        slack_api.fail_next(1, status=401)  # the sink's own credential: stop, not dead-letter each alert
        with pytest.raises(ConfigError, match="FINPULSE_ALERTS_WEBHOOK_URL"):
            await hook.send(n)
    [(headers, body)] = slack_api.webhooks
    assert headers["Idempotency-Key"] == n.delivery_id
    assert body["events"][0]["alert_id"] == "f0001-desk"
    assert body["subscription_names"] == {"desk": "Risk desk"}
    assert "feedback" not in body  # no links configured


async def test_webhook_sink_sends_verdict_links_of_fired_alerts(slack_api: FakeSlack) -> None:
    links = FeedbackLinks("https://fp.example", SecretStr("k3y"))
    async with WebhookSink(slack_api.hook_url(), timeout_s=5, links=links) as hook:
        await hook.send(Notification("k", "#alerts", "fired", (alert(1), alert(2))))
        await hook.send(Notification("k", "#alerts", "resolved", (alert(1, "resolved", fired="f0001-desk"),)))
    (_, fired), (_, resolved) = slack_api.webhooks
    assert fired["feedback"] == {
        f"f000{i}-desk": {
            "tp": links.url(f"f000{i}-desk", "tp"),
            "fp": links.url(f"f000{i}-desk", "fp"),
            "chart": links.chart_url(f"f000{i}-desk"),
            "dashboard": links.dashboard_url(alert(i)),
            "mute": links.mute_url(f"f000{i}-desk"),
        }
        for i in (1, 2)
    }
    assert "feedback" not in resolved


async def test_console_sink_escapes_markup() -> None:
    out = io.StringIO()
    sink = ConsoleSink(Console(file=out, width=200, color_system=None))
    await sink.send(Notification("k", "#a", "fired", (alert(1, title="[bold]boom[/bold]"),)))
    assert "fired ticker T001: 62% negative" in out.getvalue()
    assert "[bold]boom[/bold]" in out.getvalue()


async def test_console_sink_prints_verdict_links() -> None:
    out = io.StringIO()
    links = FeedbackLinks("http://127.0.0.1:8000")
    sink = ConsoleSink(Console(file=out, width=80, color_system=None), links=links)
    await sink.send(Notification("k", "#a", "fired", (alert(1),), subscription_names={"desk": "Risk desk"}))
    await sink.send(Notification("k", "#a", "resolved", (alert(1, "resolved", fired="f0001-desk"),)))
    text = out.getvalue()
    assert "    subscription Risk desk (desk), alert f0001-desk\n" in text  # whose, and which

    assert f"real event? yes: {links.url('f0001-desk', 'tp')}  no: {links.url('f0001-desk', 'fp')}" in text
    assert "chart: http://127.0.0.1:8000/feedback/f0001-desk/chart.png\n" in text
    assert "mute ticker T001: http://127.0.0.1:8000/feedback/f0001-desk/mute\n" in text
    assert text.count("real event?") == 1  # not on the resolved notice
