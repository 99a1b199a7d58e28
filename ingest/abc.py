"""The interface every pollable source implements, and what one poll returns."""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from finpulse.errors import InvalidRecord
from finpulse.schema import story_id_for
from ingest.fetch import HttpFetcher
from ingest.normalize import RawEntry
from ingest.state import SourceState


@dataclass(frozen=True)
class Rejected:
    """An entry the source's parser could not read (an API item that is no object, a feed entry
    that broke the reader): dead-lettered with why, never dropped."""

    source: str
    error: InvalidRecord
    value: bytes  # the entry as the parser handed it over, as JSON

    @classmethod
    def of(cls, source: str, entry: Any, why: str) -> Rejected:
        value = json.dumps(entry, default=str).encode()  # ASCII: a lone surrogate stays escaped
        return cls(source, InvalidRecord("entry", f"source={source}: {why}"), value)

    @property
    def id(self) -> str:
        """Remembered with the source's seen ids, so a re-poll does not dead-letter it again."""
        return story_id_for(self.source, "rejected", hashlib.sha256(self.value).hexdigest())


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
    rejected: tuple[Rejected, ...] = ()


class Poller(ABC):
    """A source that can be polled: RSS/Atom feeds and JSON APIs."""

    name: str

    @abstractmethod
    async def poll(self, state: SourceState, fetcher: HttpFetcher) -> PollOutcome:
        """Fetch and parse once; raise FetchError / FeedError / UnsafeUrl on failure."""
