"""The interface every pollable source implements, and what one poll returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from ingest.fetch import HttpFetcher
from ingest.normalize import RawEntry
from ingest.state import SourceState


@dataclass(frozen=True)
class PollOutcome:
    """Entries found by one poll plus the state the source wants kept once they are published.

    `warnings` are metric labels for problems that did not stop the poll
    (e.g. "malformed" for a feed that parsed only partly).
    """

    entries: tuple[RawEntry, ...] = ()
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None
    cursor: str | None = None
    warnings: tuple[str, ...] = field(default=())


class Poller(ABC):
    """A source that can be polled: RSS/Atom feeds and JSON APIs."""

    name: str

    @abstractmethod
    async def poll(self, state: SourceState, fetcher: HttpFetcher) -> PollOutcome:
        """Fetch and parse once; raise FetchError / FeedError / UnsafeUrl on failure."""
