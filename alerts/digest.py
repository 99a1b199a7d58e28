"""Daily digests: a subscription's last 24 hours in its channel, at the time it asks for.

A subscription with `[subscription.digest]` gets, once per local day at `at`
(`timezone`, `weekdays`), a message with its entities' most negative shares
against the day before, the alerts it fired, those fired earlier and still open,
and the most negative headlines, all from the history store. The day's digest has
an id (`digest:<sub>:<date>`); the dispatcher records it in its delivery ledger, so
a restart sends none twice.
A digest the dispatcher missed (it was down at `at`) still goes out within
`CATCH_UP` of its time, covering the same 24 hours; after that the day is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from finpulse.schema import EntityKind, HeadlineRef
from store import (
    MAX_LIMIT,
    AlertRecord,
    AlertsQuery,
    Headline,
    HeadlinesQuery,
    HistoryStore,
    Mover,
    MoversQuery,
)

from .subscriptions import FILTER_FIELDS, WEEKDAYS, WILDCARD, Subscription

PERIOD = timedelta(hours=24)
CATCH_UP = timedelta(hours=6)
TOP_ENTITIES = 5
TOP_HEADLINES = 3
MAX_ALERTS = 10
# An entity needs this many stories in the day to be ranked by its negative share.
MIN_STORIES = 3
# How far back the digest looks for alerts fired before its day and not resolved yet; older
# ones are for `finpulse history alerts --state open`.
OPEN_LOOKBACK = timedelta(days=30)


@dataclass(frozen=True)
class EntityLine:
    """One entity's day: stories, negative share, and the share the day before (None: no stories)."""

    kind: EntityKind
    entity: str
    count: int
    negative_share: float
    previous_share: float | None


@dataclass(frozen=True)
class Digest:
    """What one subscription's digest says; rendered by each sink."""

    digest_id: str
    subscription_id: str
    title: str
    channel: str
    start: datetime
    end: datetime
    timezone: str
    active_entities: int  # entities the subscription watches that had stories in the day
    entities: tuple[EntityLine, ...]  # the most negative of them
    alerts: tuple[AlertRecord, ...]
    headlines: tuple[HeadlineRef, ...]
    unranked: int = 0  # of the active entities, those with under MIN_STORIES stories
    open_before: tuple[AlertRecord, ...] = ()  # fired before the day, not resolved yet
    # All of them (at least those listed): the lists hold the newest MAX_ALERTS.
    alerts_total: int = 0
    open_before_total: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "alerts_total", max(self.alerts_total, len(self.alerts)))
        object.__setattr__(self, "open_before_total", max(self.open_before_total, len(self.open_before)))

    @property
    def local_end(self) -> datetime:
        return self.local(self.end)

    def local(self, at: datetime) -> datetime:
        """`at` in the digest's time zone, as its header's time is."""
        return at.astimezone(ZoneInfo(self.timezone))

    def to_json(self) -> dict[str, Any]:
        return {
            "digest_id": self.digest_id,
            "subscription_id": self.subscription_id,
            "channel": self.channel,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "active_entities": self.active_entities,
            "unranked": self.unranked,
            "entities": [vars(e) for e in self.entities],
            "alerts": [a.model_dump(mode="json") for a in self.alerts],
            "open_before": [a.model_dump(mode="json") for a in self.open_before],
            "alerts_total": self.alerts_total,
            "open_before_total": self.open_before_total,
            "headlines": [h.model_dump(mode="json") for h in self.headlines],
        }


def scheduled(sub: Subscription, now: datetime) -> tuple[str, datetime] | None:
    """The digest due at `now` (its id and the end of the day it covers), or None: no digest
    configured, not a digest weekday, before `at`, or more than CATCH_UP after it."""
    if sub.digest is None:
        return None
    zone = ZoneInfo(sub.digest.timezone)
    local = now.astimezone(zone)
    # Yesterday's too: a digest at 21:00 is still caught up at 00:30.
    for day in (local.date(), local.date() - timedelta(days=1)):
        end = datetime.combine(day, sub.digest.at, tzinfo=zone)
        if WEEKDAYS[day.weekday()] in sub.digest.weekdays and end <= local < end + CATCH_UP:
            return digest_id(sub.id, day), end
    return None


def digest_id(subscription_id: str, day: date) -> str:
    return f"digest:{subscription_id}:{day.isoformat()}"


def build_digest(db: HistoryStore, sub: Subscription, day_id: str, end: datetime) -> Digest:
    """The subscription's day up to `end`, from the history store: since the same local time the
    day before (23 or 25 hours across a clock change), so each digest starts where the last ended."""
    start = end - PERIOD
    lines: list[EntityLine] = []
    for kind, field in FILTER_FIELDS:
        if not getattr(sub.filter, field):
            continue
        query = MoversQuery(
            entity_kind=kind, start=start, end=end, min_stories=1, direction="any", limit=MAX_LIMIT
        )
        for m in db.fetch(query):
            if isinstance(m, Mover) and sub.filter.matches(kind, m.entity):
                lines.append(EntityLine(kind, m.entity, m.count, m.negative_share, m.previous_share))
    ranked = sorted((e for e in lines if e.count >= MIN_STORIES), key=lambda e: (-e.negative_share, -e.count))
    alerts = db.fetch(
        AlertsQuery(subscription_id=sub.id, state="fired", start=start, end=end, limit=MAX_LIMIT)
    )
    open_before = db.fetch(
        AlertsQuery(
            subscription_id=sub.id, state="open", start=start - OPEN_LOOKBACK, end=start, limit=MAX_LIMIT
        )
    )
    return Digest(
        digest_id=day_id,
        subscription_id=sub.id,
        title=sub.name or sub.id,
        channel=sub.channel,
        start=start,
        end=end,
        timezone=sub.digest.timezone if sub.digest is not None else "UTC",
        active_entities=len(lines),
        entities=tuple(ranked[:TOP_ENTITIES]),
        alerts=tuple(a for a in alerts[:MAX_ALERTS] if isinstance(a, AlertRecord)),
        headlines=_headlines(db, sub, lines, start, end),
        unranked=len(lines) - len(ranked),
        open_before=tuple(a for a in open_before[:MAX_ALERTS] if isinstance(a, AlertRecord)),
        alerts_total=len(alerts),
        open_before_total=len(open_before),
    )


def _headlines(
    db: HistoryStore, sub: Subscription, lines: list[EntityLine], start: datetime, end: datetime
) -> tuple[HeadlineRef, ...]:
    """The most negative headlines about the subscription's entities in the news (`lines`: named
    as stored, where the filter may write "earnings"), or any, for a wildcard."""
    queries: list[HeadlinesQuery] = []
    for kind, field in FILTER_FIELDS:
        if WILDCARD in getattr(sub.filter, field):
            queries.append(HeadlinesQuery(entity_kind=kind, start=start, end=end, limit=TOP_HEADLINES))
        else:
            queries += [
                HeadlinesQuery(entity_kind=kind, entity=e.entity, start=start, end=end, limit=TOP_HEADLINES)
                for e in lines
                if e.kind == kind
            ]
    found = {h.story_id: h for q in queries for h in db.fetch(q) if isinstance(h, Headline)}
    # One line per headline: a story published twice (two ids, one title) is listed once.
    titles: dict[str, Headline] = {}
    for h in sorted(found.values(), key=lambda h: (h.sentiment_score, h.story_id)):
        titles.setdefault(" ".join(h.title.casefold().split()), h)
    best = list(titles.values())[:TOP_HEADLINES]
    return tuple(
        HeadlineRef(
            story_id=h.story_id, title=h.title, url=h.url, source=h.source, sentiment_score=h.sentiment_score
        )
        for h in best
    )


def due_digests(
    subscriptions: tuple[Subscription, ...], now: datetime, sent: Callable[[str], bool]
) -> list[tuple[Subscription, str, datetime]]:
    """The enabled subscriptions whose digest is due now and not yet `sent`."""
    out = []
    for sub in subscriptions:
        slot = scheduled(sub, now) if sub.enabled else None
        if slot is not None and not sent(slot[0]):
            out.append((sub, *slot))
    return out
