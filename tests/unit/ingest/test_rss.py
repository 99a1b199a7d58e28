"""Feed parsing over the real documents in ingest.feeds_dir."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from finpulse.errors import InvalidRecord
from finpulse.settings import IngestSettings
from ingest import rss
from ingest.errors import FeedError
from ingest.normalize import normalize_entry
from ingest.rss import parse_feed
from ingest.sources import FeedSource

FEEDS = IngestSettings().feeds_dir
SOURCE = FeedSource(name="test", url="https://example.com/feed", tags=("hint",), tickers=("ACME",))
NOW = datetime(2024, 1, 1, tzinfo=UTC)
MARKUP = re.compile(r"<[/!?]?[A-Za-z]|<!--")


def _doc(rel: str) -> bytes:
    return (FEEDS / rel).read_bytes()


def test_every_sample_document_parses_or_fails_cleanly() -> None:
    paths = sorted(p for p in FEEDS.rglob("*") if p.suffix in (".xml", ".rss", ".atom", ".rdf"))
    assert len(paths) > 600
    items = 0
    kinds: list[str] = []
    for path in paths:
        try:
            parsed = parse_feed(path.read_bytes(), SOURCE)
        except FeedError as exc:
            kinds.append(exc.kind)
            continue
        for raw in parsed.entries:
            try:
                item = normalize_entry(raw, fetched_at=NOW)
            except InvalidRecord:
                continue
            items += 1
            assert not MARKUP.search(item.title), path
            assert not MARKUP.search(item.summary), path
            assert item.published_at.tzinfo is UTC
    assert items > 1000
    assert len(kinds) < 20
    assert set(kinds) <= {"malformed", "not_a_feed", "empty_body"}


@pytest.mark.parametrize(
    ("rel", "entries", "language"),
    [
        ("real-world/guardian.rss", 55, "en"),
        ("real-world/encoding.rss", 40, "pt"),
        ("real-world/heise.atom", 15, "de"),  # declares none: detected
        ("real-world/rss-1.rss", 69, None),
        ("real-world/giantbomb-podcast.rss", 730, "en"),
    ],
)
def test_real_feeds(rel: str, entries: int, language: str | None) -> None:
    parsed = parse_feed(_doc(rel), SOURCE, "application/rss+xml")
    assert len(parsed.entries) == entries
    item = normalize_entry(parsed.entries[0], fetched_at=datetime.now(UTC))
    assert item.language == language
    assert item.url is not None
    assert item.url.startswith("http")
    assert "ACME" in item.tickers
    assert "hint" in item.tags
    assert not item.published_estimated


def test_latin1_feed_decodes() -> None:
    # encoding.rss is Portuguese with accents; the title must not hold mojibake.
    parsed = parse_feed(_doc("real-world/encoding.rss"), SOURCE)
    titles = " ".join(e.title for e in parsed.entries)
    assert "ã" in titles or "é" in titles
    assert "Ã" not in titles


def test_wrong_declared_charset_still_yields_text() -> None:
    body = _doc("real-world/guardian.rss")
    parsed = parse_feed(body, SOURCE, "application/rss+xml; charset=iso-8859-1")
    assert len(parsed.entries) == 55


def test_html_page_is_not_a_feed() -> None:
    with pytest.raises(FeedError) as info:
        parse_feed(b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>", SOURCE, "text/html")
    assert info.value.kind == "not_a_feed"


def test_a_document_moved_page_is_not_a_feed() -> None:
    # An old server's redirect page: it starts at <head>, without a doctype or <html>.
    with pytest.raises(FeedError, match="got an HTML page") as info:
        parse_feed(_doc("real-world/unrecognized.rss"), SOURCE)
    assert info.value.kind == "not_a_feed"


@pytest.mark.parametrize("body", [b"\x00\xff\xfe garbage \x01", b'{"json": true}', b"<rss><channel><item"])
def test_garbage_is_malformed(body: bytes) -> None:
    with pytest.raises(FeedError) as info:
        parse_feed(body, SOURCE)
    assert info.value.kind == "malformed"


def test_empty_body_and_empty_feed() -> None:
    with pytest.raises(FeedError, match="empty response"):
        parse_feed(b"  ", SOURCE)
    empty = parse_feed(
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>', SOURCE
    )
    assert empty.entries == ()
    assert "empty" in empty.warnings


def test_truncated_feed_keeps_complete_items() -> None:
    body = _doc("real-world/guardian.rss")
    parsed = parse_feed(body[: len(body) // 2], SOURCE)
    assert 10 < len(parsed.entries) < 55
    assert "malformed" in parsed.warnings


def _feed(*titles: str) -> bytes:
    items = "".join(
        f"<item><title>{t}</title><link>https://e.com/{i}</link></item>" for i, t in enumerate(titles)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>{items}</channel></rss>'.encode()
    )


@pytest.mark.parametrize(
    ("reference", "text"),
    [
        ("&#55357;&#56832;", "\U0001f600"),  # how some CMSs write an emoji: as its UTF-16 halves
        ("&#xD83D;&#xde00;", "\U0001f600"),
        ("&#55357;", "\ufffd"),  # a lone half: no character, say so
        ("&#xDE00;&#x41;", "\ufffdA"),
        ("&#128512;", "\U0001f600"),  # a real code point stays as it was
    ],
)
def test_surrogate_character_references_do_not_break_the_feed(reference: str, text: str) -> None:
    parsed = parse_feed(_feed("Good one", f"Acme {reference} sinks"), SOURCE)
    assert [e.title for e in parsed.entries] == ["Good one", f"Acme {text} sinks"]
    assert normalize_entry(parsed.entries[1], fetched_at=NOW).title == f"Acme {text} sinks"


def test_a_crash_inside_feedparser_is_a_malformed_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> None:
        raise UnicodeEncodeError("utf-8", "\ud83d", 0, 1, "surrogates not allowed")

    monkeypatch.setattr("ingest.rss.feedparser.parse", crash)
    with pytest.raises(FeedError) as info:
        parse_feed(_feed("Good one"), SOURCE)
    assert info.value.kind == "malformed"
    assert "UnicodeEncodeError" in str(info.value)


def test_an_entry_the_reader_fails_on_is_rejected_with_its_content(monkeypatch: pytest.MonkeyPatch) -> None:
    summary = rss._summary

    def fails_on_bad(entry: dict[str, object]) -> str:
        if entry.get("title") == "Bad one":
            raise TypeError("unexpected content shape")
        return summary(entry)

    monkeypatch.setattr("ingest.rss._summary", fails_on_bad)
    parsed = parse_feed(_feed("Good one", "Bad one"), SOURCE)
    assert [e.title for e in parsed.entries] == ["Good one"]
    [rejected] = parsed.rejected
    assert rejected.error.reason == "source=test: unreadable feed entry (TypeError: unexpected content shape)"
    assert json.loads(rejected.value)["link"] == "https://e.com/1"
    assert (
        rejected.id == parse_feed(_feed("Good one", "Bad one"), SOURCE).rejected[0].id
    )  # a re-poll knows it


def test_relative_links_resolve_against_the_feed_url() -> None:
    # GitHub's release feed links its entries by path only ("/gulpjs/gulp/releases/tag/v3.9.0").
    body = _doc("real-world/gulp-atom.atom")
    parsed = parse_feed(
        body, SOURCE, "application/atom+xml", url="https://github.com/gulpjs/gulp/releases.atom"
    )
    urls = [normalize_entry(raw, fetched_at=NOW).url for raw in parsed.entries]
    assert urls[0] == "https://github.com/gulpjs/gulp/releases/tag/v3.9.0"
    assert all(url is not None and url.startswith("https://github.com/gulpjs/") for url in urls)
    # No URL given (a saved file read as the source): the source's URL is the base.
    assert parse_feed(body, SOURCE).entries[0].link == "https://example.com/gulpjs/gulp/releases/tag/v3.9.0"


def test_feedburner_entries_link_the_article_not_the_click_tracker() -> None:
    links = [raw.link or "" for raw in parse_feed(_doc("real-world/feedburner.atom"), SOURCE).entries]
    assert (
        links[0] == "http://googleadsdeveloper.blogspot.com/2016/06/adwords-and-dfp-java-client-library.html"
    )
    assert not [link for link in links if "feedproxy.google.com" in link]


def test_reuters_symbols_in_escaped_angle_brackets_give_their_tickers() -> None:
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>wire</title><item>'
        b"<title>Nvidia &lt;NVDA.O&gt; shares slump after export curbs</title>"
        b"<description>Shares of Nvidia Corp &lt;NVDA.O&gt; and AMD &amp;lt;AMD.OQ&amp;gt; fell 5%."
        b"</description><link>https://e.com/1</link></item></channel></rss>"
    )
    item = normalize_entry(parse_feed(body, SOURCE).entries[0], fetched_at=NOW)
    assert item.title == "Nvidia $NVDA shares slump after export curbs"
    assert item.summary == "Shares of Nvidia Corp $NVDA and AMD $AMD fell 5%."
    assert item.tickers == ("ACME", "NVDA", "AMD")


@pytest.mark.parametrize("feed", ["reddit.rss", "reddit-home.rss", "reddit-atom.rss", "guardian.rss"])
def test_feed_footers_do_not_reach_the_summary(feed: str) -> None:
    # "submitted by /u/X to /r/Y [link] [N comments]", "Continue reading...": on every entry.
    entries = parse_feed(_doc(f"real-world/{feed}"), SOURCE).entries
    summaries = [normalize_entry(raw, fetched_at=NOW).summary for raw in entries]
    assert not [s for s in summaries if "submitted by" in s or "[link]" in s or "Continue reading" in s]
    if feed.startswith("reddit"):  # a link post's summary is the footer only
        assert "" in summaries
