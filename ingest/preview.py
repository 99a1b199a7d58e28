"""`finpulse ingest try`: fetch one source once and show what finpulse makes of it, publishing
nothing and keeping no state, so a feed or news API can be checked before it goes into the
sources file (or an entry of that file checked after a change)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from finpulse.errors import InvalidRecord
from finpulse.schema import NewsItem, utcnow
from finpulse.settings import IngestSettings
from ingest.companies import CompanyNames
from ingest.errors import SourcesFileError
from ingest.fetch import HttpFetcher
from ingest.ingestor import poller_for
from ingest.normalize import normalize_entries
from ingest.sources import ApiSource, FeedSource, load_sources
from ingest.state import SourceState
from ingest.urls import check_url


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
        outcome = await poller_for(source).poll(SourceState(source=source.name), fetcher)
    finally:
        await fetcher.stop()
    items, invalid = normalize_entries(outcome.entries, utcnow(), CompanyNames.load(settings.companies_file))
    newest = sorted((item for item, _ in items), key=lambda i: i.published_at, reverse=True)
    return Preview(
        source=source.name,
        entries=len(outcome.entries),
        items=tuple(newest),
        invalid=tuple(exc for _, exc, _ in invalid),
        warnings=outcome.warnings,
    )


def pick_source(
    url: str | None, name: str | None, sources_file: Path, *, allow_private: bool
) -> FeedSource | ApiSource:
    """A feed at `url`, or the feed or API called `name` in the sources file.

    Raises UnsafeUrl, or SourcesFileError naming the feeds and APIs there are."""
    if url is not None:
        check_url(url, allow_private=allow_private)
        return FeedSource(name="try", url=url)
    found = {
        s.name: s for s in load_sources(sources_file, allow_private=allow_private).all(include_disabled=True)
    }
    picked = found.get(str(name))
    if not isinstance(picked, FeedSource | ApiSource):
        there = ", ".join(n for n, s in found.items() if isinstance(s, FeedSource | ApiSource)) or "none"
        raise SourcesFileError(f"no feed or API named {name!r} in the sources file; there are: {there}")
    return picked
