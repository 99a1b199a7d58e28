"""Test messages: what `finpulse alerts test` sends to each subscription's channel.

A test message says which subscription it is for and what makes that
subscription fire, then shows an example alert rendered as a real one is (its
figures made up, its headline saying so), so subscribers see that the channel
works and what an alert will look like before a real spike. Each message has
its own alert id, so it is never taken for a delivered alert.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from finpulse.errors import ConfigError, PermanentError, TransientError
from finpulse.schema import AlertEvent, EntityKind, HeadlineRef, WindowKind

from .render import ADJUSTED
from .sinks.base import AlertSink, Notification
from .stats import binomial_p
from .subscriptions import FILTER_FIELDS, WILDCARD, Subscription

# The example's figures: a quiet baseline and a window well past the subscription's rise.
EXAMPLE_BASELINE = 0.12
EXAMPLE_EXTRA_RISE = 0.2
EXAMPLE_STORIES = 20
EXAMPLE_WINDOW = timedelta(minutes=5)
# What a "*" subscription's example alert is about: a name its kind could have.
WILDCARD_EXAMPLES: dict[EntityKind, str] = {"topic": "Earnings", "ticker": "ACME", "source": "reuters"}


def describe(sub: Subscription) -> str:
    """What a subscription watches and when it fires, in one sentence's worth of words."""
    d = sub.detector
    return (
        f"watches {sub.filter.summary()}; fires when an entity's negative share in a {d.window} window is "
        f"at least {d.min_rise * 100:.0f} points above its baseline, on {d.min_volume} or more "
        f"stories, with p < {d.significance:g} ({ADJUSTED[d.correction]})"
    )


def _example_entity(sub: Subscription) -> tuple[EntityKind, str]:
    """The first entity the subscription names (a wildcard gets a placeholder name)."""
    for kind, field in FILTER_FIELDS:
        names = getattr(sub.filter, field)
        if names:
            return kind, names[0] if names[0] != WILDCARD else WILDCARD_EXAMPLES[kind]
    raise AssertionError("a subscription's filter names at least one entity")  # its validator


def sample_notification(sub: Subscription, now: datetime, window: timedelta = EXAMPLE_WINDOW) -> Notification:
    """The test message for one subscription, sent to its channel; `window`: the size of the
    subscription's window kind (window_specs)."""
    kind, entity = _example_entity(sub)
    d = sub.detector
    count = max(d.min_volume, EXAMPLE_STORIES)
    share = min(1.0, EXAMPLE_BASELINE + d.min_rise + EXAMPLE_EXTRA_RISE)
    negative = round(share * count)
    end = now.replace(second=0, microsecond=0)
    event = AlertEvent(
        alert_id=f"test-{uuid.uuid4().hex}",
        subscription_id=sub.id,
        state="fired",
        entity_kind=kind,
        entity=entity,
        window_start=end - window,
        window_end=end,
        count=count,
        negative_count=negative,
        negative_share=negative / count,
        baseline_negative_share=EXAMPLE_BASELINE,
        p_value=binomial_p(negative, count, EXAMPLE_BASELINE),
        significance=d.significance,
        correction=d.correction,
        top_headlines=(
            HeadlineRef(
                story_id="test",
                title="Example headline: a real alert lists the most negative stories here",
                source="finpulse",
                sentiment_score=-0.9,
            ),
        ),
        channel=sub.channel,
        created_at=now,
        window_kind=d.window,
    )
    states = [s for s, on in (("disabled", not sub.enabled), ("muted right now", sub.muted(now))) if on]
    label = f"{sub.id} ({sub.name})" if sub.name else sub.id
    note = (
        f"Alerts of subscription {label} come to this channel"
        + (f" (it is {' and '.join(states)}, so none will until that changes)" if states else "")
        + f". It {describe(sub)}. This is what an alert looks like:"
    )
    names = {sub.id: sub.name}
    return Notification(
        f"test|{sub.id}", sub.channel, "fired", (event,), test_note=note, subscription_names=names
    )


@dataclass(frozen=True)
class SampleResult:
    """One test message's fate: the destination's reference when sent, else why not."""

    subscription_id: str
    channel: str
    sink: str
    sent: bool
    detail: str


async def send_samples(
    subscriptions: tuple[Subscription, ...],
    sinks: list[AlertSink],
    now: datetime,
    windows: Mapping[WindowKind, timedelta] | None = None,
) -> list[SampleResult]:
    """Send each subscription's test message through each sink, once (no retries: the
    answer is the point); `windows`: each window kind's size (default 5 minutes). A sink that
    cannot send at all (unreachable at start, a refused token) fails each of its messages left with
    that reason, and the other sinks still send theirs."""
    sizes = windows or {}
    results: list[SampleResult] = []
    for sink in sinks:
        left = list(subscriptions)
        try:
            await sink.start()
            while left:
                sub = left[0]
                try:
                    window = sizes.get(sub.detector.window, EXAMPLE_WINDOW)
                    ref = await sink.send(sample_notification(sub, now, window))
                except (TransientError, PermanentError) as exc:
                    results.append(SampleResult(sub.id, sub.channel, sink.name, False, str(exc)))
                else:
                    detail = f"sent (message {ref})" if ref else "sent"
                    results.append(SampleResult(sub.id, sub.channel, sink.name, True, detail))
                left.pop(0)
        except (ConfigError, TransientError) as exc:
            results += [SampleResult(sub.id, sub.channel, sink.name, False, str(exc)) for sub in left]
        finally:
            await sink.stop()
    return results
