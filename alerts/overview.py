"""Where each live subscription stands: on, disabled or muted, the entities muted now, its
digest, and the alerts it fired lately with the analysts' verdicts (`finpulse alerts list`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from store import MAX_LIMIT, AlertRecord, AlertsQuery, HistoryStore

from .subscriptions import Subscription


@dataclass(frozen=True)
class Overview:
    sub: Subscription
    state: str  # on, disabled, muted now (reason)
    entity_mutes: tuple[str, ...]  # "ticker:TSLA until 03-02 18:00 UTC" active now
    fired: tuple[AlertRecord, ...]  # in the period, newest first

    @property
    def verdicts(self) -> tuple[int, int]:
        """(true positives, false positives) among the alerts fired."""
        return sum(a.verdict == "tp" for a in self.fired), sum(a.verdict == "fp" for a in self.fired)

    @property
    def still_open(self) -> int:
        """Of the alerts fired, those no resolve has ended yet."""
        return sum(a.still_open for a in self.fired)

    def latest(self) -> str | None:
        """`03-02 09:30 ticker ACME`: the newest alert fired (UTC), if any."""
        if not self.fired:
            return None
        last = self.fired[0]
        return f"{last.window_end:%m-%d %H:%M} {last.entity_kind} {last.entity}"

    def line(self, days: float) -> str:
        """`on · tickers ACME · digest 08:00 UTC · 2 alerts in 7 days (1 tp / 0 fp), 1 still open,
        latest ...`."""
        sub, (tp, fp) = self.sub, self.verdicts
        parts = [self.state, sub.filter.summary()]
        if sub.digest is not None:
            parts.append(f"digest {sub.digest.label()}")
        n, latest = len(self.fired), self.latest()
        alerts = f"{n} alert{'' if n == 1 else 's'} in {days:g} days ({tp} tp / {fp} fp)"
        if self.still_open:
            alerts += f", {self.still_open} still open"
        if latest is not None:
            alerts += f", latest {latest}"
        parts.append(alerts)
        parts += [f"muted {m}" for m in self.entity_mutes]
        return " · ".join(parts)


def state(sub: Subscription, now: datetime) -> str:
    if not sub.enabled:
        return "disabled"
    whole = [m for m in sub.mute if not m.entities and m.active(now)]
    if not whole:
        return "on"
    reasons = ", ".join(dict.fromkeys(m.reason for m in whole if m.reason))
    return "muted now" + (f" ({reasons})" if reasons else "")


def overviews(
    subs: tuple[Subscription, ...], db: HistoryStore | None, now: datetime, days: float
) -> list[Overview]:
    """Each subscription's overview; without a store, no alerts."""
    out = []
    for sub in subs:
        muted = tuple(
            # In UTC, as the alerts' times (a mute's own offset, unnamed, would read as UTC).
            f"{entity}" + (f" until {m.until.astimezone(UTC):%m-%d %H:%M} UTC" if m.until else "")
            for m in sub.mute
            if m.entities and m.active(now)
            for entity in m.entities
        )
        fired: tuple[AlertRecord, ...] = ()
        if db is not None:
            query = AlertsQuery(
                subscription_id=sub.id,
                state="fired",
                start=now - timedelta(days=days),
                end=now,
                limit=MAX_LIMIT,
            )
            fired = tuple(a for a in db.fetch(query) if isinstance(a, AlertRecord))
        out.append(Overview(sub, state(sub, now), muted, fired))
    return out
