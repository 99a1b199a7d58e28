"""`GET /api/v1/sources`: each news source's health as real ingestors publish it on the real
broker, read by an API that shares nothing else with them (its own settings, no state dir)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import typer
from aiokafka import AIOKafkaProducer
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from finpulse.schema import SourceStatus, utcnow
from finpulse.settings import IngestSettings, KafkaSettings, Settings, StoreSettings
from ingest.cli import register
from ingest.ingestor import Ingestor
from ingest.producer import NewsProducer
from ingest.sources import ApiSource, FeedSource, SourcesConfig
from tests.conftest import free_port
from tests.fixtures.feeds import FeedServer
from tests.fixtures.store import LOCAL, LOCAL_URL

GUARDIAN = "f/real-world/guardian.rss"


@pytest.fixture
def client(kafka: KafkaSettings, store_path: Any) -> Iterator[TestClient]:
    settings = Settings(store=StoreSettings(url=f"duckdb:///{store_path}"), kafka=kafka)
    with TestClient(create_app(settings), client=LOCAL, base_url=LOCAL_URL) as c:
        yield c


def _health(c: TestClient) -> dict[str, dict[str, Any]]:
    r = c.get("/api/v1/sources")
    assert r.status_code == 200, r.text
    return {s["name"]: s for s in r.json()["items"]}


def _feeds(server: FeedServer, *disabled: str, **paths: str) -> SourcesConfig:
    return SourcesConfig(
        feeds=tuple(
            FeedSource(name=n, url=server.url(p), enabled=n not in disabled, interval_s=60)
            for n, p in paths.items()
        )
    )


def test_every_ingestors_sources_with_their_health(
    client: TestClient, kafka: KafkaSettings, ingest_settings: IngestSettings, feed_server: FeedServer
) -> None:
    answer = client.get("/api/v1/sources").json()
    assert answer == {"topic": kafka.topics.sources, "items": []}  # no ingestor has started

    mine = _feeds(feed_server, "paused", wire=GUARDIAN, broken="html-error", paused=GUARDIAN)
    other_host = ingest_settings.model_copy(update={"state_dir": ingest_settings.state_dir.parent / "other"})

    async def first_start() -> None:
        async with Ingestor(ingest_settings, kafka, mine):
            pass

    asyncio.run(first_start())  # started, not polled yet
    assert {n: s["health"] for n, s in _health(client).items()} == {
        "broken": "waiting", "paused": "disabled", "wire": "waiting",
    }  # fmt: skip

    async def poll(settings: IngestSettings, sources: SourcesConfig) -> int:
        async with Ingestor(settings, kafka, sources) as ingestor:
            await ingestor.poll_all()
            return ingestor.metrics.total("published")

    published = asyncio.run(poll(ingest_settings, mine))
    asyncio.run(poll(other_host, _feeds(feed_server, elsewhere=GUARDIAN)))  # a second ingestor
    health = _health(client)
    assert list(health) == ["broken", "elsewhere", "paused", "wire"]
    assert {n: s["health"] for n, s in health.items()} == {
        "broken": "failing", "elsewhere": "ok", "paused": "disabled", "wire": "ok",
    }  # fmt: skip
    assert health["wire"]["items_published"] == published == 55
    assert health["wire"]["kind"] == "feed"
    assert health["wire"]["interval_s"] == 60
    assert health["wire"]["host"]
    assert health["broken"]["detail"].startswith("1 failed poll in a row: not_a_feed")
    assert health["broken"]["last_success_at"] is None

    # `broken` leaves the sources file: the ingestor's next start takes it off the list.
    asyncio.run(poll(ingest_settings, _feeds(feed_server, "paused", wire=GUARDIAN, paused=GUARDIAN)))
    health = _health(client)
    assert list(health) == ["elsewhere", "paused", "wire"]
    assert health["wire"]["items_published"] == 55  # not modified since: nothing new

    # An ingestor that stopped polling: its sources turn late after three intervals.
    ago = utcnow() - timedelta(minutes=4)
    stale = SourceStatus(
        source="elsewhere", source_kind="feed", interval_s=60, host="ingest-2", published_at=ago,
        last_poll_at=ago, last_success_at=ago, items_published=55,
    )  # fmt: skip

    async def publish(status: SourceStatus) -> None:
        async with NewsProducer(kafka) as producer:
            await producer.publish_status(status)

    asyncio.run(publish(stale))
    late = _health(client)["elsewhere"]
    assert late["health"] == "late"
    assert late["detail"] == "its poll is over 2 x 60 s overdue: is `finpulse ingest` on ingest-2 running?"


def test_kafka_away_is_a_503_naming_the_broker(store_path: Any, kafka: KafkaSettings) -> None:
    away = kafka.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"})
    settings = Settings(store=StoreSettings(url=f"duckdb:///{store_path}"), kafka=away)
    with TestClient(create_app(settings), client=LOCAL, base_url=LOCAL_URL) as c:
        r = c.get("/api/v1/sources")
    assert r.status_code == 503
    assert f"cannot reach Kafka at {away.bootstrap}" in r.json()["detail"]


def test_forget_takes_a_retired_ingestors_sources_off_the_list(
    client: TestClient,
    kafka: KafkaSettings,
    ingest_settings: IngestSettings,
    feed_server: FeedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def start() -> None:
        async with Ingestor(ingest_settings, kafka, _feeds(feed_server, retired=GUARDIAN, kept=GUARDIAN)):
            pass

    async def junk() -> None:  # not a SourceStatus: logged and skipped, the rest still listed
        async with AIOKafkaProducer(bootstrap_servers=kafka.bootstrap) as producer:
            await producer.send_and_wait(kafka.topics.sources, b"not json", key=b"junk")

    asyncio.run(start())
    asyncio.run(junk())
    assert list(_health(client)) == ["kept", "retired"]
    monkeypatch.setenv("FINPULSE_KAFKA_BOOTSTRAP", kafka.bootstrap)
    monkeypatch.setenv("FINPULSE_KAFKA_TOPICS", kafka.topics.model_dump_json())
    app = typer.Typer()
    app.callback()(lambda: None)
    register(app)
    result = CliRunner().invoke(app, ["ingest", "forget", "retired", "nope"])
    assert result.exit_code == 1, result.output  # one name was not on the list
    assert "retired: forgotten" in result.output
    assert "nope: not on the list" in result.output
    assert list(_health(client)) == ["kept"]


def test_a_source_whose_every_entry_is_dead_lettered_is_invalid(
    client: TestClient, kafka: KafkaSettings, ingest_settings: IngestSettings, feed_server: FeedServer
) -> None:
    rows = [{"id": f"n{i}", "headline": f"Story {i} about $ACME"} for i in range(3)]
    feed_server.put("mapped", json.dumps({"items": rows}).encode(), "application/json")
    # The field map names `title`; the API calls it `headline`: every item has neither title nor summary.
    mismapped = ApiSource(
        name="mismapped", url=feed_server.url("doc/mapped"), items_path="items",
        fields={"id": "id", "title": "title"},
    )  # fmt: skip

    async def poll() -> None:
        async with Ingestor(ingest_settings, kafka, SourcesConfig(apis=(mismapped,))) as ingestor:
            await ingestor.poll_all()

    asyncio.run(poll())
    health = _health(client)["mismapped"]
    assert health["health"] == "invalid"
    assert (health["last_entries"], health["last_invalid"], health["items_published"]) == (3, 3, 0)
    assert health["detail"].startswith(
        "all 3 entries of its last poll were dead-lettered: check its field map"
    )
