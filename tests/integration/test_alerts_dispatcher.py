"""The alert dispatcher on the real broker with the local Slack-API server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from subprocess import PIPE, STDOUT

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY
from pydantic import SecretStr

from alerts import Subscription
from alerts.dispatcher import AlertDispatcher
from alerts.ledger import DeliveryLedger
from alerts.links import feedback_url
from alerts.slack import SlackNotifier
from finpulse.errors import ConfigError
from finpulse.schema import AlertEvent, DeadLetter
from finpulse.settings import AlertsSettings, KafkaSettings
from finpulse.topics import kafka_consumer
from tests.conftest import FINPULSE, wait_for
from tests.fixtures.slack import VALID_TOKEN, FakeSlack
from tests.kafka_io import read_topic
from tests.unit.alerts.events import alert
from tests.unit.alerts.synth import subscription

API_TOKEN = "api-token-DONOTLOG-77"


async def produce(kafka: KafkaSettings, records: Sequence[AlertEvent | bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for r in records:
            value = r if isinstance(r, bytes) else r.to_bytes()
            key = b"junk" if isinstance(r, bytes) else f"{r.subscription_id}|{r.entity}".encode()
            await producer.send_and_wait(kafka.topics.alerts, value, key=key)
    finally:
        await producer.stop()


async def committed(kafka: KafkaSettings, group_id: str) -> int:
    async with kafka_consumer(kafka, group_id=group_id) as consumer:
        tps = [TopicPartition(kafka.topics.alerts, p) for p in range(kafka.topics.partitions)]
        return sum([(await consumer.committed(tp)) or 0 for tp in tps])


@asynccontextmanager
async def dispatcher(
    kafka: KafkaSettings,
    slack: FakeSlack,
    group_id: str,
    ledger: Path,
    subs: Sequence[Subscription],
    **kw: float,
) -> AsyncIterator[AlertDispatcher]:
    settings = AlertsSettings(
        consumer_group=group_id,
        slack_base_url=slack.base_url,
        group_wait_s=kw.pop("group_wait_s", 0.5),
        group_interval_s=kw.pop("group_interval_s", 2.0),
        max_attempts=4,
        request_timeout_s=2,
    )
    sink = SlackNotifier(SecretStr(VALID_TOKEN), base_url=slack.base_url, timeout_s=2)
    d = AlertDispatcher(
        kafka=kafka, settings=settings, sinks=[sink], subscriptions=subs, ledger=DeliveryLedger(ledger)
    )
    await d.start()
    stop = asyncio.Event()
    task = asyncio.create_task(d.run(stop))
    try:
        yield d
    finally:
        stop.set()
        await task
        await d.stop()


async def test_groups_threads_intervals_and_commits(
    kafka: KafkaSettings, slack_api: FakeSlack, group_id: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    named = subscription().model_copy(update={"name": "Risk desk"})
    async with dispatcher(kafka, slack_api, group_id, ledger, [named]) as d:
        await produce(kafka, [alert(1), alert(2), alert(3)])
        await wait_for(lambda: d.delivered == 3)
        [grouped] = slack_api.posts
        assert sorted(grouped.alert_ids) == ["f0001-desk", "f0002-desk", "f0003-desk"]
        # The message says whose alerts these are, by the subscription's name.
        assert grouped.blocks[0]["text"]["text"] == "3 negative news spikes (Risk desk)"
        assert "Subscription *Risk desk* (`desk`)" in json.dumps(grouped.blocks)
        sent_at = time.monotonic()
        # The subscription moved to another channel since: its resolve goes to the alert's thread.
        await produce(kafka, [alert(4), alert(2, "resolved", fired="f0002-desk", channel="#markets")])
        await wait_for(lambda: d.delivered == 5)
        assert time.monotonic() - sent_at >= 1.2, "the group's next message waited group_interval_s"
        fired4, resolved2 = sorted(slack_api.posts[1:], key=lambda p: p.alert_ids[0])
        assert (fired4.alert_ids, fired4.thread_ts) == (["f0004-desk"], None)
        assert (resolved2.alert_ids, resolved2.thread_ts) == (["r0002-desk"], grouped.ts)
        assert resolved2.channel == grouped.channel == "C0ALERTS"
    assert await committed(kafka, group_id) == 5
    # A restart with the same group and ledger posts nothing again.
    async with dispatcher(kafka, slack_api, group_id, ledger, [subscription()]) as d:
        await asyncio.sleep(2)
    assert len(slack_api.posts) == 3


async def test_rate_limits_and_errors_are_retried_once_delivered(
    kafka: KafkaSettings, slack_api: FakeSlack, group_id: str, tmp_path: Path
) -> None:
    def metric(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0  # this process's Prometheus metrics

    def retries() -> float:
        return sum(
            metric("finpulse_alerts_retries_total", error=e) for e in ("RateLimited", "SinkUnavailable")
        )

    before = (metric("finpulse_alerts_delivered_total", sink="slack", state="fired"), retries())
    slack_api.fail_next(1, status=429, retry_after_s=1)
    slack_api.fail_next(1, status=503)
    async with dispatcher(
        kafka, slack_api, group_id, tmp_path / "l.sqlite", [subscription()], group_wait_s=0
    ) as d:
        started = time.monotonic()
        await produce(kafka, [alert(1)])
        await wait_for(lambda: d.delivered == 1)
        assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
    assert slack_api.alert_ids_posted() == ["f0001-desk"]
    assert metric("finpulse_alerts_delivered_total", sink="slack", state="fired") == before[0] + 1
    assert retries() == before[1] + 2


async def test_bad_records_and_unknown_channels_are_dead_lettered(
    kafka: KafkaSettings, slack_api: FakeSlack, group_id: str, tmp_path: Path
) -> None:
    typo = subscription("typo").model_copy(update={"channel": "#nowhere"})
    records = [b"{not json", alert(1, sub="typo", channel="#nowhere"), alert(2)]
    async with dispatcher(
        kafka, slack_api, group_id, tmp_path / "l.sqlite", [subscription(), typo], group_wait_s=0
    ) as d:
        await produce(kafka, records)
        dead = await read_topic(kafka, f"{kafka.topics.alerts}.dead", expect=2)
        await wait_for(lambda: d.delivered == 1)
        letters = sorted((DeadLetter.from_bytes(r.value) for r in dead), key=lambda x: x.stage)
        assert [(x.stage, x.error_type) for x in letters] == [
            ("alerts", "InvalidRecord"),
            ("alerts:slack", "DeliveryRejected"),
        ]
        assert "channel_not_found" in letters[1].reason
        original = letters[1].original_value() or b""
        assert AlertEvent.from_bytes(original).alert_id == "f0001-typo"
        # The channel corrected, the dead letter replayed as it was: it goes where it now should.
        d.set_subscriptions([subscription(), typo.model_copy(update={"channel": "#alerts"})])
        await produce(kafka, [original])
        await wait_for(lambda: d.delivered == 2)
    assert slack_api.alert_ids_posted() == ["f0002-desk", "f0001-typo"]
    assert {p.channel for p in slack_api.posts} == {"C0ALERTS"}
    assert await committed(kafka, group_id) == 4


async def test_a_refused_message_is_tried_again_alert_by_alert(
    kafka: KafkaSettings, slack_api: FakeSlack, group_id: str, tmp_path: Path
) -> None:
    """Slack refuses the group's message, then the first alert alone: only that one is dead-lettered."""
    slack_api.error_next(2, "invalid_blocks")
    async with dispatcher(kafka, slack_api, group_id, tmp_path / "l.sqlite", [subscription()]) as d:
        await produce(kafka, [alert(1), alert(2), alert(3)])
        dead = await read_topic(kafka, f"{kafka.topics.alerts}.dead", expect=1)
        await wait_for(lambda: d.delivered == 2)
    [letter] = [DeadLetter.from_bytes(r.value) for r in dead]
    assert (letter.stage, letter.error_type) == ("alerts:slack", "DeliveryRejected")
    assert "invalid_blocks" in letter.reason
    [refused] = {"f0001-desk", "f0002-desk", "f0003-desk"} - set(slack_api.alert_ids_posted())
    assert AlertEvent.from_bytes(letter.original_value()).alert_id == refused
    assert [len(p.alert_ids) for p in slack_api.posts] == [1, 1]
    assert await committed(kafka, group_id) == 3


async def test_a_token_revoked_while_it_runs_stops_the_dispatcher_and_loses_nothing(
    kafka: KafkaSettings, slack_api: FakeSlack, group_id: str, tmp_path: Path
) -> None:
    """No alert's fault: nothing dead-lettered, nothing committed (a restart with a token sends them)."""
    slack_api.error_next(1, "token_revoked")

    async def run() -> None:
        async with dispatcher(kafka, slack_api, group_id, tmp_path / "l.sqlite", [subscription()]):
            await produce(kafka, [alert(1), alert(2)])
            await wait_for(lambda: any(m == "chat.postMessage" for m, _ in slack_api.requests))
            await asyncio.sleep(1.0)  # the run ends with the error, raised on leaving

    with pytest.raises(ConfigError, match="token_revoked"):
        await run()
    assert slack_api.posts == []
    assert await committed(kafka, group_id) == 0


def _cli_env(
    tmp_path: Path, kafka: KafkaSettings, slack: FakeSlack, group_id: str, token: str
) -> dict[str, str]:
    token_file = tmp_path / "slack-token"
    token_file.write_text(token + "\n", encoding="utf-8")
    subs = tmp_path / "subs.toml"
    subs.write_text(
        '[[subscription]]\nid = "desk"\nchannel = "#alerts"\ngroup_by = ["subscription", "entity"]\n'
        'group_wait_s = 0\n[subscription.filter]\ntickers = ["*"]\n',
        encoding="utf-8",
    )
    return {
        **os.environ,
        "FINPULSE_DATA_DIR": str(tmp_path / "data"),
        # The dispatcher seeds its subscriptions into the store: the test's own, not the repo's.
        "FINPULSE_STORE_URL": f"duckdb:///{tmp_path / 'history.duckdb'}",
        "FINPULSE_LOG_LEVEL": "DEBUG",
        "FINPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "FINPULSE_KAFKA_TOPICS": kafka.topics.model_dump_json(),
        "FINPULSE_ALERTS_SUBSCRIPTIONS_FILE": str(subs),
        "FINPULSE_ALERTS_SLACK_TOKEN_FILE": str(token_file),
        # A killed dispatcher's restart resumes once the broker drops the dead member (the least it accepts).
        "FINPULSE_ALERTS_SESSION_TIMEOUT_S": "6",
        "FINPULSE_ALERTS_SLACK_BASE_URL": slack.base_url,
        "FINPULSE_ALERTS_CONSUMER_GROUP": group_id,
        "FINPULSE_ALERTS_REQUEST_TIMEOUT_S": "5",
        # Fired messages link to the API's feedback page, signed with its token.
        "FINPULSE_API_TOKEN": API_TOKEN,
        "FINPULSE_API_PUBLIC_URL": "https://finpulse.example",
        "COLUMNS": "200",
    }


async def test_crash_and_restart_lose_nothing_and_post_nothing_twice(
    kafka: KafkaSettings, slack_api: FakeSlack, group_id: str, tmp_path: Path
) -> None:
    env = _cli_env(tmp_path, kafka, slack_api, group_id, VALID_TOKEN)
    events = [alert(i) for i in range(12)] + [alert(i, "resolved", fired=f"f{i:04d}-desk") for i in range(12)]
    await produce(kafka, events)
    slack_api.delay_s = 0.4  # Slack records the post, the answer comes late: kills land mid-post
    logs = tmp_path / "dispatcher.log"
    with logs.open("wb") as out:
        for _ in range(2):  # two crashes, each mid-stream
            first = len(slack_api.posts)
            proc = await asyncio.create_subprocess_exec(
                FINPULSE, "alerts", env=env, stdout=out, stderr=STDOUT
            )
            await wait_for(lambda: len(slack_api.posts) >= first + 4, timeout_s=60)  # noqa: B023
            await asyncio.sleep(0.2)
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
        slack_api.delay_s = 0
        proc = await asyncio.create_subprocess_exec(FINPULSE, "alerts", env=env, stdout=out, stderr=STDOUT)
        try:
            await wait_for(lambda: len(set(slack_api.alert_ids_posted())) == 24, timeout_s=60)
            await asyncio.sleep(2)  # time for any duplicate to show up
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 20) == 0
    posted = slack_api.alert_ids_posted()
    assert sorted(posted) == sorted(e.alert_id for e in events), "every alert exactly once"
    fired_ts = {p.alert_ids[0]: p.ts for p in slack_api.posts if p.thread_ts is None}
    for p in slack_api.posts:
        if p.thread_ts is not None:
            assert p.thread_ts == fired_ts[f"f{p.alert_ids[0][1:]}"], "resolved in the fired thread"
    assert sum(p.thread_ts is not None for p in slack_api.posts) == 12
    fired = next(p for p in slack_api.posts if p.thread_ts is None)
    blocks = json.dumps(fired.blocks)
    for alert_id in fired.alert_ids:
        for verdict in ("tp", "fp"):
            assert feedback_url("https://finpulse.example", SecretStr(API_TOKEN), alert_id, verdict) in blocks
    assert API_TOKEN not in blocks
    text = logs.read_text(encoding="utf-8", errors="replace")
    assert "not posting again" in text, "a post in flight at the kill was found, not repeated"
    assert "delivered sink=slack" in text
    assert VALID_TOKEN not in text
    assert API_TOKEN not in text
    assert await committed(kafka, group_id) == 24


async def test_refused_token_stops_with_a_clear_error(
    kafka: KafkaSettings, slack_api: FakeSlack, group_id: str, tmp_path: Path
) -> None:
    secret = "xoxb-revoked-4242-DONOTLOG"
    env = _cli_env(tmp_path, kafka, slack_api, group_id, secret)
    proc = await asyncio.create_subprocess_exec(FINPULSE, "alerts", env=env, stdout=PIPE, stderr=STDOUT)
    stdout, _ = await asyncio.wait_for(proc.communicate(), 120)
    output = stdout.decode("utf-8", errors="replace")
    assert proc.returncode == 2, output
    assert "invalid_auth" in output
    assert "FINPULSE_ALERTS_SLACK_TOKEN" in output
    assert secret not in output
    assert "DONOTLOG" not in output


async def test_a_second_dispatcher_of_the_group_is_refused(
    kafka: KafkaSettings, slack_api: FakeSlack, group_id: str, tmp_path: Path
) -> None:
    # Each keeps its own ledger: two would neither thread each other's resolves nor skip each
    # other's deliveries. The second waits out a session timeout (a first that died leaves), then stops.
    async with dispatcher(kafka, slack_api, group_id, tmp_path / "first.sqlite", [subscription()]) as first:
        await produce(kafka, [alert(1)])
        await wait_for(lambda: first.delivered == 1)
        settings = AlertsSettings(
            consumer_group=group_id, slack_base_url=slack_api.base_url, session_timeout_s=6
        )
        sink = SlackNotifier(SecretStr(VALID_TOKEN), base_url=slack_api.base_url, timeout_s=2)
        second = AlertDispatcher(
            kafka=kafka, settings=settings, sinks=[sink], subscriptions=[subscription()],
            ledger=DeliveryLedger(tmp_path / "second.sqlite"),
        )  # fmt: skip
        started = time.monotonic()
        with pytest.raises(ConfigError, match=f"another dispatcher consumes the alerts as group {group_id}"):
            await second.start()
        assert time.monotonic() - started >= 6
        await second.stop()
    # The first one gone (left its group), a dispatcher starts at once.
    async with dispatcher(kafka, slack_api, group_id, tmp_path / "first.sqlite", [subscription()]):
        pass
    assert len(slack_api.posts) == 1
