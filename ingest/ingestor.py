"""The ingestor: poll a source, normalise, deduplicate, publish, then remember.

One poll of one source is the loop boundary: whatever goes wrong in it is
logged with the source, counted in `metrics` and turned into a backoff for
that source; the ingestor itself never stops. State (validators, seen ids,
cursor) is saved only after Kafka acknowledged the poll's items, so a crash
re-polls rather than skips, and the seen ids keep a restart from
re-publishing. After each poll the source's status goes to the sources topic,
where `finpulse status` and the API read every ingestor's (ingest/health.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import random
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from finpulse.errors import BrokerUnavailable
from finpulse.exclusive import ExclusiveLock
from finpulse.lifecycle import AsyncResource
from finpulse.redact import redacted
from finpulse.schema import SourceStatus, utcnow
from finpulse.settings import IngestSettings, KafkaSettings
from ingest.abc import Poller, PollOutcome
from ingest.api import JsonApiSource
from ingest.companies import CompanyNames
from ingest.dedup import Deduplicator
from ingest.errors import FeedError, FetchError, UnsafeUrl
from ingest.fetch import HttpFetcher
from ingest.metrics import IngestMetrics
from ingest.normalize import normalize_entries
from ingest.producer import NewsProducer
from ingest.replay import file_digest, publish_replay_async
from ingest.rss import RssSource
from ingest.sources import ApiSource, FeedSource, ReplaySource, Source, SourcesConfig
from ingest.state import SourceState, StateStore

logger = logging.getLogger(__name__)


# Counter prefix: published stories per language (ingest/language.py).
LANGUAGE = "language."
HOST = socket.gethostname()
# The SourceState fields a SourceStatus carries.
STATUS_FIELDS = {
    "last_poll_at", "last_success_at", "next_poll_at", "consecutive_errors", "errors_total", "last_error",
    "items_published", "last_new_at", "last_entries", "last_invalid",
}  # fmt: skip


@dataclass(frozen=True)
class PollReport:
    """The result of one poll of one source."""

    source: str
    status: str  # "ok", "not_modified", "skipped" (backing off), "error"
    published: int = 0
    duplicates: int = 0
    invalid: int = 0
    error: str | None = None


@dataclass(frozen=True)
class SourceChanges:
    """Which sources (names) a new sources file added, removed or changed."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]


def poller_for(source: FeedSource | ApiSource) -> Poller:
    return RssSource(source) if isinstance(source, FeedSource) else JsonApiSource(source)


def _address(source: Source) -> str:
    """What a source fetches, as a digest: its URL and query (a replay: its file)."""
    if isinstance(source, ReplaySource):
        parts: tuple[object, ...] = (str(source.path),)
    else:
        parts = (source.url, sorted(source.params.items()) if isinstance(source, ApiSource) else [])
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def _field_map(source: Source) -> str | None:
    """How an API's response is read (items path, field map, pagination), as a digest; None for
    other sources. Defaults left out: a new ApiFields field must not look like every map changed."""
    if not isinstance(source, ApiSource):
        return None
    read = source.model_dump(
        mode="json", include={"items_path", "fields", "pagination"}, exclude_defaults=True
    )
    return hashlib.sha256(json.dumps(read, sort_keys=True).encode()).hexdigest()[:16]


def at_address(state: SourceState, source: Source) -> SourceState:
    """`state` for `source` as configured now: where its address or an API's field map changed since
    the state was saved (a fixed URL or map, edited live or between runs), the old ETag,
    Last-Modified and cursor go, so a fixed map reads again what the wrong one dead-lettered."""
    address, field_map = _address(source), _field_map(source)
    if (state.address, state.field_map) == (address, field_map):
        return state
    update: dict[str, object] = {"address": address, "field_map": field_map}
    # None: saved before addresses (or field maps) were kept; taken as unchanged, not as an edit.
    if state.address not in (None, address) or state.field_map not in (None, field_map):
        update |= {"etag": None, "last_modified": None, "cursor": None}
    return state.model_copy(update=update)


def failure_backoff_s(interval_s: float, errors: int, cap_s: float) -> float:
    """How long a source waits after `errors` failures in a row: its interval doubled per failure,
    up to `cap_s` (the exponent capped too: 2 ** 1024 is past a float, a dead feed got there)."""
    return min(cap_s, interval_s * 2 ** min(errors - 1, 60))


class Ingestor(AsyncResource):
    """Owns the HTTP client, the producer, the dedup index and every source's state."""

    def __init__(
        self,
        settings: IngestSettings,
        kafka: KafkaSettings,
        sources: SourcesConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.config = sources
        self.sources = {s.name: s for s in sources.all()}
        self.store = StateStore(settings.state_dir)
        self.fetcher = HttpFetcher(settings, transport=transport)
        self.producer = NewsProducer(kafka)
        self.kafka = kafka
        self.dedup = Deduplicator(timedelta(hours=settings.dedup_horizon_h), settings.near_dup_threshold)
        self.names = CompanyNames.load(settings.companies_file)
        self.metrics = IngestMetrics()
        self.states: dict[str, SourceState] = {}
        self._dedup_path = settings.state_dir / "dedup.json"
        # Two ingestors on one state dir would overwrite each other's states and dedup index.
        self._lock = ExclusiveLock(
            settings.state_dir / ".lock",
            f"the ingest state {settings.state_dir} is in use by another ingestor: give each its own "
            "FINPULSE_INGEST_STATE_DIR (and its own sources), or stop the other first",
        )
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        self._lock.acquire()
        try:
            await self._start()
        except BaseException:
            self._lock.release()
            raise

    async def _start(self) -> None:
        self.states = {name: at_address(self.store.load(name), s) for name, s in self.sources.items()}
        await asyncio.to_thread(self.dedup.load, self._dedup_path)
        await self.fetcher.start()
        try:
            await self.producer.start()
        except BaseException:
            await self.fetcher.stop()
            raise
        self._started = True
        await self._announce_sources()

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            await self.producer.stop()
            await self.fetcher.stop()
        finally:
            self._lock.release()

    def interval_s(self, source: Source) -> float:
        return source.interval_s or self.settings.default_interval_s

    async def poll_all(self, *, force: bool = True) -> list[PollReport]:
        """Poll every source once, concurrently (per-host limits still apply)."""
        return list(await asyncio.gather(*(self.poll(name, force=force) for name in self.sources)))

    async def poll(self, name: str, *, force: bool = False) -> PollReport:
        """Poll one source and publish its status; never raises for a source's failure (only for
        cancellation)."""
        if not force and (due := self.states[name].next_poll_at) is not None and utcnow() < due:
            return PollReport(name, "skipped")
        self.metrics.inc(name, "polls")
        source = self.sources[name]
        report = await self._poll(source)
        if self.sources.get(name) is source:  # else a reload removed or changed it meanwhile
            await self._announce(self.status(source, self.states[name]))
        return report

    async def apply(self, config: SourcesConfig, names: CompanyNames) -> SourceChanges:
        """Run from these sources and company names from now on (ingest/live_config.py)."""
        old, new = self.sources, {s.name: s for s in config.all()}
        changes = SourceChanges(
            added=tuple(sorted(new.keys() - old.keys())),
            removed=tuple(sorted(old.keys() - new.keys())),
            changed=tuple(sorted(n for n in new.keys() & old.keys() if new[n] != old[n])),
        )
        self.config, self.sources, self.names = config, new, names
        for name in changes.added:  # a source removed earlier resumes from its saved state
            self.states[name] = at_address(self.store.load(name), new[name])
        for name in changes.changed:  # an edit (a fixed URL, say) is tried now, not after the backoff
            state = at_address(self.states[name], new[name])
            self.states[name] = state.model_copy(update={"next_poll_at": None})
        await self._announce_sources()
        return changes

    async def _poll(self, source: Source) -> PollReport:
        name, state, now = source.name, self.states[source.name], utcnow()
        try:
            if isinstance(source, ReplaySource):
                return await self._replay(source)
            outcome = await poller_for(source).poll(state, self.fetcher)
            for warning in outcome.warnings:
                self.metrics.inc(name, f"warning.{warning}")
            return await self._publish(source, outcome, now)
        except (FetchError, FeedError, UnsafeUrl) as exc:
            return await self._failed(
                source, getattr(exc, "kind", "error"), str(exc), getattr(exc, "retry_after_s", None)
            )
        except BrokerUnavailable as exc:
            return await self._failed(source, "broker", str(exc), None)
        except Exception as exc:  # loop boundary: one source's bug must not stop the others
            logger.exception("poll crashed source=%s", name)
            return await self._failed(source, "internal", f"{type(exc).__name__}: {exc}", None)

    async def _failed(
        self, source: Source, kind: str, message: str, retry_after_s: float | None
    ) -> PollReport:
        message = redacted(message)  # a key in the URL: the state, the sources topic and the log show it
        state = self.states[source.name]
        errors = state.consecutive_errors + 1
        delay = failure_backoff_s(self.interval_s(source), errors, self.settings.backoff_max_s)
        delay = max(delay * random.uniform(0.8, 1.2), retry_after_s or 0.0)
        now = utcnow()
        self.states[source.name] = state.model_copy(
            update={
                "consecutive_errors": errors,
                "errors_total": state.errors_total + 1,
                "last_error": f"{kind}: {message}"[:500],
                "last_poll_at": now,
                "next_poll_at": now + timedelta(seconds=delay),
            }
        )
        await self._save(source.name)
        self.metrics.inc(source.name, f"error.{kind}")
        logger.warning(
            "poll failed source=%s kind=%s retry_in_s=%.0f error=%s", source.name, kind, delay, message
        )
        return PollReport(source.name, "error", error=kind)

    async def _publish(
        self, source: FeedSource | ApiSource, outcome: PollOutcome, now: datetime
    ) -> PollReport:
        name = source.name
        state = self.states[name]
        if outcome.not_modified:
            self.metrics.inc(name, "not_modified")
            await self._succeeded(state, now, ids=None, outcome=outcome, published=0)
            return PollReport(name, "not_modified")
        # Off the loop: a big API response takes seconds (seen entries too: their ids come from it),
        # and other sources' requests would time out meanwhile.
        items, invalid = await asyncio.to_thread(normalize_entries, outcome.entries, now, self.names)
        self.metrics.inc(name, "entries", len(outcome.entries) + len(outcome.rejected))
        fresh = {i.story_id: (i, raw) for i, raw in items if i.story_id not in state.seen}
        self.metrics.inc(name, "already_seen", len(items) - len(fresh))
        marked = []
        for item, raw in fresh.values():
            root = self.dedup.observe(item, guid=raw.guid)
            marked.append(item.model_copy(update={"duplicate_of": root}) if root else item)
        await self.producer.publish(marked)
        new_invalid = [
            (exc, json.dumps(dataclasses.asdict(raw), default=str).encode())
            for i, exc, raw in invalid
            if i not in state.seen
        ] + [(r.error, r.value) for r in outcome.rejected if r.id not in state.seen]
        for exc, value in new_invalid:
            await self.producer.dead_letter(exc, value)
        duplicates = sum(1 for i in marked if i.duplicate_of)
        self.metrics.inc(name, "published", len(marked))
        self.metrics.inc(name, "duplicates", duplicates)
        self.metrics.inc(name, "invalid", len(new_invalid))
        for item in marked:  # a source in a language the model does not read shows at once
            self.metrics.inc(name, f"{LANGUAGE}{item.language or 'unknown'}")
        ids = [i.story_id for i, _ in items] + [i for i, _, _ in invalid] + [r.id for r in outcome.rejected]
        counts = {
            "last_entries": len(outcome.entries) + len(outcome.rejected),
            "last_invalid": len(invalid) + len(outcome.rejected),
        }
        # The index before the state: killed between the two, the restart publishes this poll's
        # stories again and the index, knowing them, gives them the same answers; the other way
        # round they would not come again, and a later copy of one would not be found.
        self.dedup.prune(now)
        await asyncio.to_thread(self.dedup.saver(), self._dedup_path)
        await self._succeeded(state, now, ids=ids, outcome=outcome, published=len(marked), more=counts)
        logger.info(
            "polled source=%s published=%d duplicates=%d invalid=%d",
            name,
            len(marked),
            duplicates,
            len(new_invalid),
        )
        return PollReport(name, "ok", published=len(marked), duplicates=duplicates, invalid=len(new_invalid))

    async def _succeeded(
        self,
        state: SourceState,
        now: datetime,
        *,
        ids: list[str] | None,
        outcome: PollOutcome,
        published: int,
        more: dict[str, object] | None = None,
    ) -> None:
        update: dict[str, object] = {
            "etag": outcome.etag,
            "last_modified": outcome.last_modified,
            **(more or {}),
        }
        if outcome.cursor is not None:
            update["cursor"] = outcome.cursor
        if ids is not None:
            update["seen"] = state.remember(ids, now, timedelta(days=self.settings.seen_ttl_days))
        await self._record_success(state, now, published, update)

    async def _record_success(
        self, state: SourceState, now: datetime, published: int, more: dict[str, object]
    ) -> None:
        """A poll that worked: failures reset, counts added, `more` (validators, seen ids) kept."""
        update = {
            "consecutive_errors": 0,
            "next_poll_at": None,
            "last_poll_at": now,
            "last_success_at": now,
            "items_published": state.items_published + published,
        } | ({"last_new_at": now} if published else {})
        self.states[state.source] = state.model_copy(update=update | more)
        await self._save(state.source)

    async def _save(self, name: str) -> None:
        # In a thread: the state of a big API source (its seen ids) takes a while to write.
        await asyncio.to_thread(self.store.save, self.states[name])

    async def _replay(self, source: ReplaySource) -> PollReport:
        state = self.states[source.name]
        digest = await asyncio.to_thread(file_digest, source.path)
        start_at = state.replay_done if state.replay_digest == digest else 0

        async def checkpoint(done: int) -> None:
            current = self.states[source.name]
            self.states[source.name] = current.model_copy(
                update={"replay_digest": digest, "replay_done": done}
            )
            await self._save(source.name)

        report = await publish_replay_async(
            self.kafka,
            source.path,
            source.speed,
            dedup=True,
            start_at=start_at,
            producer=self.producer,
            checkpoint=checkpoint,
            names=self.names,
        )
        self.metrics.inc(source.name, "published", report.published)
        self.metrics.inc(source.name, "duplicates", report.duplicates)
        self.metrics.inc(source.name, "invalid", report.invalid if start_at == 0 else 0)
        for language, n in report.languages.items():
            self.metrics.inc(source.name, f"{LANGUAGE}{language}", n)
        await self._record_success(self.states[source.name], utcnow(), report.published, {})
        return PollReport(source.name, "ok", published=report.published, duplicates=report.duplicates)

    def status(self, source: Source, state: SourceState) -> SourceStatus:
        """What readers of the sources topic judge the source's health by."""
        return SourceStatus(
            source=source.name,
            source_kind=source.kind,
            enabled=source.enabled,
            interval_s=self.interval_s(source),
            host=HOST,
            published_at=utcnow(),
            **state.model_dump(include=STATUS_FIELDS),
        )

    async def _announce_sources(self) -> None:
        """Every source of the file, disabled ones too, on the sources topic; those with state
        here that left the file, removed from it."""
        configured = self.config.all(include_disabled=True)
        for source in configured:
            state = self.states.get(source.name) or self.store.load(source.name)
            await self._announce(self.status(source, state))
        for name in sorted(set(self.store.names()) - {s.name for s in configured}):
            try:
                await self.producer.forget_source(name)
            except BrokerUnavailable as exc:
                logger.warning("source status not removed source=%s: %s", name, exc)

    async def _announce(self, status: SourceStatus) -> None:
        # Health is reported, not needed to ingest: the next poll publishes it again.
        try:
            await self.producer.publish_status(status)
        except BrokerUnavailable as exc:
            logger.warning("source status not published source=%s: %s", status.source, exc)
