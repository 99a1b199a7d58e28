"""RSS 0.9x/1.0/2.0, Atom and RDF feeds: fetch with HttpFetcher, parse with feedparser.

feedparser never fetches here: it parses the bytes we fetched (with the
response's Content-Type, so it can use the HTTP charset, and its URL, so relative
links resolve against it), off the event loop. It hands over HTML as written, not
sanitised nor rewritten: normalisation strips markup (normalize.strip_html), and
feedparser's rewriting drops or lower-cases a wire symbol written like a tag
("Nvidia Corp &lt;NVDA.O&gt;") before normalisation could read its ticker.
A feed that parses only partly (bozo, but with entries) is used and flagged
"malformed"; one that yields no feed at all raises FeedError ("not_a_feed" for
an HTML page, "malformed" otherwise), and so does one feedparser itself fails on.

Some publishers write an emoji as the character references of its two UTF-16
halves (`&#55357;&#56832;`). XML forbids surrogate code points and feedparser's
loose parser crashes on them, so they are rewritten to the one code point
(a lone half to U+FFFD) before parsing.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from dataclasses import dataclass
from typing import Any

import feedparser

from ingest.abc import Poller, PollOutcome, Rejected
from ingest.errors import FeedError
from ingest.fetch import HttpFetcher
from ingest.normalize import RawEntry, article_link
from ingest.sources import FeedSource
from ingest.state import SourceState

logger = logging.getLogger(__name__)

# feedparser's bozo exceptions that only say the declared charset was wrong.
_BENIGN_BOZO = ("CharacterEncodingOverride", "NonXMLContentType")
# A numeric character reference, short enough that int() stays cheap, and a run of them
# (a surrogate pair is two adjacent ones).
_CHARREF = re.compile(rb"&#(?:([0-9]{1,8})|[xX]([0-9a-fA-F]{1,6}));")
_CHARREF_RUN = re.compile(rb"(?:&#(?:[0-9]{1,8}|[xX][0-9a-fA-F]{1,6});)+")
_HIGH, _LOW = range(0xD800, 0xDC00), range(0xDC00, 0xE000)
# How an HTML page begins (lower-cased): old servers' "Document Moved" pages start at <head> or <body>.
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")


@dataclass(frozen=True)
class ParsedFeed:
    """Entries of one feed document and what was wrong with it, if anything."""

    version: str
    entries: tuple[RawEntry, ...]
    warnings: tuple[str, ...] = ()
    rejected: tuple[Rejected, ...] = ()


def _looks_like_html(body: bytes, content_type: str) -> bool:
    head = body[:2048].lstrip().lower()
    return "html" in content_type.lower() or head.startswith(_HTML_STARTS)


def _published(entry: Any) -> Any:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        if entry.get(key):
            return entry[key]
    return None


def _summary(entry: Any) -> str:
    summary = entry.get("summary") or ""
    if not summary and entry.get("content"):
        summary = entry["content"][0].get("value", "")
    return str(summary)


def _entry(entry: Any, source: FeedSource, feed_language: str | None, url: str) -> RawEntry:
    categories = tuple(str(t.get("term")) for t in entry.get("tags", []) if t.get("term"))
    # feedparser gives a title the xml:lang in scope, which the channel's <language> sets too:
    # channel-wide as often as not.
    detail_language = (entry.get("title_detail") or {}).get("language")
    return RawEntry(
        source=source.name,
        title=str(entry.get("title") or ""),
        summary=_summary(entry),
        # FeedBurner's entry.link is its click tracker (feedproxy.google.com/~r/...); the article is this.
        link=article_link(entry.get("feedburner_origlink") or entry.get("link"), url),
        guid=entry.get("id"),
        published=_published(entry),
        language=source.language,
        channel_language=detail_language or feed_language,
        tags=source.tags + categories,
        tickers=source.tickers,
    )


def _code_points(units: list[int]) -> list[int]:
    """UTF-16 code units as code points: pairs joined, lone surrogates as U+FFFD."""
    points: list[int] = []
    for unit in units:
        if unit in _LOW and points and points[-1] in _HIGH:
            points[-1] = 0x10000 + ((points[-1] - _HIGH.start) << 10) + (unit - _LOW.start)
        else:
            points.append(unit)
    return [0xFFFD if point in _HIGH or point in _LOW else point for point in points]


def _fix_reference_run(match: re.Match[bytes]) -> bytes:
    run = match.group()
    units = [int(dec) if dec else int(hex_, 16) for dec, hex_ in _CHARREF.findall(run)]
    if not any(unit in _HIGH or unit in _LOW for unit in units):
        return run
    # Still references, not bytes: the document may be in any encoding.
    return b"".join(b"&#x%X;" % point for point in _code_points(units))


def fix_surrogate_references(body: bytes) -> bytes:
    """`body` with references to UTF-16 surrogates replaced by the code point they encode."""
    return _CHARREF_RUN.sub(_fix_reference_run, body) if b"&#" in body else body


def _what(error: BaseException | None) -> str:
    """`SAXParseException: <unknown>:12:2: junk after document element` (its line and column)."""
    return f"{type(error).__name__}: {error}" if error is not None else "no parser error"


def parse_feed(body: bytes, source: FeedSource, content_type: str = "", url: str = "") -> ParsedFeed:
    """Parse feed bytes into raw entries; raises FeedError when it is no feed at all.

    `url`: where the body came from (after redirects; default the source's URL), the base of
    relative links ("/gulpjs/gulp/releases/tag/v3.9.0")."""
    if not body.strip():
        raise FeedError("empty_body", f"source={source.name}: empty response body")
    # Without a Content-Type feedparser reads the body as served without one (ISO-8859-1 by
    # default); application/xml reads it as a file: by its XML declaration, else UTF-8.
    base = url or source.url
    headers = {"content-type": content_type or "application/xml", "content-location": base}
    try:
        parsed = feedparser.parse(
            io.BytesIO(fix_surrogate_references(body)),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,  # in HTML content only; entry links still resolve
        )
    except Exception as exc:  # feedparser has crashed on bad input (UnicodeEncodeError): no feed
        raise FeedError("malformed", f"source={source.name}: feed parser failed ({_what(exc)})") from exc
    version = parsed.get("version") or ""
    raw_entries = parsed.get("entries") or []
    bozo = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not version and not raw_entries:
        if _looks_like_html(body, content_type):
            raise FeedError(
                "not_a_feed", f"source={source.name}: got an HTML page, not a feed; check the URL"
            )
        # The parser's own words carry the line and column: `<unknown>:12:2: junk after document element`.
        raise FeedError("malformed", f"source={source.name}: not a parseable feed ({_what(bozo)})")
    malformed = bozo is not None and type(bozo).__name__ not in _BENIGN_BOZO
    if malformed and not raw_entries:
        raise FeedError("malformed", f"source={source.name}: broken feed without items ({_what(bozo)})")
    warnings: list[str] = []
    if malformed:
        warnings.append("malformed")
        logger.warning(
            "feed partly malformed source=%s error=%s entries=%d", source.name, bozo, len(raw_entries)
        )
    if not raw_entries:
        warnings.append("empty")
    feed_language = (parsed.get("feed") or {}).get("language")
    entries, rejected = [], []
    for entry in raw_entries:
        try:
            entries.append(_entry(entry, source, feed_language, base))
        except (AttributeError, TypeError, ValueError) as exc:
            rejected.append(Rejected.of(source.name, entry, f"unreadable feed entry ({_what(exc)})"))
    return ParsedFeed(
        version=version,
        entries=tuple(entries),
        warnings=tuple(dict.fromkeys(warnings)),
        rejected=tuple(rejected),
    )


class RssSource(Poller):
    """Polls one feed URL with conditional GET and parses it."""

    def __init__(self, source: FeedSource) -> None:
        self.source = source
        self.name = source.name

    async def poll(self, state: SourceState, fetcher: HttpFetcher) -> PollOutcome:
        result = await fetcher.fetch(self.source.url, etag=state.etag, last_modified=state.last_modified)
        if result.not_modified:
            return PollOutcome(not_modified=True, etag=state.etag, last_modified=state.last_modified)
        parsed = await asyncio.to_thread(
            parse_feed, result.body, self.source, result.content_type, result.url
        )
        return PollOutcome(
            entries=parsed.entries,
            etag=result.etag,
            last_modified=result.last_modified,
            warnings=parsed.warnings,
            rejected=parsed.rejected,
        )
