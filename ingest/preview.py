"""`finpulse ingest try`: fetch one source once and show what finpulse makes of it, publishing
nothing and keeping no state, so a feed or news API can be checked before it goes into the
sources file (or an entry of that file checked after a change)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from finpulse.errors import InvalidRecord
from finpulse.schema import NewsItem, utcnow
from finpulse.settings import IngestSettings
from ingest.fetch import HttpFetcher
from ingest.ingestor import Ingestor, poller_for
from ingest.sources import ApiSource, FeedSource
from ingest.state import SourceState


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
    items, invalid = Ingestor.normalise(outcome.entries, utcnow())
    newest = sorted((item for item, _ in items), key=lambda i: i.published_at, reverse=True)
    return Preview(
        source=source.name,
        entries=len(outcome.entries),
        items=tuple(newest),
        invalid=tuple(exc for _, exc, _ in invalid),
        warnings=outcome.warnings,
    )
