"""Exact and near-duplicate detection across sources within a time horizon.

Exact: two items with the same canonical URL, or the same GUID from the same
source, are one story. A GUID is unique only within its publisher (APIs number
their items 1, 2, 3...), and a site's front page (path "" or "/", no query) is
no story's address: feeds that link every entry to their home page would
otherwise collapse into one story.
Near: syndicated copies (the same wire story on several sites, lightly
edited) are found with MinHash LSH (datasketch) over character 5-shingles of
the normalised title and the start of the summary; a candidate counts when
its estimated Jaccard similarity reaches the threshold, it comes from another
source, was published within the horizon and is not about other companies
(both ticker sets non-empty and disjoint: templated stories such as "X (TICK)
Q2 Earnings and Revenues Surpass Estimates" share most of their words). A
duplicate points at the first story's id (`duplicate_of`), so aggregates count
the story once.

The index is in memory, pruned to the horizon, and saved with the source
state so a restart keeps the same answers.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from datasketch import MinHash, MinHashLSH

from finpulse.schema import NewsItem
from ingest.state import read_json, write_json_atomic

logger = logging.getLogger(__name__)

NUM_PERM = 128  # ~0.044 standard error on the Jaccard estimate, 512 bytes per item
# datasketch 2.x default; saved sketches are only comparable within one scheme.
SCHEME = "affine32"
SHINGLE = 5  # character shingles: robust to small edits in short headlines
TEXT_CHARS = 400  # title + start of summary; sites truncate syndicated summaries differently
_NON_WORD = re.compile(r"[\W_]+")


def fingerprint_text(item: NewsItem) -> str:
    """The normalised text that near-duplicate detection compares."""
    return _NON_WORD.sub(" ", f"{item.title} {item.summary}".lower()).strip()[:TEXT_CHARS]


def story_time(item: NewsItem) -> datetime:
    """When the story appeared: its published time, or when it was fetched if that was a guess."""
    return item.fetched_at if item.published_estimated else item.published_at


def minhash(text: str) -> MinHash:
    """MinHash of the text's character shingles."""
    mh = MinHash(num_perm=NUM_PERM, scheme=SCHEME)
    shingles = {text[i : i + SHINGLE] for i in range(max(1, len(text) - SHINGLE + 1))}
    mh.update_batch([s.encode("utf-8") for s in shingles])
    return mh


def _sketch(hashvalues: np.ndarray) -> MinHash:
    return MinHash(num_perm=NUM_PERM, scheme=SCHEME, hashvalues=hashvalues)


@dataclass
class _Entry:
    story_id: str
    root: str  # the first story's id (itself when original)
    source: str
    published_at: datetime  # story_time(): what the horizon compares
    keys: tuple[str, ...]
    hashvalues: np.ndarray
    indexed_at: datetime  # fetch time: what pruning compares
    tickers: frozenset[str] = frozenset()


def _front_page(url: str) -> bool:
    """A site's home page ("https://x.com/"): a feed may link every entry to it."""
    parts = urlsplit(url)
    return parts.path in ("", "/") and not parts.query


class Deduplicator:
    """Answers "is this item a copy of one seen before?" and remembers the answer."""

    def __init__(self, horizon: timedelta, threshold: float = 0.6) -> None:
        self.horizon = horizon
        self.threshold = threshold
        self._entries: dict[str, _Entry] = {}
        self._exact: dict[str, str] = {}
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def exact_keys(item: NewsItem, guid: str | None = None) -> tuple[str, ...]:
        """The keys that make two items one story: the article URL (any source) and the GUID
        within its source. GUID keys saved by version 2 of the index ("guid:<guid>") match none."""
        keys = (f"url:{item.url}",) if item.url and not _front_page(item.url) else ()
        guid = guid.strip() if guid else None
        return keys + ((f"guid:{item.source}:{guid}",) if guid else ())

    def observe(self, item: NewsItem, guid: str | None = None) -> str | None:
        """The id of the story `item` duplicates (None if original); indexes `item`."""
        known = self._entries.get(item.story_id)
        if known is not None:
            return None if known.root == item.story_id else known.root
        keys = self.exact_keys(item, guid)
        mh = minhash(fingerprint_text(item))
        root = self._exact_match(keys, item) or self._near_match(mh, item)
        entry = _Entry(
            item.story_id,
            root or item.story_id,
            item.source,
            story_time(item),
            keys,
            mh.hashvalues,
            item.fetched_at,
            frozenset(item.tickers),
        )
        self._add(entry)
        return root

    def _exact_match(self, keys: tuple[str, ...], item: NewsItem) -> str | None:
        for key in keys:
            other = self._entries.get(self._exact.get(key, ""))
            if other is not None and abs(other.published_at - story_time(item)) <= self.horizon:
                return other.root
        return None

    def _near_match(self, mh: MinHash, item: NewsItem) -> str | None:
        best: _Entry | None = None
        tickers = frozenset(item.tickers)
        for candidate_id in self._lsh.query(mh):
            other = self._entries[candidate_id]
            if other.source == item.source or abs(other.published_at - story_time(item)) > self.horizon:
                continue
            if tickers and other.tickers and tickers.isdisjoint(other.tickers):
                continue  # about other companies: a templated story, not a copy
            if mh.jaccard(_sketch(other.hashvalues)) < self.threshold:
                continue
            if best is None or other.published_at < best.published_at:
                best = other
        return best.root if best else None

    def _add(self, entry: _Entry) -> None:
        self._entries[entry.story_id] = entry
        for key in entry.keys:
            self._exact.setdefault(key, entry.story_id)
        self._lsh.insert(entry.story_id, _sketch(entry.hashvalues))

    def prune(self, now: datetime) -> int:
        """Forget items indexed (fetched) before `now - horizon`; returns how many."""
        old = [e for e in self._entries.values() if now - e.indexed_at > self.horizon]
        for entry in old:
            del self._entries[entry.story_id]
            self._lsh.remove(entry.story_id)
            for key in entry.keys:
                if self._exact.get(key) == entry.story_id:
                    del self._exact[key]
        return len(old)

    def save(self, path: Path) -> None:
        """Write the index to `path` (atomic)."""
        self.saver()(path)

    def saver(self) -> Callable[[Path], None]:
        """A writer of the index as it is now, to run in a thread: the other sources' polls add
        to the index meanwhile (iterating it there failed with "dictionary changed size")."""
        entries = list(self._entries.values())

        def write(path: Path) -> None:
            rows = [
                [e.story_id, e.root, e.source, e.published_at.isoformat(), list(e.keys),
                 base64.b64encode(e.hashvalues.astype("<u4").tobytes()).decode("ascii"),
                 e.indexed_at.isoformat(), sorted(e.tickers)]
                for e in entries
            ]  # fmt: skip
            write_json_atomic(path, {"version": 3, "num_perm": NUM_PERM, "scheme": SCHEME, "entries": rows})

        return write

    def load(self, path: Path) -> None:
        """Restore the index saved by `save`; a missing or foreign file leaves it empty.

        Version 2 (before tickers and per-source GUID keys) still loads: its entries have no
        tickers and its GUID keys ("guid:<guid>") match no new key."""
        data = read_json(path)
        if (
            not data
            or data.get("version") not in (2, 3)
            or data.get("num_perm") != NUM_PERM
            or data.get("scheme") != SCHEME
        ):
            return
        when = datetime.fromisoformat
        for story_id, root, source, published, keys, hashes, indexed, *rest in data["entries"]:
            values = np.frombuffer(base64.b64decode(hashes), dtype="<u4").astype(np.uint32)
            tickers = frozenset(rest[0]) if rest else frozenset()
            entry = _Entry(
                story_id, root, source, when(published), tuple(keys), values, when(indexed), tickers
            )
            self._add(entry)
        logger.info("dedup index loaded items=%d path=%s", len(self._entries), path)
