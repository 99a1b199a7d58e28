"""Feeds -> Kafka through the real ingestor, the local feed server and the real broker."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from finpulse.errors import ConfigError
from finpulse.processes import CliProcess, settings_env
from finpulse.schema import DeadLetter, NewsItem, utcnow
from finpulse.settings import IngestSettings, KafkaSettings, Settings
from finpulse.topics import dead_letter_topic
from ingest.health import source_health
from ingest.ingestor import Ingestor
from ingest.live_config import ConfigFiles, ConfigWatch
from ingest.scheduler import run_scheduled
from ingest.sources import ApiFields, ApiPagination, ApiSource, FeedSource, SourcesConfig
from tests.conftest import free_port, wait_for, wait_for_log
from tests.fixtures.feeds import FeedServer, feed_items, rss_document, rss_item
from tests.kafka_io import read_topic

GUARDIAN = "real-world/guardian.rss"
HEISE = "real-world/heise.atom"


def _feeds(server: FeedServer, **paths: str) -> SourcesConfig:
    return SourcesConfig(feeds=tuple(FeedSource(name=n, url=server.url(p)) for n, p in paths.items()))


async def _items(kafka: KafkaSettings, expect: int) -> list[NewsItem]:
    records = await read_topic(kafka, kafka.topics.raw, expect=expect, timeout_s=20)
    items = [NewsItem.from_bytes(r.value) for r in records]
    assert all(r.key == i.story_id.encode() for r, i in zip(records, items, strict=True))
    return items


async def _poll_all(settings: IngestSettings, kafka: KafkaSettings, sources: SourcesConfig) -> Ingestor:
    async with Ingestor(settings, kafka, sources) as ingestor:
        await ingestor.poll_all()
    return ingestor


async def test_items_land_exactly_once_across_restarts(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings
) -> None:
    guardian_items = feed_items((ingest_settings.feeds_dir / GUARDIAN).read_bytes())
    feed_server.put("growing", rss_document(guardian_items[:10]))
    sources = _feeds(feed_server, guardian=f"f/{GUARDIAN}", heise=f"f/{HEISE}", growing="doc/growing")

    first = await _poll_all(ingest_settings, kafka, sources)
    assert first.metrics.total("published") == 55 + 15 + 10
    # Per language, so a German source shows before the worker dead-letters its stories.
    assert first.metrics.get("guardian", "language.en") == 55
    assert first.metrics.get("heise", "language.de") == 15

    feed_server.put("growing", rss_document(guardian_items[:12]))  # two new stories
    second = await _poll_all(ingest_settings, kafka, sources)  # a new process: state from disk
    assert second.metrics.get("guardian", "not_modified") == 1
    assert second.metrics.get("heise", "not_modified") == 1
    assert second.metrics.get("growing", "published") == 2
    assert second.metrics.get("growing", "already_seen") == 10

    # validators lost (say, the server changed its ETags): seen ids still prevent re-publishing
    for path in (ingest_settings.state_dir / "sources").glob("*.json"):
        path.write_text(path.read_text().replace('"etag":"', '"etag":"stale-'))
    third = await _poll_all(ingest_settings, kafka, sources)
    assert third.metrics.total("published") == 0

    items = await _items(kafka, expect=82)
    assert len(items) == 82
    assert len({i.story_id for i in items}) == 82
    # "growing" re-publishes guardian stories (same URLs): of each pair, the one indexed first is
    # the original and the other points at it, whichever poll finished first
    by_id = {i.story_id: i for i in items}
    pairs = 0
    for item in items:
        if item.duplicate_of is not None:
            original = by_id[item.duplicate_of]
            assert original.url == item.url
            assert original.duplicate_of is None
            assert {original.source, item.source} == {"guardian", "growing"}
            pairs += 1
    assert pairs == 12


async def test_companies_named_in_titles_become_tickers(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings, tmp_path: Path
) -> None:
    items = [
        rss_item("Tesla recalls 2 million cars", "https://news.example/1"),
        rss_item("Morgan Stanley cuts PT on Aptiv", "https://news.example/2"),
        rss_item("Acme Corp beats estimates; $ZETA falls", "https://news.example/3"),
    ]
    feed_server.put("named", rss_document(items))
    sources = _feeds(feed_server, named="doc/named")
    await _poll_all(ingest_settings, kafka, sources)  # the shipped config/companies.toml
    by_url = {i.url: i.tickers for i in await _items(kafka, expect=3)}
    assert by_url == {
        "https://news.example/1": ("TSLA",),
        "https://news.example/2": (),  # the bank is the analyst here, not the news
        "https://news.example/3": ("ZETA",),
    }
    # A file of one's own; without one, a clear error before anything is polled.
    own = tmp_path / "companies.toml"
    own.write_text('[tickers]\nACME = ["Acme Corp"]\n')
    ingest = ingest_settings.model_copy(update={"companies_file": own, "state_dir": tmp_path / "other"})
    await _poll_all(ingest, kafka, sources)
    again = await _items(kafka, expect=6)  # the first three again, by an ingestor with other names
    assert sorted(i.tickers for i in again if i.url == "https://news.example/3") == [
        ("ZETA",),
        ("ZETA", "ACME"),
    ]
    with pytest.raises(ConfigError, match=r"companies file .*missing\.toml not found"):
        Ingestor(ingest.model_copy(update={"companies_file": tmp_path / "missing.toml"}), kafka, sources)


async def test_syndicated_copies_are_marked_as_duplicates(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings
) -> None:
    from feedparser import parse

    body = (ingest_settings.feeds_dir / GUARDIAN).read_bytes()
    originals = parse(body).entries[:6]
    copies = [
        rss_item(
            title=f"{e.title} | Wire",
            link=f"https://wire.example.com/story/{n}?utm_source=feed",
            description=e.summary[: len(e.summary) * 3 // 4],
            guid=f"wire-{n}",
            date=e.published,  # syndicated within minutes: the same day
        )
        for n, e in enumerate(originals[:4])
    ]
    same_link = rss_item(
        "Different words entirely",
        originals[4].link + "?utm_medium=rss",
        guid="wire-x",
        date=originals[4].published,
    )
    unrelated = rss_item(
        "Central bank holds rates as inflation cools", "https://wire.example.com/rates", guid="r"
    )
    feed_server.put("wire", rss_document([*copies, same_link, unrelated]))
    sources = _feeds(feed_server, guardian=f"f/{GUARDIAN}", wire="doc/wire")
    async with Ingestor(ingest_settings, kafka, sources) as ingestor:
        await ingestor.poll("guardian", force=True)
        await ingestor.poll("wire", force=True)
    assert ingestor.metrics.get("wire", "duplicates") == 5

    items = await _items(kafka, expect=55 + 6)
    by_url = {i.url: i.story_id for i in items if i.source == "guardian"}
    wire = {i.title: i for i in items if i.source == "wire"}
    for n, entry in enumerate(originals[:4]):
        copy = next(i for i in wire.values() if i.url == f"https://wire.example.com/story/{n}")
        assert copy.duplicate_of == by_url[entry.link]
    assert wire["Different words entirely"].duplicate_of == by_url[originals[4].link]
    assert wire["Central bank holds rates as inflation cools"].duplicate_of is None
    assert all(i.duplicate_of is None for i in items if i.source == "guardian")


async def test_a_kill_while_the_dedup_index_is_saved_loses_no_answer(
    feed_server: FeedServer,
    ingest_settings: IngestSettings,
    kafka: KafkaSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from feedparser import parse

    from ingest.dedup import Deduplicator

    original = parse((ingest_settings.feeds_dir / GUARDIAN).read_bytes()).entries[0]
    copy = rss_item(original.title, "https://wire.example.com/1", original.summary, "w1", original.published)
    feed_server.put("wire", rss_document([copy]))
    sources = _feeds(feed_server, guardian=f"f/{GUARDIAN}", wire="doc/wire")

    def killed(self: Deduplicator) -> Callable[[Path], None]:
        raise SystemExit("killed while writing the dedup index")

    with monkeypatch.context() as patch:
        patch.setattr(Deduplicator, "saver", killed)
        with pytest.raises(SystemExit):
            async with Ingestor(ingest_settings, kafka, sources) as ingestor:
                await ingestor.poll("guardian", force=True)
    async with Ingestor(ingest_settings, kafka, sources) as ingestor:  # the restart, state from disk
        await ingestor.poll("guardian", force=True)
        await ingestor.poll("wire", force=True)
    items = await _items(kafka, expect=55 * 2 + 1)  # the poll the kill cut short comes again
    guardian = {i.story_id for i in items if i.source == "guardian"}
    assert len(guardian) == 55
    assert [i.duplicate_of in guardian for i in items if i.source == "wire"] == [True]


async def test_bad_feeds_give_errors_not_crashes(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings
) -> None:
    settings = ingest_settings.model_copy(
        update={"max_retries": 0, "request_timeout_s": 1.0, "max_body_bytes": 2_000_000}
    )
    sources = _feeds(
        feed_server,
        good=f"f/{GUARDIAN}",
        partial=f"broken/f/{GUARDIAN}",
        empty="empty-feed",
        html="html-error",
        garbage="garbage",
        loop="loop/a",
        truncated=f"truncated/f/{HEISE}",
        limited=f"429/99/f/{HEISE}",
        huge="huge/5",
        slow="slow/3/empty-feed",
        always304="always-304",
        gone="status/410",
    )
    sources = sources.model_copy(
        update={"feeds": (*sources.feeds, FeedSource(name="down", url=f"http://127.0.0.1:{free_port()}/rss"))}
    )
    async with Ingestor(settings, kafka, sources) as ingestor:
        reports = {r.source: r for r in await ingestor.poll_all()}
        assert reports["good"].published == 55
        assert reports["partial"].status == "ok"
        assert 0 < reports["partial"].published < 55
        assert reports["empty"].status == "ok"
        expected = {
            "html": "not_a_feed",
            "garbage": "malformed",
            "loop": "redirect_loop",
            "truncated": "truncated",
            "limited": "rate_limited",
            "huge": "too_large",
            "slow": "timeout",
            "always304": "unexpected_304",
            "gone": "http_410",
            "down": "unreachable",
        }
        assert {n: reports[n].error for n in expected} == expected
        assert ingestor.metrics.errors() == Counter(expected.values())
        assert ingestor.metrics.get("partial", "warning.malformed") == 1
        assert ingestor.metrics.get("empty", "warning.empty") == 1
        # failing sources back off: an unforced poll skips them, healthy ones are polled
        again = {r.source: r.status for r in await ingestor.poll_all(force=False)}
        assert {n for n, s in again.items() if s == "skipped"} == set(expected)
        assert again["good"] == "not_modified"
        state = ingestor.states["limited"]
        assert state.consecutive_errors == 1
        assert state.last_error is not None
        assert state.last_error.startswith("rate_limited")
    items = await _items(kafka, expect=reports["good"].published + reports["partial"].published)
    assert len(items) == 55 + reports["partial"].published


async def test_invalid_entries_are_dead_lettered_once(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings
) -> None:
    good = rss_item(
        "$ACME <b>jumps</b> on earnings", "https://n.example/acme", "Beat <script>x()</script>estimates"
    )
    empty = rss_item("", "https://n.example/empty", guid="empty-1")
    feed_server.put("mixed", rss_document([good, empty]))
    sources = _feeds(feed_server, mixed="doc/mixed")
    await _poll_all(ingest_settings, kafka, sources)
    feed_server.put("mixed", rss_document([good, empty, rss_item("Second story", "https://n.example/2")]))
    await _poll_all(ingest_settings, kafka, sources)

    items = await _items(kafka, expect=2)
    assert [i.title for i in items] == ["$ACME jumps on earnings", "Second story"]
    assert items[0].summary == "Beat estimates"
    assert items[0].tickers == ("ACME",)
    dead = await read_topic(kafka, dead_letter_topic(kafka.topics.raw, kafka.topics), expect=1, timeout_s=10)
    assert len(dead) == 1
    letter = DeadLetter.from_bytes(dead[0].value)
    assert "neither title nor summary" in letter.reason
    assert letter.stage == "ingest"
    assert b"empty-1" in (letter.original_value() or b"")


async def test_json_api_source_with_auth_and_pagination(
    feed_server: FeedServer,
    ingest_settings: IngestSettings,
    kafka: KafkaSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    def page(ids: list[int], cursor: str | None) -> bytes:
        rows = [
            {
                "uuid": f"n{i}",
                "headline": f"Story {i} about $ACME",
                "teaser": "<p>text</p>",
                "link": f"https://api.example.com/n/{i}",
                "published": "2024-05-01T10:00:00Z",
                "symbols": ["BETA"],
            }
            for i in ids
        ]
        return json.dumps({"data": {"items": rows}, "meta": {"next": cursor}}).encode()

    feed_server.put("news", page([1, 2], "c2"), "application/json")
    feed_server.put("news?lang=en&cursor=c2", page([3], "c3"), "application/json")
    feed_server.put("news?lang=en&cursor=c3", page([], None), "application/json")
    monkeypatch.setenv("TEST_NEWS_TOKEN", "s3cret")
    source = ApiSource(
        name="api",
        url=feed_server.url("doc/news"),
        auth_env="TEST_NEWS_TOKEN",
        auth_prefix="Bearer ",
        items_path="data.items",
        params={"lang": "en"},
        fields={
            "id": "uuid",
            "title": "headline",
            "summary": "teaser",
            "url": "link",
            "published_at": "published",
            "tickers": "symbols",
        },
        pagination=ApiPagination(cursor_path="meta.next", cursor_param="cursor", mode="resume"),
    )
    # the first page is served without a cursor only when the query is just lang=en
    feed_server.put("news?lang=en", page([1, 2], "c2"), "application/json")
    async with Ingestor(ingest_settings, kafka, SourcesConfig(apis=(source,))) as ingestor:
        report = await ingestor.poll("api", force=True)
        assert report.published == 3
        assert ingestor.states["api"].cursor == "c3"
        feed_server.put("news?lang=en&cursor=c3", page([4], None), "application/json")
        assert (await ingestor.poll("api", force=True)).published == 1
    auth = {h.get("Authorization") for _, _, h in feed_server.requests}
    assert auth == {"Bearer s3cret"}
    items = await _items(kafka, expect=4)
    assert sorted(i.title for i in items) == [f"Story {n} about $ACME" for n in range(1, 5)]
    assert all(i.tickers == ("BETA", "ACME") and i.summary == "text" for i in items)


async def test_api_items_that_are_no_object_are_dead_lettered_once(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings
) -> None:
    import json

    story = {"id": "a1", "title": "$ACME beats estimates", "url": "https://api.example.com/a1"}
    feed_server.put("junk", json.dumps({"items": [story, "oops", None, [1]]}).encode(), "application/json")
    source = ApiSource(
        name="junky",
        url=feed_server.url("doc/junk"),
        items_path="items",
        fields={"id": "id", "title": "title"},
    )
    async with Ingestor(ingest_settings, kafka, SourcesConfig(apis=(source,))) as ingestor:
        first = await ingestor.poll("junky", force=True)
        assert (first.published, first.invalid) == (1, 3)
        assert ingestor.metrics.get("junky", "entries") == 4
        again = await ingestor.poll("junky", force=True)  # the same document: nothing new, nothing again
        assert (again.published, again.invalid) == (0, 0)
    assert [i.title for i in await _items(kafka, expect=1)] == ["$ACME beats estimates"]
    dead = await read_topic(kafka, dead_letter_topic(kafka.topics.raw, kafka.topics), expect=3, timeout_s=10)
    letters = [DeadLetter.from_bytes(r.value) for r in dead]
    assert sorted((letter.reason, letter.original_value()) for letter in letters) == [  # any partitions
        ("source=junky: item 1 is a string, not an object", b'"oops"'),
        ("source=junky: item 2 is null, not an object", b"null"),
        ("source=junky: item 3 is an array, not an object", b"[1]"),
    ]


async def test_pages_mode_stops_at_a_page_read_before_and_says_when_pages_run_out(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings
) -> None:
    import json

    def page(ids: list[int], cursor: str | None) -> bytes:
        rows = [{"id": f"p{i}", "title": f"Paged story {i}"} for i in ids]
        return json.dumps({"items": rows, "next": cursor}).encode()

    for query, ids, cursor in (("", [6, 5], "c2"), ("?c=c2", [4, 3], "c3"), ("?c=c3", [2, 1], None)):
        feed_server.put(f"paged{query}", page(ids, cursor), "application/json")
    paging = ApiPagination(cursor_path="next", cursor_param="c", mode="pages", max_pages=5)
    source = ApiSource(name="paged", url=feed_server.url("doc/paged"), items_path="items", pagination=paging)

    def asked(query: str = "") -> int:
        return sum(path == f"/doc/paged{query}" for _, path, _ in feed_server.requests)

    async with Ingestor(ingest_settings, kafka, SourcesConfig(apis=(source,))) as ingestor:
        assert (await ingestor.poll("paged", force=True)).published == 6
        assert (asked(), asked("?c=c2"), asked("?c=c3")) == (1, 1, 1)
        # Nothing new: the first page was read before, so the older pages are not asked for again.
        assert (await ingestor.poll("paged", force=True)).published == 0
        assert (asked(), asked("?c=c2"), asked("?c=c3")) == (2, 1, 1)
        # Two new stories on a new first page: read up to the page read before.
        feed_server.put("paged", page([8, 7], "c1"), "application/json")
        feed_server.put("paged?c=c1", page([6, 5], "c2"), "application/json")
        assert (await ingestor.poll("paged", force=True)).published == 2
        assert (asked("?c=c1"), asked("?c=c2")) == (1, 1), "the page after one read before is not asked for"
    short = source.model_copy(
        update={"name": "short", "pagination": paging.model_copy(update={"max_pages": 2})}
    )
    async with Ingestor(ingest_settings, kafka, SourcesConfig(apis=(short,))) as ingestor:
        assert (await ingestor.poll("short", force=True)).published == 4
        assert ingestor.metrics.get("short", "warning.more_pages") == 1
        # Its last page reaches stories read before: nothing went unread, nothing said.
        feed_server.put("paged", page([11, 10], "c10"), "application/json")
        feed_server.put("paged?c=c10", page([9, 8], "c1"), "application/json")  # 8 read before
        assert (await ingestor.poll("short", force=True)).published == 3
        assert ingestor.metrics.get("short", "warning.more_pages") == 1


async def test_a_source_whose_address_changes_forgets_the_old_ones_validators(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings
) -> None:
    old = FeedSource(name="g", url=feed_server.url(f"f/{GUARDIAN}"))
    async with Ingestor(ingest_settings, kafka, SourcesConfig(feeds=(old,))) as ingestor:
        await ingestor.poll("g", force=True)
        validators = (ingestor.states["g"].etag, ingestor.states["g"].last_modified)
        assert all(validators)
        tagged = old.model_copy(update={"tags": ("markets",)})  # the same address: kept
        await ingestor.apply(SourcesConfig(feeds=(tagged,)), ingestor.names)
        assert (ingestor.states["g"].etag, ingestor.states["g"].last_modified) == validators
        moved = tagged.model_copy(update={"url": feed_server.url(f"f/{HEISE}")})
        await ingestor.apply(SourcesConfig(feeds=(moved,)), ingestor.names)
        assert (ingestor.states["g"].etag, ingestor.states["g"].last_modified) == (None, None)
        assert (await ingestor.poll("g", force=True)).published == 15
        assert ingestor.states["g"].etag
    # The file edited while no ingestor ran: the next one sees the new address against the saved one.
    async with Ingestor(ingest_settings, kafka, SourcesConfig(feeds=(moved,))) as ingestor:
        assert ingestor.states["g"].etag, "the same address: kept"
    async with Ingestor(ingest_settings, kafka, SourcesConfig(feeds=(old,))) as ingestor:
        assert (ingestor.states["g"].etag, ingestor.states["g"].last_modified) == (None, None)


async def test_a_fixed_field_map_reads_again_what_the_wrong_one_dead_lettered(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings
) -> None:
    import json

    def page(ids: list[int], cursor: str | None) -> bytes:
        rows = [{"id": f"m{i}", "headline": f"Mapped story {i}"} for i in ids]
        return json.dumps({"items": rows, "next": cursor}).encode()

    feed_server.put("whole", page([1, 2], None), "application/json")
    feed_server.put("resumed", page([3, 4], "c2"), "application/json")
    feed_server.put("resumed?c=c2", page([], None), "application/json")
    paging = ApiPagination(cursor_path="next", cursor_param="c", mode="resume")
    wrong = (  # the default map: the title at "title", which these items lack
        ApiSource(name="whole", url=feed_server.url("doc/whole"), items_path="items"),
        ApiSource(name="resumed", url=feed_server.url("doc/resumed"), items_path="items", pagination=paging),
    )
    fixed = tuple(s.model_copy(update={"fields": ApiFields(id="id", title="headline")}) for s in wrong)
    async with Ingestor(ingest_settings, kafka, SourcesConfig(apis=wrong)) as ingestor:
        assert [(r.published, r.invalid) for r in await ingestor.poll_all()] == [(0, 2), (0, 2)]
        assert ingestor.states["resumed"].cursor == "c2"
        # Without the new map in the address: a 304 (ETag) and the empty page after the cursor.
        await ingestor.apply(SourcesConfig(apis=fixed), ingestor.names)
        assert [r.published for r in await ingestor.poll_all()] == [2, 2]
    titles = sorted(i.title for i in await _items(kafka, expect=4))
    assert titles == [f"Mapped story {n}" for n in range(1, 5)]


async def test_a_poll_normalises_and_saves_its_state_off_the_event_loop(
    feed_server: FeedServer,
    ingest_settings: IngestSettings,
    kafka: KafkaSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A big API response takes seconds to normalise and its state to write: on the loop, every
    other source's request would wait meanwhile (and time out)."""
    import ingest.ingestor
    from ingest.normalize import normalize_entries

    loop = asyncio.get_running_loop()
    blocking: list[str] = []

    def watched(work: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            turned = threading.Event()
            loop.call_soon_threadsafe(turned.set)  # runs only once the loop is free
            if not turned.wait(timeout=5):
                blocking.append(work.__name__)
            return work(*args)

        return run

    monkeypatch.setattr(ingest.ingestor, "normalize_entries", watched(normalize_entries))
    sources = _feeds(feed_server, g=f"f/{GUARDIAN}", gone="status/404")
    async with Ingestor(ingest_settings, kafka, sources) as ingestor:
        monkeypatch.setattr(ingestor.store, "save", watched(ingestor.store.save))
        assert [r.status for r in await ingestor.poll_all()] == ["ok", "error"]
    assert blocking == []


async def test_scheduler_polls_on_interval(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings
) -> None:
    sources = SourcesConfig(feeds=(FeedSource(name="g", url=feed_server.url(f"f/{HEISE}"), interval_s=0.5),))
    ingestor = Ingestor(ingest_settings, kafka, sources)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(1.8, stop.set)
    await run_scheduled(ingestor, stop)
    assert feed_server.hits[f"f/{HEISE}"] >= 3
    assert ingestor.metrics.get("g", "published") == 15
    assert ingestor.metrics.get("g", "not_modified") >= 2
    assert ingestor.store.load("g").items_published == 15  # persisted


async def test_a_second_ingestor_on_the_same_state_is_refused(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings
) -> None:
    sources = SourcesConfig(feeds=(FeedSource(name="g", url=feed_server.url(f"f/{HEISE}")),))
    async with Ingestor(ingest_settings, kafka, sources):
        with pytest.raises(
            ConfigError, match="in use by another ingestor: give each its own FINPULSE_INGEST_STATE_DIR"
        ):
            await Ingestor(ingest_settings, kafka, sources).start()
    async with Ingestor(ingest_settings, kafka, sources) as again:  # the first stopped: free
        assert (await again.poll("g", force=True)).published == 15


def test_sample_ingest_for_the_demo(
    kafka: KafkaSettings, ingest_settings: IngestSettings, tmp_path: Path
) -> None:
    from finpulse.settings import Settings
    from ingest.samples import SAMPLE_FEEDS, run_sample_ingest

    settings = Settings(kafka=kafka, ingest=ingest_settings.model_copy(update={"allow_private_hosts": False}))
    run = run_sample_ingest(settings, state_dir=tmp_path / "samples")
    assert [r.status for r in run.reports] == ["ok"] * len(SAMPLE_FEEDS)
    assert run.published == 55 + 15 + 40 + 25
    assert run_sample_ingest(settings, state_dir=tmp_path / "samples").published == 0  # nothing new
    records = asyncio.run(read_topic(kafka, kafka.topics.raw, expect=run.published))
    assert len(records) == run.published


async def test_edits_of_the_sources_and_companies_files_apply_while_it_runs(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    sources_file, companies_file = tmp_path / "sources.toml", tmp_path / "companies.toml"

    def write_sources(**docs: str) -> None:  # source name -> the document it polls
        entry = '[[feeds]]\nname = "{}"\nurl = "{}"\ninterval_s = 0.3\n'
        sources_file.write_text(
            "".join(entry.format(n, feed_server.url(f"doc/{d}")) for n, d in docs.items())
        )

    def serve(name: str, *titles: str) -> None:
        feed_server.put(name, rss_document([rss_item(t, f"https://news.example/{name}/{t}") for t in titles]))

    serve("a", "Tesla recalls 2 million cars")
    serve("b", "Acme Corp beats estimates")
    write_sources(a="a")
    companies_file.write_text('[tickers]\nTSLA = ["Tesla"]\n')
    settings = ingest_settings.model_copy(update={"companies_file": companies_file})
    files = ConfigFiles(sources_file, companies_file, allow_private=True)
    watch = ConfigWatch(files, refresh_s=60)  # checked on request (as on SIGHUP), not by the clock
    ingestor, stop = Ingestor(settings, kafka, files.load()[0]), asyncio.Event()
    running = asyncio.create_task(run_scheduled(ingestor, stop, watch=watch))

    async def reload(until: Callable[[], bool]) -> None:
        watch.request()
        await wait_for(until, timeout_s=5)

    def titles(items: list[NewsItem]) -> dict[str, tuple[str, ...]]:
        return {i.title: i.tickers for i in items}

    try:
        assert titles(await _items(kafka, expect=1)) == {"Tesla recalls 2 million cars": ("TSLA",)}
        write_sources(a="a", b="b")  # a source added: polled at once, with the names of the time
        await reload(lambda: "b" in ingestor.sources)
        assert titles(await _items(kafka, expect=2))["Acme Corp beats estimates"] == ()
        companies_file.write_text('[tickers]\nTSLA = ["Tesla"]\nACME = ["Acme Corp"]\n')
        await reload(lambda: bool(ingestor.names.tickers("Acme Corp")))
        serve("b", "Acme Corp beats estimates", "Acme Corp raises its outlook")
        assert titles(await _items(kafka, expect=3))["Acme Corp raises its outlook"] == ("ACME",)
        # A broken edit is logged and changes nothing; the sources keep being polled.
        sources_file.write_text("[[feeds]\n")
        watch.request()
        serve("a", "Tesla recalls 2 million cars", "Tesla opens a plant")
        assert "Tesla opens a plant" in titles(await _items(kafka, expect=4))
        assert "ingest config not reloaded" in caplog.text
        assert sorted(ingestor.sources) == ["a", "b"]
        # A source removed: no longer polled, and gone from the sources' health; one changed:
        # polled at its new URL.
        serve("c", "Tesla cuts prices")
        write_sources(b="c")
        await reload(lambda: "a" not in ingestor.sources)
        assert "Tesla cuts prices" in titles(await _items(kafka, expect=5))
        await asyncio.sleep(0.2)  # a poll of a that had begun ends
        hits = feed_server.hits["doc/a"]
        await asyncio.sleep(1.0)
        assert feed_server.hits["doc/a"] == hits
        assert feed_server.hits["doc/c"] > 3
        assert [r.status.source for r in await source_health(kafka, utcnow())] == ["b"]
    finally:
        stop.set()
        await running


async def test_the_ingest_command_reloads_its_files_on_sighup(
    feed_server: FeedServer, ingest_settings: IngestSettings, kafka: KafkaSettings, tmp_path: Path
) -> None:
    sources_file = tmp_path / "sources.toml"

    def feed(name: str, path: str) -> str:
        return f'[[feeds]]\nname = "{name}"\nurl = "{feed_server.url(f"f/{path}")}"\n'

    sources_file.write_text(feed("heise", HEISE))
    settings = Settings(kafka=kafka, ingest=ingest_settings.model_copy(update={"config_refresh_s": 3600}))
    env = settings_env(settings)
    process = CliProcess(["ingest", "--sources", str(sources_file)], env, tmp_path / "ingest.log").start()
    try:
        await wait_for_log(process, "ingest scheduler started sources=1", 60)
        sources_file.write_text(feed("heise", HEISE) + feed("guardian", GUARDIAN))
        os.kill(process.pid or 0, signal.SIGHUP)
        await wait_for_log(process, "added=guardian", 10)
        await wait_for_log(process, "polled source=guardian", 10)
    finally:
        process.stop()
    assert process.returncode == 0, process.tail()
