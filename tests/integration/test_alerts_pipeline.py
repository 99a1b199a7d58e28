"""Detector -> alerts.events -> dispatcher -> Slack: cooldown and threads as configured."""

from __future__ import annotations

from pathlib import Path

from finpulse.settings import KafkaSettings
from tests.conftest import wait_for
from tests.fixtures.slack import FakeSlack
from tests.integration.test_alerts_dispatcher import dispatcher, produce
from tests.unit.alerts.synth import replay, subscription


async def test_cooldown_decides_what_reaches_slack(
    kafka: KafkaSettings, slack_api: FakeSlack, group_id: str, tmp_path: Path
) -> None:
    patient = subscription("patient", cooldown_s=3600).model_copy(update={"channel": "#alerts"})
    eager = subscription("eager", cooldown_s=0).model_copy(update={"channel": "#markets"})
    calm, spike = [(20, 3)] * 30, [(20, 14)] * 2
    series = {"Energy": calm + spike + calm[:6] + spike + calm[:6]}  # spikes 40 minutes apart
    events = [e for _, e in replay(series, [patient, eager])]
    assert [(e.subscription_id, e.state) for e in events if e.subscription_id == "patient"] == [
        ("patient", "fired"),
        ("patient", "resolved"),
    ]
    async with dispatcher(kafka, slack_api, group_id, tmp_path / "l.sqlite", [patient, eager]) as d:
        await produce(kafka, events)
        await wait_for(lambda: d.delivered == len(events) == 6)
    by_channel = {"C0ALERTS": 0, "C0MARKETS": 0}
    for post in slack_api.posts:
        by_channel[post.channel] += len(post.alert_ids)
    assert by_channel == {"C0ALERTS": 2, "C0MARKETS": 4}
    # Events that arrive together are grouped: eager's two episodes share one message,
    # and both resolves reply in its thread.
    threads = [p for p in slack_api.posts if p.thread_ts]
    assert sum(len(p.alert_ids) for p in threads) == 3
    assert all(any(q.ts == p.thread_ts for q in slack_api.posts) for p in threads)
