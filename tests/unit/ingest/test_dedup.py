"""Exact and near-duplicate detection, with real headlines from the sample feeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from finpulse.schema import NewsItem, story_id_for
from finpulse.settings import IngestSettings
from ingest.dedup import Deduplicator
from ingest.normalize import normalize_entry
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
