"""Replay files -> Kafka, and the `finpulse ingest` commands end to end."""

from __future__ import annotations

import asyncio
import csv
import itertools
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from finpulse.schema import DeadLetter, NewsItem, utcnow
from finpulse.settings import IngestSettings, KafkaSettings
from finpulse.topics import dead_letter_topic
from ingest.cli import languages_text, register
from ingest.companies import CompanyNames
from ingest.health import source_health
from ingest.ingestor import LANGUAGE, Ingestor
from ingest.replay import publish_replay, publish_replay_async, read_replay
from ingest.sources import ReplaySource, SourcesConfig
from tests.fixtures.feeds import FeedServer
from tests.kafka_io import read_topic

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


WORDS = [
    "acme",
    "beta",
    "bank",
    "oil",
    "rates",
    "profit",
    "warning",
    "merger",
    "bond",
    "yields",
    "guidance",
    "chip",
    "retail",
    "energy",
    "lawsuit",
    "dividend",
    "buyback",
    "outlook",
    "strike",
    "tariff",
    "recall",
    "upgrade",
    "downgrade",
    "earnings",
]


def _rows(n: int, gap_s: float = 60.0) -> list[dict[str, object]]:
    # distinct stories: different words, so near-duplicate detection has nothing to join
    words = [" ".join(random.Random(i).sample(WORDS, 8)) for i in range(n)]
    return [
        {
            "title": f"<b>Story {i}</b> on $ACME {words[i]}",
            "summary": f"Shares moved &amp; analysts reacted: {words[i]}",
            "url": f"https://news.example.com/{i}?utm_source=x",
            "source": "wire" if i % 2 else "desk",
            "published_at": (T0 + timedelta(seconds=gap_s * i)).isoformat(),
            "tickers": ["BETA"] if i % 3 == 0 else [],
        }
        for i in range(n)
    ]


def _write_jsonl(path: Path, rows: list[dict[str, object]], extra: list[str] = ()) -> Path:  # type: ignore[assignment]
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    lines = [json.dumps(r) for r in shuffled] + list(extra)
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_replay_publishes_in_timestamp_order_and_dead_letters_bad_rows(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    path = _write_jsonl(
        tmp_path / "news.jsonl",
        _rows(30),
        extra=[
            '{"title": "no time", "source": "x"}',
            "not json at all",
            # Go's "no date", a year-9999 typo, one before year 1 in UTC: out of range, not a crash
            '{"title": "zero", "source": "x", "published_at": "0001-01-01T00:00:00Z"}',
            '{"title": "typo", "source": "x", "published_at": "9999-12-31T23:59:59Z"}',
            '{"title": "early", "source": "x", "published_at": "0001-01-01T00:00:00+01:00"}',
        ],
    )
    report = await publish_replay_async(kafka, path, speed=0)
    assert (report.rows, report.published, report.invalid) == (35, 30, 5)
    records = await read_topic(kafka, kafka.topics.raw, expect=30)
    items = [NewsItem.from_bytes(r.value) for r in records]
    assert len(items) == 30
    # sent in published_at order: Kafka's append timestamps never go backwards against it
    sent = sorted(zip(items, records, strict=True), key=lambda p: p[0].published_at)
    assert all(a[1].timestamp <= b[1].timestamp for a, b in itertools.pairwise(sent))
    first = min(items, key=lambda i: i.published_at)
    assert first.published_at == T0
    assert first.title.startswith("Story 0 on $ACME ")
    assert first.summary.startswith("Shares moved & analysts reacted: ")
    assert first.url == "https://news.example.com/0"
    assert first.tickers == ("BETA", "ACME")
    # stable ids: reading the file again gives the same story ids
    again = {r.item.story_id for r in read_replay(path) if r.item}
    assert again == {i.story_id for i in items}
    dead = await read_topic(kafka, dead_letter_topic(kafka.topics.raw, kafka.topics), expect=5, timeout_s=10)
    reasons = sorted(DeadLetter.from_bytes(d.value).reason for d in dead)
    assert reasons == [
        "line 31: published_at missing or not ISO-8601",
        "line 32: not a JSON object",
        "line 33: published_at: published time 0001-01-01T00:00:00+00:00 is not between 1900 and 9000",
        "line 34: published_at: published time 9999-12-31T23:59:59+00:00 is not between 1900 and 9000",
        "line 35: published_at missing or not ISO-8601",
    ]


async def test_replay_finds_tickers_by_company_name_as_ingestion_does(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    row = {
        "title": "Apple supplier warns",
        "source": "wire",
        "published_at": T0.isoformat(),
        "tickers": ["X"],
    }
    path = _write_jsonl(tmp_path / "named.jsonl", [row])
    names = CompanyNames.load(IngestSettings().companies_file)
    assert [r.item.tickers for r in read_replay(path, names=names) if r.item] == [("X", "AAPL")]
    await publish_replay_async(kafka, path, names=names)
    [record] = await read_topic(kafka, kafka.topics.raw, expect=1)
    assert NewsItem.from_bytes(record.value).tickers == ("X", "AAPL")


async def test_replay_speed_factor_paces_items(kafka: KafkaSettings, tmp_path: Path) -> None:
    path = _write_jsonl(tmp_path / "paced.jsonl", _rows(5, gap_s=1.0))  # 4 s of news
    seen: list[tuple[int, int, datetime]] = []
    report = await publish_replay_async(
        kafka, path, speed=4.0, rebase_to_now=True, progress=lambda *done: seen.append(done)
    )
    assert 0.95 <= report.elapsed_s < 2.5  # 4 s at 4x
    # Paced: progress after every row, with the row's own (file) time.
    assert seen[:5] == [(i + 1, 5, T0 + timedelta(seconds=i)) for i in range(5)]
    items = [NewsItem.from_bytes(r.value) for r in await read_topic(kafka, kafka.topics.raw, expect=5)]
    newest = max(i.published_at for i in items)
    assert datetime.now(UTC) - newest < timedelta(seconds=30)  # rebased to now
    gaps = sorted(i.published_at for i in items)
    assert gaps[-1] - gaps[0] == timedelta(seconds=4)  # spacing kept


def test_blocking_replay_of_csv_with_explicit_ids(kafka: KafkaSettings, tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(
            fh, ["title", "summary", "url", "source", "published_at", "tickers", "story_id"]
        )
        writer.writeheader()
        writer.writerow(
            {"title": "B", "url": "https://x.com/b", "source": "s", "published_at": "2024-01-01T10:05:00",
             "tickers": "AAA;BBB", "story_id": "id-b"}
        )  # fmt: skip
        writer.writerow(
            {"title": "A", "source": "s", "published_at": "2024-01-01T10:00:00Z", "story_id": "id-a"}
        )
    report = publish_replay(kafka, path, speed=0)
    assert report.published == 2
    records = asyncio.run(read_topic(kafka, kafka.topics.raw, expect=2))
    items = {NewsItem.from_bytes(r.value).story_id: NewsItem.from_bytes(r.value) for r in records}
    assert set(items) == {"id-a", "id-b"}
    assert items["id-b"].tickers == ("AAA", "BBB")
    assert items["id-a"].published_at == datetime(2024, 1, 1, 10, tzinfo=UTC)


async def test_replay_source_resumes_after_restart(
    kafka: KafkaSettings, ingest_settings: IngestSettings, tmp_path: Path
) -> None:
    rows = _rows(12)
    rows[5] = {**rows[4], "source": "other", "url": "https://elsewhere.example/copy"}  # a syndicated copy
    rows[5]["published_at"] = (T0 + timedelta(minutes=5)).isoformat()
    path = _write_jsonl(tmp_path / "r.jsonl", rows)
    sources = SourcesConfig(replays=(ReplaySource(name="r", path=path),))
    async with Ingestor(ingest_settings, kafka, sources) as ingestor:
        assert (await ingestor.poll("r", force=True)).published == 12
        # Each story counted under its language, as a feed's are (`ingest --once`'s column).
        counts = ingestor.metrics.snapshot()["r"]
        assert sum(n for k, n in counts.items() if k.startswith(LANGUAGE)) == 12
    async with Ingestor(ingest_settings, kafka, sources) as ingestor:
        assert (await ingestor.poll("r", force=True)).published == 0  # state says done
    items = [NewsItem.from_bytes(r.value) for r in await read_topic(kafka, kafka.topics.raw, expect=12)]
    assert len(items) == 12
    copy = next(i for i in items if i.source == "other")
    assert copy.duplicate_of == next(i.story_id for i in items if i.url == "https://news.example.com/4")
    # Its status: read once, so ok however long ago; the 12 published once.
    [health] = await source_health(kafka, utcnow() + timedelta(days=30))
    assert (health.status.source, health.status.source_kind, health.health) == ("r", "replay", "ok")
    assert health.status.items_published == 12


def _cli_env(monkeypatch: pytest.MonkeyPatch, kafka: KafkaSettings, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("FINPULSE_KAFKA_BOOTSTRAP", kafka.bootstrap)
    monkeypatch.setenv("FINPULSE_KAFKA_TOPICS", kafka.topics.model_dump_json())
    monkeypatch.setenv("FINPULSE_INGEST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("FINPULSE_INGEST_ALLOW_PRIVATE_HOSTS", "true")
    monkeypatch.setenv("FINPULSE_INGEST_PER_HOST_MIN_INTERVAL_S", "0")
    monkeypatch.setenv("FINPULSE_CONFIG", str(tmp_path / "empty.toml"))
    (tmp_path / "empty.toml").write_text("")
    return CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """finpulse (test root)."""

    register(app)
    return app


def test_cli_replay_and_once(
    monkeypatch: pytest.MonkeyPatch, kafka: KafkaSettings, tmp_path: Path, feed_server: FeedServer
) -> None:
    runner = _cli_env(monkeypatch, kafka, tmp_path)
    path = _write_jsonl(tmp_path / "news.jsonl", _rows(8))
    result = runner.invoke(_app(), ["ingest", "replay", str(path), "--no-wait"])
    assert result.exit_code == 0, result.output
    assert "published 8 of 8 rows" in result.output
    languages = Counter(r.item.language or "unknown" for r in read_replay(path) if r.item).most_common()
    assert f"languages {languages_text(dict(languages))})" in " ".join(result.output.split())

    sources = tmp_path / "sources.toml"
    sources.write_text(
        f'[[feeds]]\nname = "heise"\nurl = "{feed_server.url("f/real-world/heise.atom")}"\n'
        f'[[feeds]]\nname = "broken"\nurl = "{feed_server.url("html-error")}"\n'
    )
    monkeypatch.setenv("FINPULSE_INGEST_SOURCES_FILE", str(sources))
    result = runner.invoke(_app(), ["ingest", "--once"])
    assert result.exit_code == 0, result.output
    assert "heise" in result.output
    assert "de 15" in result.output  # the summary's languages column
    assert "not_a_feed" in result.output
    records = asyncio.run(read_topic(kafka, kafka.topics.raw, expect=8 + 15))
    assert len(records) == 23


def test_cli_runs_that_publish_nothing_exit_1(
    monkeypatch: pytest.MonkeyPatch, kafka: KafkaSettings, tmp_path: Path
) -> None:
    runner = _cli_env(monkeypatch, kafka, tmp_path)
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"no": "title"}\n{"nor": "this"}\n', encoding="utf-8")
    result = runner.invoke(_app(), ["ingest", "replay", str(junk), "--no-wait"])
    assert result.exit_code == 1, result.output  # a script can tell
    assert "published 0 of 2 rows" in result.output
    sources = tmp_path / "off.toml"
    sources.write_text('[[feeds]]\nname = "off"\nurl = "https://news.example/rss"\nenabled = false\n')
    result = runner.invoke(_app(), ["ingest", "--once", "--sources", str(sources)])
    assert result.exit_code == 1, result.output
    assert f"no enabled source in {sources}: nothing to poll" in result.output  # the path whole
