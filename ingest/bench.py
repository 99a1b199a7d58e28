"""`finpulse ingest bench`: feeds parsed per second and items normalised per second, one core.

Reads every feed document under `ingest.feeds_dir` into memory first, pins
the process to one CPU (where the OS allows), then times, in one thread:
feedparser over every document (as `parse_feed` runs it), `normalize_entry`
over every entry found, with the language guess and then without it (what
the guess costs, measured side by side), and the dedup index over the
normalised items.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from finpulse.errors import ConfigError, InvalidRecord
from finpulse.schema import NewsItem, utcnow
from ingest.companies import CompanyNames
from ingest.dedup import Deduplicator
from ingest.errors import FeedError
from ingest.normalize import RawEntry, normalize_entry
from ingest.rss import parse_feed
from ingest.sources import FeedSource

_FEED_SUFFIXES = (".xml", ".rss", ".atom", ".rdf", ".cdf")


@dataclass(frozen=True)
class BenchResult:
    """Throughput figures of one bench run."""

    documents: int
    megabytes: float
    entries: int
    items: int
    parse_s: float
    normalise_s: float
    bare_normalise_s: float  # the same pass guessing no language from the text
    dedup_s: float
    rounds: int

    @property
    def feeds_per_s(self) -> float:
        return self.documents * self.rounds / self.parse_s

    @property
    def mb_per_s(self) -> float:
        return self.megabytes * self.rounds / self.parse_s

    @property
    def items_per_s(self) -> float:
        return self.entries * self.rounds / self.normalise_s

    @property
    def bare_items_per_s(self) -> float:
        return self.entries * self.rounds / self.bare_normalise_s

    @property
    def dedup_items_per_s(self) -> float:
        return self.items * self.rounds / self.dedup_s


def feed_documents(feeds_dir: Path) -> list[bytes]:
    """Every feed document under `feeds_dir` (by suffix), sorted by path."""
    paths = sorted(p for p in feeds_dir.rglob("*") if p.is_file() and p.suffix.lower() in _FEED_SUFFIXES)
    return [p.read_bytes() for p in paths]


def pin_one_core() -> int | None:
    """Restrict this process to one CPU; returns it, or None where unsupported."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def run_bench(feeds_dir: Path, rounds: int = 3, names: CompanyNames | None = None) -> BenchResult:
    """Time parse, normalise (with `names`, as the ingestor does) and dedup over the feed documents
    `rounds` times."""
    documents = feed_documents(feeds_dir)
    if not documents:
        raise ConfigError(
            f"no feed documents under {feeds_dir}; set FINPULSE_INGEST_FEEDS_DIR (or --feeds-dir)"
        )
    source = FeedSource(name="bench", url="https://example.com/feed")
    # Partly malformed sample feeds would log once per round; the bench is about speed.
    logging.getLogger("ingest.rss").setLevel(logging.ERROR)
    entries: list[RawEntry] = []
    started = time.perf_counter()
    for round_ in range(rounds):
        for body in documents:
            try:
                parsed = parse_feed(body, source)
            except FeedError:
                continue
            if round_ == 0:
                entries.extend(parsed.entries)
    parse_s = time.perf_counter() - started
    now = utcnow()
    items, normalise_s = _normalise(entries, rounds, now, names, guess_language=True)
    _, bare_normalise_s = _normalise(entries, rounds, now, names, guess_language=False)
    started = time.perf_counter()
    for _ in range(rounds):
        dedup = Deduplicator(timedelta(days=36500))
        for item in items:
            dedup.observe(item)
    dedup_s = time.perf_counter() - started
    return BenchResult(
        documents=len(documents),
        megabytes=sum(len(d) for d in documents) / 1e6,
        entries=len(entries),
        items=len(items),
        parse_s=parse_s,
        normalise_s=normalise_s,
        bare_normalise_s=bare_normalise_s,
        dedup_s=dedup_s,
        rounds=rounds,
    )


def _normalise(
    entries: list[RawEntry], rounds: int, now: datetime, names: CompanyNames | None, *, guess_language: bool
) -> tuple[list[NewsItem], float]:
    """`normalize_entry` over `entries` `rounds` times: the first round's items, and the seconds."""
    items: list[NewsItem] = []
    started = time.perf_counter()
    for round_ in range(rounds):
        for raw in entries:
            try:
                item = normalize_entry(raw, fetched_at=now, names=names, guess_language=guess_language)
            except InvalidRecord:
                continue
            if round_ == 0:
                items.append(item)
    return items, time.perf_counter() - started
