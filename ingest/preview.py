"""`finpulse ingest try`: fetch one source once and show what finpulse makes of it, publishing
nothing and keeping no state, so a feed or news API can be checked before it goes into the
sources file (or an entry of that file checked after a change)."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from finpulse.errors import InvalidRecord
from finpulse.schema import NewsItem, utcnow
from finpulse.settings import IngestSettings
from ingest.abc import PollOutcome
from ingest.api import JsonApiSource
from ingest.companies import CompanyNames
from ingest.errors import FeedError, SourcesFileError
from ingest.fetch import HttpFetcher
from ingest.normalize import normalize_entries
from ingest.rss import ParsedFeed, parse_feed
from ingest.sources import ApiSource, FeedSource, ReplaySource, load_sources
from ingest.state import SourceState
from ingest.urls import check_url

# A saved file with one of these is more likely stories to replay than a feed.
REPLAY_SUFFIXES = (".jsonl", ".csv", ".json")
# The FeedError kind of a body that is a JSON API's response.
JSON_API = "json_api"


@dataclass(frozen=True)
class Preview:
    """One poll of a source: the items as the stream would get them, and what went wrong."""

    source: str
    entries: int
    items: tuple[NewsItem, ...]  # newest first
    invalid: tuple[InvalidRecord, ...]
    warnings: tuple[str, ...]

    def languages(self) -> Counter[str]:
        return Counter(item.language or "unknown" for item in self.items)


async def preview(settings: IngestSettings, source: FeedSource | ApiSource) -> Preview:
    """Poll `source` once, as the ingestor would (same fetch limits, parser and normalisation).

    Raises FetchError, FeedError or UnsafeUrl when the poll itself fails."""
    fetcher = HttpFetcher(settings)
    await fetcher.start()
    try:
        if isinstance(source, ApiSource):
            found: PollOutcome | ParsedFeed = await JsonApiSource(source).poll(
                SourceState(source=source.name), fetcher
            )
        else:  # fetched here, not by RssSource: a body that is no feed is looked at (an API's?)
            got = await fetcher.fetch(source.url)
            found = await asyncio.to_thread(_feed, got.body, source, got.content_type, got.url)
    finally:
        await fetcher.stop()
    return _normalised(settings, source.name, found)


def preview_file(settings: IngestSettings, path: Path) -> Preview:
    """A feed document saved to a file, parsed and normalised as a poll of it would be (no fetch:
    a feed to check before it is served, or one saved from a site). Raises FeedError."""
    try:
        parsed = _feed(path.read_bytes(), FeedSource(name=_named(path.name), url=path.resolve().as_uri()))
    except FeedError as exc:
        if exc.kind == JSON_API or path.suffix.lower() not in REPLAY_SUFFIXES:
            raise
        raise FeedError(
            exc.kind, f"{exc}; a file of stories to publish is a replay: `finpulse ingest replay {path}`"
        ) from exc
    return _normalised(settings, path.name, parsed)


def _feed(body: bytes, source: FeedSource, content_type: str = "", url: str = "") -> ParsedFeed:
    """`parse_feed`, saying so where the body is a JSON API's response, which `try` reads only as
    an entry of the sources file (its items path and field map are there)."""
    try:
        return parse_feed(body, source, content_type, url)
    except FeedError as exc:
        if not _json_api_response(body):
            raise
        raise FeedError(
            JSON_API,
            f"source={source.name}: a JSON API response, not a feed: add an [[apis]] entry for it to the "
            "sources file and run `finpulse ingest try --source NAME`",
        ) from exc


def _json_api_response(body: bytes) -> bool:
    """One JSON document with objects in it (an API's items), not a replay's JSON lines (a flat
    story object per line: text, numbers and lists of them) nor any other text."""
    try:
        data = json.loads(body)
    except ValueError:  # two or more JSON lines, or no JSON
        return False
    if not isinstance(data, dict):
        return isinstance(data, list)
    values = (v for value in data.values() for v in (value if isinstance(value, list) else [value]))
    return any(isinstance(v, dict | list) for v in values)


def _named(text: str) -> str:
    """A source name (letters, digits, `._-`) for a file or host tried: errors and items name it."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:100] or "try"


def local_file(url: str) -> Path | None:
    """The file a `try` argument names (a path or a file:// URL), or None for a URL to fetch."""
    parts = urlsplit(url)
    path = Path(unquote(parts.path)) if parts.scheme == "file" else Path(url) if not parts.scheme else None
    return path if path is not None and path.is_file() else None


def _normalised(settings: IngestSettings, name: str, found: PollOutcome | ParsedFeed) -> Preview:
    items, invalid = normalize_entries(found.entries, utcnow(), CompanyNames.load(settings.companies_file))
    newest = sorted((item for item, _ in items), key=lambda i: i.published_at, reverse=True)
    return Preview(
        source=name,
        entries=len(found.entries) + len(found.rejected),
        items=tuple(newest),
        invalid=tuple(r.error for r in found.rejected) + tuple(exc for _, exc, _ in invalid),
        warnings=found.warnings,
    )


def pick_source(
    url: str | None, name: str | None, sources_file: Path, *, allow_private: bool
) -> FeedSource | ApiSource:
    """A feed at `url`, or the feed or API called `name` in the sources file.

    Raises UnsafeUrl, or SourcesFileError naming the feeds and APIs there are."""
    if url is not None:
        check_url(url, allow_private=allow_private)
        return FeedSource(name=_named(urlsplit(url).netloc), url=url)
    found = {
        s.name: s for s in load_sources(sources_file, allow_private=allow_private).all(include_disabled=True)
    }
    picked = found.get(str(name))
    if isinstance(picked, ReplaySource):
        raise SourcesFileError(
            f"{name!r} is a replay of {picked.path}, which `ingest try` does not poll: "
            "`finpulse ingest check` checks it, `finpulse ingest replay FILE` publishes a file"
        )
    if not isinstance(picked, FeedSource | ApiSource):
        there = ", ".join(n for n, s in found.items() if isinstance(s, FeedSource | ApiSource)) or "none"
        raise SourcesFileError(f"no feed or API named {name!r} in the sources file; there are: {there}")
    return picked
