"""Replay files: publish a JSONL or CSV news file to `news.raw` in timestamp order.

Each row / object has: title, summary, url, source, published_at (ISO-8601;
no offset means UTC) and optionally tickers (list, or a string split on , ;
or spaces), tags, language, story_id (else derived from source + url/title,
so it is stable), duplicate_of. Rows go through the same normalisation as
feed items (HTML stripped, URL canonical); `published_at` is kept as given.
A row that fails validation is dead-lettered with its line number.

At `speed` S > 0 the gaps between items are replayed S times faster than they
happened (1 = real time); `speed=0` publishes as fast as the broker takes it.

    from ingest.replay import publish_replay
    report = publish_replay(kafka_settings, Path("news.jsonl"), speed=0)   # blocking
    report = await publish_replay_async(kafka_settings, path, speed=10)    # in a loop
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import logging
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from finpulse.errors import InvalidRecord
from finpulse.schema import NewsItem, publishable, utcnow
from finpulse.settings import KafkaSettings
from ingest.companies import CompanyNames
from ingest.dedup import Deduplicator
from ingest.normalize import RawEntry, normalize_entry, to_utc
from ingest.producer import NewsProducer

logger = logging.getLogger(__name__)

# Acks are awaited (and the checkpoint called) at least this often.
_CHUNK_ITEMS = 200
_CHUNK_S = 1.0


@dataclass(frozen=True)
class ReplayRow:
    """A valid row of a replay file, or the reason it is not."""

    line: int
    raw: bytes
    item: NewsItem | None = None
    error: InvalidRecord | None = None


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did."""

    path: str
    rows: int
    published: int
    invalid: int
    duplicates: int
    skipped: int
    first_published_at: datetime | None
    last_published_at: datetime | None
    elapsed_s: float
    # Stories published per language guessed ("unknown": too short to tell), as live polls count them.
    languages: dict[str, int] = field(default_factory=dict)


def _split(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    if isinstance(value, str):
        return tuple(v for v in re.split(r"[,;\s]+", value) if v)
    return ()


def row_to_item(row: dict[str, object], fetched_at: datetime, names: CompanyNames | None = None) -> NewsItem:
    """Normalise one replay row; raises InvalidRecord with the reason."""
    published = to_utc(str(row.get("published_at") or ""))
    if published is None:
        raise InvalidRecord("NewsItem", "published_at missing or not ISO-8601")
    try:  # before normalisation, which would take it for no date (the row's own time is kept)
        publishable(published)
    except ValueError as exc:
        raise InvalidRecord("NewsItem", f"published_at: {exc}") from None
    source = str(row.get("source") or "").strip()
    if not source:
        raise InvalidRecord("NewsItem", "source missing")
    raw = RawEntry(
        source=source,
        title=str(row.get("title") or ""),
        summary=str(row.get("summary") or ""),
        link=str(row.get("url") or "") or None,
        published=published,
        language=str(row.get("language") or "") or None,
        tags=_split(row.get("tags")),
        tickers=_split(row.get("tickers")),
        story_id=str(row.get("story_id") or "").strip() or None,
    )
    item = normalize_entry(raw, fetched_at=max(fetched_at, published), names=names)
    update: dict[str, object] = {"published_at": published, "published_estimated": False}
    if row.get("duplicate_of"):
        update["duplicate_of"] = str(row["duplicate_of"])
    return item.model_copy(update=update)


def _records(path: Path) -> list[tuple[int, bytes, dict[str, object] | None]]:
    data = path.read_bytes()
    if path.suffix.lower() == ".csv":
        text = data.decode("utf-8-sig", errors="replace")
        reader = csv.DictReader(io.StringIO(text, newline=""))
        return [(i + 2, json.dumps(r).encode(), dict(r)) for i, r in enumerate(reader)]
    out: list[tuple[int, bytes, dict[str, object] | None]] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        out.append((number, line, obj if isinstance(obj, dict) else None))
    return out


def read_replay(
    path: Path, fetched_at: datetime | None = None, names: CompanyNames | None = None
) -> list[ReplayRow]:
    """Every row of a replay file, valid ones sorted by published_at (stable), then invalid ones;
    `names`: as live ingestion finds tickers by company name."""
    fetched_at = fetched_at or utcnow()
    rows: list[ReplayRow] = []
    for line, raw, record in _records(path):
        if record is None:
            rows.append(
                ReplayRow(line, raw, error=InvalidRecord("NewsItem", f"line {line}: not a JSON object"))
            )
            continue
        try:
            rows.append(ReplayRow(line, raw, item=row_to_item(record, fetched_at, names)))
        except InvalidRecord as exc:
            rows.append(ReplayRow(line, raw, error=InvalidRecord("NewsItem", f"line {line}: {exc.reason}")))
    valid = sorted((r for r in rows if r.item is not None), key=lambda r: r.item.published_at)  # type: ignore[union-attr]
    return valid + [r for r in rows if r.item is None]


def file_digest(path: Path) -> str:
    """SHA-256 of the file: a replay resumes only over the same content."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def _pace(start: float, offset_s: float, speed: float) -> None:
    if speed > 0:
        delay = start + offset_s / speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def publish_replay_async(
    kafka: KafkaSettings,
    path: Path,
    speed: float = 0.0,
    *,
    rebase_to_now: bool = False,
    dedup: bool = False,
    start_at: int = 0,
    producer: NewsProducer | None = None,
    checkpoint: Callable[[int], Awaitable[None]] | None = None,
    progress: Progress | None = None,
    names: CompanyNames | None = None,
) -> ReplayReport:
    """Publish `path` to kafka.topics.raw in timestamp order at `speed`; returns when all are acked.

    Args:
        rebase_to_now: shift every published_at by one offset so the first item is "now".
        dedup: mark near-duplicate rows (other sources) with duplicate_of, as live ingestion does.
        start_at: skip the first N valid rows (resume after a restart).
        checkpoint: awaited with the number of valid rows done after each acknowledged chunk.
        progress: called as checkpoint is, with (rows done, valid rows, the last one's published_at).
        names: company names that stand for tickers, as in live ingestion.
    """
    began = time.monotonic()
    rows = await asyncio.to_thread(read_replay, path, None, names)
    valid = [r.item for r in rows if r.item is not None]
    invalid = [r for r in rows if r.error is not None]
    owned = producer is None
    producer = producer or NewsProducer(kafka)
    await producer.start()
    try:
        for row in invalid if start_at == 0 else []:
            assert row.error is not None
            await producer.dead_letter(row.error, row.raw)
        published, duplicates = await _send_rows(
            producer,
            valid,
            speed,
            rebase_to_now,
            dedup,
            start_at,
            _done_callback(valid, checkpoint, progress),
        )
    finally:
        if owned:
            await producer.stop()
    report = ReplayReport(
        path=str(path),
        rows=len(rows),
        published=published,
        invalid=len(invalid),
        duplicates=duplicates,
        skipped=min(start_at, len(valid)),
        first_published_at=valid[0].published_at if valid else None,
        last_published_at=valid[-1].published_at if valid else None,
        elapsed_s=time.monotonic() - began,
        languages=dict(Counter(item.language or "unknown" for item in valid[start_at:]).most_common()),
    )
    logger.info(
        "replay done path=%s published=%d invalid=%d duplicates=%d", path, published, len(invalid), duplicates
    )
    return report


# (rows done, rows in all, published_at of the last one done)
Progress = Callable[[int, int, datetime], None]


def _done_callback(
    items: list[NewsItem], checkpoint: Callable[[int], Awaitable[None]] | None, progress: Progress | None
) -> Callable[[int], Awaitable[None]] | None:
    """One callback for the rows done: the resume checkpoint, then the progress report."""
    if progress is None:
        return checkpoint

    async def done(n: int) -> None:
        if checkpoint is not None:
            await checkpoint(n)
        if n:
            progress(n, len(items), items[n - 1].published_at)

    return done


async def _send_rows(
    producer: NewsProducer,
    items: list[NewsItem],
    speed: float,
    rebase_to_now: bool,
    dedup: bool,
    start_at: int,
    checkpoint: Callable[[int], Awaitable[None]] | None,
) -> tuple[int, int]:
    if not items:
        return 0, 0
    first = items[0].published_at
    shift = utcnow() - first if rebase_to_now else timedelta(0)
    deduplicator = Deduplicator(horizon=timedelta(days=3650)) if dedup else None
    start = time.monotonic()
    chunk: list[NewsItem] = []
    chunk_started = time.monotonic()
    published = duplicates = 0
    for index, item in enumerate(items):
        if deduplicator is not None:
            root = item.duplicate_of or deduplicator.observe(item)
            if root and not item.duplicate_of:
                item = item.model_copy(update={"duplicate_of": root})
        if index < start_at:
            continue
        duplicates += item.duplicate_of is not None
        await _pace(start, (item.published_at - items[start_at].published_at).total_seconds(), speed)
        if shift:
            item = item.model_copy(update={"published_at": item.published_at + shift})
        chunk.append(item)
        if speed > 0 or len(chunk) >= _CHUNK_ITEMS or time.monotonic() - chunk_started >= _CHUNK_S:
            published += await producer.publish(chunk)
            chunk, chunk_started = [], time.monotonic()
            if checkpoint is not None:
                await checkpoint(index + 1)
    if chunk:
        published += await producer.publish(chunk)
    if checkpoint is not None:
        await checkpoint(len(items))
    return published, duplicates


def publish_replay(
    kafka: KafkaSettings, path: Path, speed: float = 0.0, *, rebase_to_now: bool = False, dedup: bool = False
) -> ReplayReport:
    """Blocking form of `publish_replay_async` (for scripts and the demo; not inside an event loop)."""
    return asyncio.run(publish_replay_async(kafka, path, speed, rebase_to_now=rebase_to_now, dedup=dedup))
