"""Daily digests from the real history store, through the digest job, the ledger and the local
Slack-API server, and through the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from alerts.digest import Digest, build_digest, digest_id
from alerts.digest_job import DigestJob
from alerts.ledger import Delivery, DeliveryLedger
from alerts.render import digest_blocks
from alerts.sinks.webhook import WebhookSink
from alerts.slack import METADATA_DIGEST_EVENT, SlackNotifier
from alerts.subscriptions import Subscription
from finpulse.settings import KafkaSettings
from store import DuckDBStore
from tests.conftest import FINPULSE
from tests.fixtures.slack import VALID_TOKEN, FakeSlack
from tests.fixtures.store import alert, scored, seed_spike

END = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday, 08:00 UTC
DESK = Subscription.model_validate(
    {
        "id": "desk",
        "name": "Equities desk",
        "channel": "#alerts",
        "filter": {"tickers": ["ACME", "BOLT"]},
        "digest": {"at": "08:00:00", "timezone": "UTC"},
    }
)


def _seeded(path: Path) -> tuple[datetime, datetime]:
    with DuckDBStore(path) as db:
        burst = seed_spike(db, end=END - timedelta(hours=1))
        db.upsert_alerts([alert("acme-1", "ACME", burst[0], entity_kind="ticker")])
        db.put_subscription(DESK.id, DESK.stored_body())
    return burst


def test_the_digest_ranks_the_day_from_the_store(tmp_path: Path) -> None:
    _seeded(tmp_path / "h.duckdb")
    with DuckDBStore(tmp_path / "h.duckdb", read_only=True) as db:
        digest = build_digest(db, DESK, digest_id("desk", END.date()), END)
    assert (digest.start, digest.end) == (END - timedelta(hours=24), END)
    assert digest.active_entities == 2
    acme, bolt = digest.entities
    assert (acme.entity, bolt.entity) == ("ACME", "BOLT")  # the burst made ACME the most negative
    assert acme.negative_share > bolt.negative_share
    assert acme.previous_share is None  # no stories the day before
    assert [a.alert_id for a in digest.alerts] == ["acme-1"]
    assert len(digest.headlines) == 3
    assert all(h.sentiment_score == -0.8 for h in digest.headlines)
    text = json.dumps(digest_blocks(digest))
    assert "Daily digest: Equities desk" in text
    assert "ticker *ACME*:" in text
    assert "(day before: none)" in text
    assert "1 alert fired" in text
    assert "(still open)" in text  # no resolve has ended acme-1


def test_the_digest_lists_the_alerts_still_open_from_before_its_day(tmp_path: Path) -> None:
    _seeded(tmp_path / "h.duckdb")
    days_ago = END - timedelta(days=3)
    with DuckDBStore(tmp_path / "h.duckdb") as db:
        db.upsert_alerts(
            [
                alert("bolt-open", "BOLT", days_ago, entity_kind="ticker"),
                alert("bolt-over", "BOLT", days_ago - timedelta(hours=1), entity_kind="ticker"),
                alert(
                    "bolt-end", "BOLT", days_ago, "resolved", entity_kind="ticker", fired_alert_id="bolt-over"
                ),
                alert("elsewhere", "BOLT", days_ago, subscription_id="other", entity_kind="ticker"),
            ]
        )
    with DuckDBStore(tmp_path / "h.duckdb", read_only=True) as db:
        digest = build_digest(db, DESK, digest_id("desk", END.date()), END)
    assert [a.alert_id for a in digest.alerts] == ["acme-1"]
    assert [a.alert_id for a in digest.open_before] == ["bolt-open"]
    text = json.dumps(digest_blocks(digest))
    assert "1 alert fired, 1 from before still open" in text
    assert "*Fired before and still open*" in text
    assert f"{days_ago + timedelta(minutes=5):%m-%d %H:%M} ticker *BOLT*: 60% negative" in text


def test_a_story_published_twice_is_one_headline(tmp_path: Path) -> None:
    _seeded(tmp_path / "h.duckdb")
    title = "Acme plunges more than 17% after the warning"
    at = END - timedelta(hours=2)
    copies = [scored(f"copy-{i}", at, "markets", "negative", -0.95, ("ACME",), title=title) for i in (1, 2)]
    with DuckDBStore(tmp_path / "h.duckdb") as db:
        db.upsert_scored(copies)
        digest = build_digest(db, DESK, digest_id("desk", END.date()), END)
    assert [h.title for h in digest.headlines].count(title) == 1
    assert digest.headlines[0].title == title  # the most negative, once
    assert len(digest.headlines) == 3  # the next ones fill its place


def test_the_digest_lists_an_entity_whose_negative_share_fell(tmp_path: Path) -> None:
    _seeded(tmp_path / "h.duckdb")
    before = END - timedelta(hours=30)  # the day before the digest's: BOLT all negative then
    with DuckDBStore(tmp_path / "h.duckdb") as db:
        db.upsert_scored(
            [scored(f"old-{i}", before, "markets", "negative", -0.9, ("BOLT",)) for i in range(3)]
        )
        digest = build_digest(db, DESK, digest_id("desk", END.date()), END)
    bolt = next(e for e in digest.entities if e.entity == "BOLT")
    assert bolt.previous_share == 1.0
    assert bolt.negative_share < 1.0  # fell: still the subscription's news of the day
    assert "ticker *BOLT*:" in json.dumps(digest_blocks(digest))


def test_the_job_sends_each_days_digest_once(tmp_path: Path, slack_api: FakeSlack) -> None:
    import asyncio

    _seeded(tmp_path / "h.duckdb")
    ledger = DeliveryLedger(tmp_path / "deliveries.sqlite")
    ledger.open()
    store = DuckDBStore(tmp_path / "h.duckdb")
    clock = [END + timedelta(minutes=1)]

    async def run(job_runs: int) -> list[list[str]]:
        sink = SlackNotifier(SecretStr(VALID_TOKEN), base_url=slack_api.base_url, timeout_s=5)
        async with sink:
            job = DigestJob(store, [sink], ledger, lambda: (DESK,), clock=lambda: clock[0])
            return [await job.run_once() for _ in range(job_runs)]

    slack_api.fail_next(1, status=503)  # Slack is down at first: retried the next minute
    assert asyncio.run(run(2)) == [[], ["digest:desk:2026-03-02"]]
    assert asyncio.run(run(1)) == [[]], "a restarted dispatcher does not send it again"
    [post] = slack_api.posts
    assert post.channel == "C0ALERTS"
    assert (post.metadata or {})["event_type"] == METADATA_DIGEST_EVENT
    assert post.blocks[0]["text"]["text"] == "Daily digest: Equities desk"
    clock[0] = END + timedelta(days=1, minutes=5)  # Tuesday: its own digest
    assert asyncio.run(run(1)) == [["digest:desk:2026-03-03"]]
    assert len(slack_api.posts) == 2
    ledger.close()


def test_a_rate_limited_digest_waits_out_its_retry_after(tmp_path: Path, slack_api: FakeSlack) -> None:
    import asyncio

    _seeded(tmp_path / "h.duckdb")
    ledger = DeliveryLedger(tmp_path / "deliveries.sqlite")
    ledger.open()
    clock = [END + timedelta(minutes=1)]

    async def run(minutes: list[int]) -> list[list[str]]:
        sink = SlackNotifier(SecretStr(VALID_TOKEN), base_url=slack_api.base_url, timeout_s=5)
        async with sink:
            job = DigestJob(
                DuckDBStore(tmp_path / "h.duckdb"), [sink], ledger, lambda: (DESK,), clock=lambda: clock[0]
            )
            sent = []
            for minute in minutes:
                clock[0] = END + timedelta(minutes=minute)
                sent.append(await job.run_once())
            return sent

    slack_api.fail_next(1, status=429, retry_after_s=600)  # longer than a sink waits in place
    assert asyncio.run(run([1, 2, 10, 11])) == [[], [], [], ["digest:desk:2026-03-02"]]
    assert len(slack_api.posts) == 1
    ledger.close()


def test_an_endless_retry_after_delays_one_sink_a_minute(tmp_path: Path, slack_api: FakeSlack) -> None:
    """A webhook (or a gateway before it) answering `Retry-After: inf` waits the default, retried
    next minute; the Slack digest after it in the loop still goes (the wait overflowed before)."""
    import asyncio

    _seeded(tmp_path / "h.duckdb")
    ledger = DeliveryLedger(tmp_path / "deliveries.sqlite")
    ledger.open()

    async def run(minutes: list[int]) -> list[list[str]]:
        hook = WebhookSink(slack_api.hook_url("digests"), timeout_s=5)
        slack = SlackNotifier(SecretStr(VALID_TOKEN), base_url=slack_api.base_url, timeout_s=5)
        async with hook, slack:
            clock = [END]
            job = DigestJob(
                DuckDBStore(tmp_path / "h.duckdb"), [hook, slack], ledger, lambda: (DESK,),
                clock=lambda: clock[0],
            )  # fmt: skip
            sent = []
            for minute in minutes:
                clock[0] = END + timedelta(minutes=minute)
                sent.append(await job.run_once())
            return sent

    slack_api.fail_next(1, status=429, retry_after_s=float("inf"))  # the webhook takes it first
    assert asyncio.run(run([1, 2])) == [["digest:desk:2026-03-02"]] * 2
    assert (len(slack_api.posts), len(slack_api.webhooks)) == (1, 1)
    ledger.close()


def test_one_digest_that_fails_does_not_stop_the_others(tmp_path: Path, slack_api: FakeSlack) -> None:
    import asyncio

    class Broken(SlackNotifier):
        """Slack's sink with a bug in one channel's digest (no real failure reaches it here)."""

        async def send_digest(self, digest: Digest) -> str | None:
            if digest.channel == "#broken":
                raise ValueError("a bug rendering this digest")
            return await super().send_digest(digest)

    _seeded(tmp_path / "h.duckdb")
    broken = DESK.model_copy(update={"id": "broken", "channel": "#broken"})
    ledger = DeliveryLedger(tmp_path / "deliveries.sqlite")
    ledger.open()

    async def run() -> list[str]:
        async with Broken(SecretStr(VALID_TOKEN), base_url=slack_api.base_url, timeout_s=5) as sink:
            job = DigestJob(
                DuckDBStore(tmp_path / "h.duckdb"), [sink], ledger, lambda: (broken, DESK),
                clock=lambda: END + timedelta(minutes=1),
            )  # fmt: skip
            return await job.run_once()

    assert asyncio.run(run()) == ["digest:desk:2026-03-02"]
    assert [p.blocks[0]["text"]["text"] for p in slack_api.posts] == ["Daily digest: Equities desk"]
    ledger.close()


def test_a_digest_left_sending_by_a_crash_is_looked_up_before_it_goes_again(
    tmp_path: Path, slack_api: FakeSlack
) -> None:
    import asyncio

    _seeded(tmp_path / "h.duckdb")
    ledger = DeliveryLedger(tmp_path / "deliveries.sqlite")
    ledger.open()
    day = digest_id("desk", END.date())
    now = END + timedelta(minutes=1)
    with DuckDBStore(tmp_path / "h.duckdb", read_only=True) as db:
        digest = build_digest(db, DESK, day, END)

    async def crash(post: bool) -> None:
        """What a dispatcher killed mid-send leaves: the attempt recorded, the post made or not."""
        async with SlackNotifier(SecretStr(VALID_TOKEN), base_url=slack_api.base_url, timeout_s=5) as sink:
            ledger.begin(sink.name, [day], DESK.channel, now)
            if post:
                await sink.send_digest(digest)

    async def restart() -> list[str]:
        async with SlackNotifier(SecretStr(VALID_TOKEN), base_url=slack_api.base_url, timeout_s=5) as sink:
            job = DigestJob(
                DuckDBStore(tmp_path / "h.duckdb"), [sink], ledger, lambda: (DESK,), clock=lambda: now
            )
            return await job.run_once()

    asyncio.run(crash(post=True))
    [posted] = slack_api.posts
    slack_api.fail_next(1, status=503, method="conversations.history")  # cannot ask Slack: wait
    assert asyncio.run(restart()) == []
    assert (ledger.get("slack", day) or Delivery("", "", None, now)).state == "sending"
    assert asyncio.run(restart()) == [], "Slack shows it: not posted again"
    assert len(slack_api.posts) == 1
    assert ledger.get("slack", day) == Delivery("sent", DESK.channel, posted.ts, now)
    assert asyncio.run(restart()) == []

    tuesday = digest_id("desk", (END + timedelta(days=1)).date())
    now += timedelta(days=1)
    with DuckDBStore(tmp_path / "h.duckdb", read_only=True) as db:
        digest = build_digest(db, DESK, tuesday, END + timedelta(days=1))
    asyncio.run(crash(post=False))  # died before Slack took it: sent on restart
    assert asyncio.run(restart()) == [tuesday]
    assert [p.metadata["event_payload"]["digest_id"] for p in slack_api.posts if p.metadata] == [day, tuesday]
    ledger.close()


def test_the_cli_sends_a_digest_now(tmp_path: Path, slack_api: FakeSlack) -> None:
    now = datetime.now(UTC)
    with DuckDBStore(tmp_path / "h.duckdb") as db:
        seed_spike(db, end=now)
    subs = tmp_path / "subs.toml"
    subs.write_text(
        '[[subscription]]\nid = "desk"\nchannel = "#alerts"\n'
        '[subscription.filter]\ntickers = ["ACME", "BOLT"]\n',
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "FINPULSE_STORE_URL": f"duckdb:///{tmp_path / 'h.duckdb'}",
        "FINPULSE_ALERTS_SUBSCRIPTIONS_FILE": str(subs),
        "FINPULSE_ALERTS_WEBHOOK_URL": slack_api.hook_url("digests"),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [str(FINPULSE), "alerts", "digest", "-s", "desk", "--sink", "console", "--sink", "webhook"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "digest desk: 24 hours to" in done.stdout
    assert "ticker ACME:" in done.stdout
    assert "digest desk -> webhook #alerts: sent" in done.stdout
    [(headers, body)] = slack_api.webhooks
    assert body["digest"]["subscription_id"] == "desk"
    assert headers["Idempotency-Key"] == body["digest"]["digest_id"]
    unknown = subprocess.run(
        [str(FINPULSE), "alerts", "digest", "-s", "nope", "--sink", "console"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert unknown.returncode == 2
    assert "no subscription 'nope'; known: desk" in unknown.stdout + unknown.stderr


def test_the_dispatcher_process_sends_the_days_digest_once(
    tmp_path: Path, slack_api: FakeSlack, kafka: KafkaSettings, group_id: str
) -> None:
    now = datetime.now(UTC)
    with DuckDBStore(tmp_path / "h.duckdb") as db:
        seed_spike(db, end=now)
    at = max((now - timedelta(minutes=1)).replace(tzinfo=None), now.replace(hour=0, minute=0, tzinfo=None))
    subs = tmp_path / "subs.toml"
    subs.write_text(
        f'[[subscription]]\nid = "desk"\nchannel = "#alerts"\n[subscription.filter]\ntickers = ["ACME"]\n'
        f'[subscription.digest]\nat = "{at:%H:%M:%S}"\ntimezone = "UTC"\n',
        encoding="utf-8",
    )
    token = tmp_path / "token"
    token.write_text(VALID_TOKEN, encoding="utf-8")
    env = {
        **os.environ,
        "FINPULSE_DATA_DIR": str(tmp_path / "data"),
        "FINPULSE_STORE_URL": f"duckdb:///{tmp_path / 'h.duckdb'}",
        "FINPULSE_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "FINPULSE_KAFKA_TOPICS": kafka.topics.model_dump_json(),
        "FINPULSE_ALERTS_SUBSCRIPTIONS_FILE": str(subs),
        "FINPULSE_ALERTS_SLACK_TOKEN_FILE": str(token),
        "FINPULSE_ALERTS_SLACK_BASE_URL": slack_api.base_url,
        "FINPULSE_ALERTS_CONSUMER_GROUP": group_id,
        "COLUMNS": "250",  # log lines unwrapped
    }

    def digests() -> list[str]:
        return [
            p.ts for p in slack_api.posts if (p.metadata or {}).get("event_type") == METADATA_DIGEST_EVENT
        ]

    for run in range(2):  # the second run (a restart) finds the day's digest in the ledger
        with (tmp_path / f"alerts-{run}.log").open("wb") as log:
            proc = subprocess.Popen([str(FINPULSE), "alerts"], env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + (60 if run == 0 else 8)
                while time.monotonic() < deadline and not (run == 0 and digests()):
                    time.sleep(0.2)
            finally:
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(timeout=30) == 0
        assert len(digests()) == 1, (tmp_path / f"alerts-{run}.log").read_text(errors="replace")
    [post] = [p for p in slack_api.posts if p.ts in digests()]
    assert post.channel == "C0ALERTS"
    assert "ticker *ACME*" in json.dumps(post.blocks)
    assert f"digest sent sink=slack id=digest:desk:{now:%Y-%m-%d}" in (tmp_path / "alerts-0.log").read_text()


def test_the_cli_says_when_there_is_no_history_yet(tmp_path: Path) -> None:
    env = {**os.environ, "FINPULSE_STORE_URL": f"duckdb:///{tmp_path / 'none.duckdb'}", "COLUMNS": "200"}
    done = subprocess.run(
        [str(FINPULSE), "alerts", "digest", "-s", "markets-desk", "--sink", "console"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "none.duckdb does not exist yet; start the stream worker" in done.stdout


def test_a_filter_written_in_another_case_gets_its_headlines(tmp_path: Path) -> None:
    _seeded(tmp_path / "h.duckdb")
    shouting = DESK.model_copy(
        update={"filter": DESK.filter.model_copy(update={"tickers": (), "sources": ("WIRE",)})}
    )
    with DuckDBStore(tmp_path / "h.duckdb", read_only=True) as db:
        digest = build_digest(db, shouting, digest_id("desk", END.date()), END)
    assert [(e.kind, e.entity) for e in digest.entities] == [("source", "wire")]  # stored as "wire"
    assert len(digest.headlines) == 3
    assert "No negative headlines" not in json.dumps(digest_blocks(digest))
