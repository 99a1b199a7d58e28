"""Grouping of alert events into notifications, as Alertmanager does (pure; time passed in).

Events with the same group key that arrive together go out as one
notification. A new group waits `group_wait_s` for company after its first
event; once a group has been sent, its next notification waits until
`group_interval_s` after the previous one. Times are monotonic seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from finpulse.schema import AlertEvent

from .subscriptions import Subscription

T = TypeVar("T")


def group_key(event: AlertEvent, subscription: Subscription | None, channel: str) -> str:
    """The key events are grouped by: the channel plus the subscription's `group_by` fields."""
    fields = subscription.group_by if subscription is not None else ("subscription",)
    values = {"subscription": event.subscription_id, "entity_kind": event.entity_kind, "entity": event.entity}
    return "|".join([f"channel={channel}"] + [f"{f}={values[f]}" for f in fields])


@dataclass
class _Group(Generic[T]):
    due_at: float
    items: list[T] = field(default_factory=list)


class Grouper(Generic[T]):
    """Holds pending items per group key until their group is due."""

    def __init__(self) -> None:
        self._groups: dict[str, _Group[T]] = {}
        self._last_sent: dict[str, tuple[float, float]] = {}  # key -> (sent at, interval)

    def __len__(self) -> int:
        return sum(len(g.items) for g in self._groups.values())

    def add(self, key: str, item: T, *, wait_s: float, interval_s: float, now: float) -> None:
        """Queue `item`; a new group is due after `wait_s`, and never sooner than
        `interval_s` after the group's previous notification."""
        group = self._groups.get(key)
        if group is None:
            due = now + wait_s
            last = self._last_sent.get(key)
            if last is not None and last[0] + last[1] > now:
                due = max(due, last[0] + last[1])
            group = self._groups[key] = _Group(due_at=due)
        group.items.append(item)
        self._last_sent.setdefault(key, (float("-inf"), interval_s))
        self._last_sent[key] = (self._last_sent[key][0], interval_s)

    def due(self, now: float) -> list[tuple[str, list[T]]]:
        """Remove and return the groups due at `now` (oldest due first); marks them sent."""
        ready = sorted((g.due_at, k) for k, g in self._groups.items() if g.due_at <= now)
        out = []
        for _, key in ready:
            out.append((key, self._groups.pop(key).items))
            self._last_sent[key] = (now, self._last_sent[key][1])
        self._forget(now)
        return out

    def retry(self, key: str, items: Sequence[T], at: float) -> None:
        """Put back items whose delivery failed; their group is due again at `at`."""
        group = self._groups.get(key)
        if group is None:
            self._groups[key] = _Group(due_at=at, items=list(items))
        else:
            group.items[:0] = items
            group.due_at = min(group.due_at, at)

    def drop(self, predicate: Callable[[T], bool]) -> int:
        """Forget pending items matching `predicate` (their partition was revoked)."""
        dropped = 0
        for key in list(self._groups):
            group = self._groups[key]
            keep = [i for i in group.items if not predicate(i)]
            dropped += len(group.items) - len(keep)
            if keep:
                group.items = keep
            else:
                del self._groups[key]
        return dropped

    def next_due(self) -> float | None:
        return min((g.due_at for g in self._groups.values()), default=None)

    def _forget(self, now: float) -> None:
        stale = [k for k, (at, iv) in self._last_sent.items() if at + iv < now and k not in self._groups]
        for key in stale:
            del self._last_sent[key]
