"""Each news source's health, from the statuses its ingestor publishes (`finpulse status`, the API).

After every poll the ingestor publishes the source's status (ingest/ingestor.py) on
the compacted `kafka.topics.sources`, keyed by the source's name; at start it
publishes every source of its sources file, disabled ones too, and removes those
dropped from the file. So any host that reaches Kafka sees every ingestor's
sources. A source is `ok`, `failing` (its last poll failed: how many times in a
row, the last error), `late` (its next poll, as its ingestor planned it, is over
two of its intervals overdue: the ingestor is probably not running; a failing
source is late too then, its planned poll pushed back by the backoff),
`invalid` (its last poll read entries and every one was dead-lettered: a field
map that misses), `quiet` (polled fine, but no new item for QUIET_AFTER, or
none ever), `waiting` (never polled yet) or `disabled`. Replay files are polled
once, so they are never late or quiet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from finpulse.errors import InvalidRecord
from finpulse.schema import SourceStatus
from finpulse.settings import KafkaSettings
from finpulse.topics import iter_records
from finpulse.wording import counted

logger = logging.getLogger(__name__)

# A poll overdue by this many of the source's intervals: late (an ok source: no poll for three).
OVERDUE_INTERVALS = 2
# No new item for this long from a source that polls fine: quiet (a weekend is not).
QUIET_AFTER = timedelta(days=3)
Health = Literal["ok", "failing", "late", "invalid", "quiet", "waiting", "disabled"]


@dataclass(frozen=True)
class SourceHealth:
    status: SourceStatus
    health: Health

    def detail(self) -> str:
        """What to look at: the last error of a failing source, what a late one lacks."""
        st = self.status
        failed = f"{counted(st.consecutive_errors, 'failed poll')} in a row"
        if self.health == "failing":
            return f"{failed}: {st.last_error}"
        if self.health == "late":
            where = f" on {st.host}" if st.host else ""
            wait = f"{OVERDUE_INTERVALS} x {st.interval_s:g} s"
            late = f"its poll is over {wait} overdue: is `finpulse ingest`{where} running?"
            return (
                f"{late} Its last poll failed ({failed}): {st.last_error}" if st.consecutive_errors else late
            )
        if self.health == "invalid":
            return (
                f"all {st.last_entries} entries of its last poll were dead-lettered: check its field map "
                "(`finpulse dead-letters --stage ingest` says why, `finpulse ingest try` shows the items)"
            )
        if self.health == "quiet":
            if st.last_new_at is None:
                return (
                    "no item published yet: its polls find none (`finpulse ingest try` shows what it lists)"
                )
            return f"no new item since {st.last_new_at:%Y-%m-%d %H:%M} UTC: is the feed still updated?"
        return ""


def due(status: SourceStatus) -> datetime | None:
    """When the source's ingestor plans to poll it next (after a failure, its backoff; after a
    success the status leaves it out: an interval on); None before its first poll, and for a
    replay file (read once)."""
    if status.last_poll_at is None or status.source_kind == "replay":
        return None
    return status.next_poll_at or status.last_poll_at + timedelta(seconds=status.interval_s)


def judge(status: SourceStatus, now: datetime) -> Health:
    """One source's health from its latest status."""
    if not status.enabled:
        return "disabled"
    if status.last_poll_at is None:
        return "waiting"
    planned = due(status)
    if planned is not None and now - planned > timedelta(seconds=OVERDUE_INTERVALS * status.interval_s):
        return "late"
    if status.consecutive_errors:
        return "failing"
    if status.last_entries and status.last_invalid == status.last_entries:
        return "invalid"
    if status.source_kind != "replay" and status.last_success_at is not None:
        never = status.last_new_at is None and status.items_published == 0
        if never or (status.last_new_at is not None and now - status.last_new_at > QUIET_AFTER):
            return "quiet"
    return "ok"


async def read_statuses(kafka: KafkaSettings) -> list[SourceStatus]:
    """The latest status of every source on the topic, by name; a source removed (a tombstone)
    is left out, an unreadable record logged and skipped."""
    latest: dict[bytes, SourceStatus | None] = {}
    async for _, record in iter_records(kafka, [kafka.topics.sources]):
        if record.key is None:
            continue
        try:
            latest[record.key] = SourceStatus.from_bytes(record.value) if record.value is not None else None
        except InvalidRecord as exc:
            logger.warning(
                "unreadable source status topic=%s offset=%d: %s", kafka.topics.sources, record.offset, exc
            )
    return sorted((s for s in latest.values() if s is not None), key=lambda s: s.source)


async def source_health(kafka: KafkaSettings, now: datetime) -> list[SourceHealth]:
    """Every published source's health, by name; raises BrokerUnavailable."""
    return [SourceHealth(status, judge(status, now)) for status in await read_statuses(kafka)]


async def forget_sources(kafka: KafkaSettings, names: list[str]) -> set[str]:
    """Remove those of `names` that are on the sources topic (a tombstone each); returns them."""
    from ingest.producer import NewsProducer

    known = {status.source for status in await read_statuses(kafka)} & set(names)
    if known:  # nothing to remove: no producer to open
        async with NewsProducer(kafka) as producer:
            for name in sorted(known):
                await producer.forget_source(name)
    return known
