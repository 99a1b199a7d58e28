"""Exact and near-duplicate detection, with real headlines from the sample feeds."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from finpulse.schema import NewsItem, story_id_for
from finpulse.settings import IngestSettings
from ingest.companies import CompaniesFile, CompanyNames
from ingest.dedup import NUM_PERM, SCHEME, Deduplicator, fingerprint_text, minhash
from ingest.normalize import RawEntry, normalize_entry
from ingest.rss import parse_feed
from ingest.sources import FeedSource

T0 = datetime(2024, 5, 1, 12, tzinfo=UTC)


def _item(source: str, title: str, summary: str = "", url: str | None = None, at: datetime = T0) -> NewsItem:
    return NewsItem(
        story_id=story_id_for(source, title, url or ""),
        source=source,
        title=title,
        summary=summary,
        url=url,
        published_at=at,
        fetched_at=at,
    )


def _guardian() -> list[NewsItem]:
    body = (IngestSettings().feeds_dir / "real-world/guardian.rss").read_bytes()
    parsed = parse_feed(body, FeedSource(name="guardian", url="https://x/"))
    return [normalize_entry(e, fetched_at=T0) for e in parsed.entries]


def _syndicate(item: NewsItem, source: str) -> NewsItem:
    """A wire copy: same story, lightly edited title, summary cut short, another URL."""
    return item.model_copy(
        update={
            "story_id": story_id_for(source, item.story_id),
            "source": source,
            "title": item.title.replace(" ", "  ", 1) + " - Reuters",
            "summary": item.summary[: max(60, len(item.summary) * 2 // 3)],
            "url": f"https://{source}.example.com/{item.story_id}",
            "published_at": item.published_at + timedelta(minutes=20),
        }
    )


def test_syndicated_copies_of_real_stories_point_at_the_original() -> None:
    dedup = Deduplicator(timedelta(hours=48), threshold=IngestSettings().near_dup_threshold)
    originals = _guardian()
    assert all(dedup.observe(i) is None for i in originals), "distinct real stories are not duplicates"
    copies = [_syndicate(i, "wire") for i in originals[:20]]
    found = [dedup.observe(c) for c in copies]
    hits = sum(f == o.story_id for f, o in zip(found, originals, strict=False))
    assert hits >= 18  # MinHash is an estimate; nearly every copy must be found
    # a copy of a copy points at the first story, not at the copy
    second = _syndicate(copies[0], "agency")
    assert dedup.observe(second) == originals[0].story_id


def test_exact_url_match_and_same_story_id_is_not_its_own_duplicate() -> None:
    dedup = Deduplicator(timedelta(hours=48))
    first = _item("a", "Acme beats estimates", url="https://n.example/acme")
    assert dedup.observe(first) is None
    assert dedup.observe(first) is None  # re-observing (e.g. after a failed publish) is not a duplicate
    other = _item("b", "Totally different words here", url="https://n.example/acme")
    assert dedup.observe(other) == first.story_id
    assert dedup.observe(other) == first.story_id  # and the answer is remembered


def test_same_source_horizon_and_unrelated_texts() -> None:
    dedup = Deduplicator(timedelta(hours=6))
    title = "Oil prices jump after OPEC announces surprise production cut of one million barrels"
    assert dedup.observe(_item("a", title)) is None
    assert dedup.observe(_item("a", title + ".")) is None  # same source: a follow-up, not syndication
    assert dedup.observe(_item("b", title, at=T0 + timedelta(hours=7))) is None  # outside the horizon
    assert dedup.observe(_item("c", "Central bank holds rates steady amid cooling inflation")) is None
    assert dedup.observe(_item("d", title + "!", at=T0 + timedelta(hours=1))) is not None


def test_prune_and_persistence_round_trip(tmp_path: Path) -> None:
    dedup = Deduplicator(timedelta(hours=48))
    originals = _guardian()[:10]
    for item in originals:
        dedup.observe(item)
    copy = _syndicate(originals[3], "wire")
    root = dedup.observe(copy)
    dedup.save(tmp_path / "dedup.json")
    restored = Deduplicator(timedelta(hours=48))
    restored.load(tmp_path / "dedup.json")
    assert len(restored) == 11
    assert restored.observe(copy) == root
    assert restored.observe(_syndicate(originals[5], "wire2")) == originals[5].story_id
    assert restored.prune(T0 + timedelta(hours=100)) == 12
    assert len(restored) == 0


def test_a_saver_writes_the_index_as_it_was_when_taken(tmp_path: Path) -> None:
    # The ingestor writes in a thread while other sources' polls add to the index.
    dedup = Deduplicator(timedelta(hours=48))
    first, later = _guardian()[:2]
    dedup.observe(first)
    write = dedup.saver()
    dedup.observe(later)
    write(tmp_path / "dedup.json")
    restored = Deduplicator(timedelta(hours=48))
    restored.load(tmp_path / "dedup.json")
    assert len(restored) == 1


# Zacks-style earnings stories: one template, another company in each, carried by several sites.
_ZACKS_NAMES = CompanyNames.of(
    CompaniesFile.model_validate(
        {
            "tickers": {
                "META": ["Meta Platforms"],
                "QCOM": ["Qualcomm"],
                "ANET": ["Arista Networks"],
                "ALGN": ["Align Technology"],
                "AMZN": ["Amazon.com"],
            }
        }
    )
)
_ZACKS = [
    ("yahoo-finance", "Meta Platforms", "META", "8.21%", "1.03%"),
    ("nasdaq", "Qualcomm", "QCOM", "2.94%", "0.98%"),
    ("yahoo-finance", "Arista Networks", "ANET", "6.25%", "1.42%"),
    ("nasdaq", "Align Technology", "ALGN", "3.10%", "0.51%"),
]


def _zacks(source: str, name: str, ticker: str, eps: str, sales: str, n: int) -> RawEntry:
    return RawEntry(
        source=source,
        title=f"{name} ({ticker}) Q2 Earnings and Revenues Surpass Estimates",
        summary=f"{name} ({ticker}) delivered earnings and revenue surprises of {eps} and {sales}, "
        "respectively, for the quarter ended June 2024. Do the numbers hold clues to what lies ahead "
        "for the stock?",
        link=f"https://{source}.example.com/news/{ticker.lower()}-q2-earnings-revenues-surpass-{n}.html",
        guid=f"zacks-{ticker}-{n}",
        published=T0 + timedelta(minutes=n),
    )


def test_templated_stories_about_other_companies_are_not_near_duplicates(tmp_path: Path) -> None:
    dedup = Deduplicator(timedelta(hours=48), threshold=IngestSettings().near_dup_threshold)
    raws = [_zacks(*row, n=n) for n, row in enumerate(_ZACKS)]
    items = [normalize_entry(r, T0 + timedelta(minutes=10), _ZACKS_NAMES) for r in raws]
    assert [i.tickers for i in items] == [("META",), ("QCOM",), ("ANET",), ("ALGN",)]
    first = minhash(fingerprint_text(items[0]))
    # the texts are as alike as syndicated copies: only the tickers tell them apart
    assert all(first.jaccard(minhash(fingerprint_text(i))) >= dedup.threshold for i in items[1:])
    assert [dedup.observe(i, guid=r.guid) for i, r in zip(items, raws, strict=True)] == [None] * 4

    # A syndicated copy of one of them, on another site: with the same tickers, or with none
    # (a site without the company's name in its list), it is still the same story.
    later = T0 + timedelta(minutes=30)
    copy = replace(_zacks("marketwatch", *_ZACKS[0][1:], n=0), link="https://mw.example.com/story/meta-q2")
    assert dedup.observe(normalize_entry(copy, later, _ZACKS_NAMES)) == items[0].story_id
    dedup.save(tmp_path / "dedup.json")
    no_tickers = normalize_entry(replace(copy, source="benzinga", link=None), later)
    assert no_tickers.tickers == ()
    assert dedup.observe(no_tickers) == items[0].story_id

    # the tickers are saved with the index: after a restart the answers are the same
    restored = Deduplicator(timedelta(hours=48), threshold=IngestSettings().near_dup_threshold)
    restored.load(tmp_path / "dedup.json")
    amazon = _zacks("investing", "Amazon.com", "AMZN", "2.65%", "0.62%", n=9)
    assert restored.observe(normalize_entry(amazon, later, _ZACKS_NAMES)) is None
    qualcomm = _zacks("investing", *_ZACKS[1][1:], n=9)
    assert restored.observe(normalize_entry(qualcomm, later, _ZACKS_NAMES)) == items[1].story_id


def _api(source: str, guid: str, title: str, link: str) -> NewsItem:
    raw = RawEntry(source=source, title=title, link=link, guid=guid, published=T0)
    return normalize_entry(raw, T0)


def test_a_guid_names_a_story_only_within_its_source() -> None:
    # Two APIs number their items 1, 2, 3...: id 1001 of one is not id 1001 of the other.
    dedup = Deduplicator(timedelta(hours=48))
    tesla = _api("api-a", "1001", "Tesla recalls 2 million cars over Autopilot", "https://a.example.com/1001")
    fed = _api("api-b", "1001", "Fed holds rates steady, signals two cuts", "https://b.example.com/n/1001")
    assert dedup.observe(tesla, guid="1001") is None
    assert dedup.observe(fed, guid="1001") is None
    # within one source the GUID still names the story (here: the same entry under a new link)
    moved = _item("api-a", "Tesla recalls two million cars", url="https://a.example.com/v2/1001")
    assert dedup.observe(moved, guid="1001") == tesla.story_id


def test_a_front_page_link_is_no_story_address() -> None:
    # A podcast feed links every episode to its home page; each episode has its own GUID.
    dedup = Deduplicator(timedelta(hours=48))
    episodes = [
        RawEntry(
            source="taverncast",
            title=f"Taverncast {n} - {topic}",
            link="http://www.taverncast.com/",
            guid=f"http://www.taverncast.com/shows/taverncast-{n}.mp3",
            published=T0 + timedelta(days=n - 105),
        )
        for n, topic in ((103, "Hoppy Holidays"), (104, "Pumpkin Ales"), (105, "The Great Stout-Off"))
    ]
    items = [normalize_entry(e, T0) for e in episodes]
    assert {i.url for i in items} == {"http://www.taverncast.com/"}
    assert [dedup.observe(i, guid=e.guid) for i, e in zip(items, episodes, strict=True)] == [None] * 3
    # nor across sources; but an article's address, even as a query on the front page, still is
    assert dedup.observe(_item("other", "Unrelated words", url="https://www.taverncast.com")) is None
    wp = _item("blog", "Fed minutes show split", url="https://blog.example/?p=4711")
    assert dedup.observe(wp) is None
    assert dedup.observe(_item("aggregator", "Minutes", url="https://blog.example/?p=4711")) == wp.story_id


def test_an_index_saved_before_per_source_guids_loads_and_its_guid_keys_match_nothing(
    tmp_path: Path,
) -> None:
    # The format before GUIDs were keyed by source and tickers were saved (version 2).
    old = _api("api-a", "1001", "Tesla recalls 2 million cars over Autopilot", "https://a.example.com/1001")
    hashes = base64.b64encode(minhash(fingerprint_text(old)).hashvalues.astype("<u4").tobytes()).decode()
    row = [old.story_id, old.story_id, "api-a", T0.isoformat(), [f"url:{old.url}", "guid:1001"], hashes,
           T0.isoformat()]  # fmt: skip
    path = tmp_path / "dedup.json"
    path.write_text(json.dumps({"version": 2, "num_perm": NUM_PERM, "scheme": SCHEME, "entries": [row]}))
    dedup = Deduplicator(timedelta(hours=48))
    dedup.load(path)
    assert len(dedup) == 1
    fed = _api("api-b", "1001", "Fed holds rates steady, signals two cuts", "https://b.example.com/n/1001")
    assert dedup.observe(fed, guid="1001") is None  # the old unkeyed GUID matches no new key
    assert dedup.observe(_item("wire", "Recall", url=old.url)) == old.story_id  # its URL still does
