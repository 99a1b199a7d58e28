"""Synthetic inputs for the alerts tests: scored items, window series, a replay loop.

`replay` folds a series of per-entity (count, negative) windows through
close-window -> detect -> update-baseline exactly as the stream and the
backtest do, and returns the events with the index of the window that
produced them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from alerts import (
    Baseline,
    BaselineParams,
    DetectorParams,
    DetectorState,
    Subscription,
    SubscriptionFilter,
    WindowSpec,
    detect,
    update_baseline,
)
from finpulse.schema import AlertEvent, EntityKind, NewsItem, ScoredItem, Sentiment, WindowAggregate

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 4, tzinfo=UTC)
TUMBLING = WindowSpec(kind="tumbling", size_s=300, step_s=300)
HOPPING = WindowSpec(kind="hopping", size_s=3600, step_s=300)
Entity = tuple[EntityKind, str]
DEFAULT_BASELINE = BaselineParams()


def scored(
    story_id: str,
    sentiment: Sentiment = "negative",
    *,
    at: datetime = T0,
    topic: str = "Markets",
    tickers: tuple[str, ...] = (),
    source: str = "wire",
    duplicate_of: str | None = None,
    title: str | None = None,
) -> ScoredItem:
    score = {"negative": -0.8, "neutral": 0.0, "positive": 0.7}[sentiment]
    item = NewsItem(
        story_id=story_id,
        source=source,
        title=title or f"headline {story_id}",
        url=f"https://news.example/{story_id}",
        published_at=at,
        fetched_at=at,
        tickers=tickers,
        duplicate_of=duplicate_of,
    )
    return ScoredItem(
        item=item,
        topic=topic,
        topic_probs={topic: 1.0},
        sentiment=sentiment,
        sentiment_probs={sentiment: 1.0},
        sentiment_score=score,
        model_version="test",
        scored_at=at,
    )


def subscription(sid: str = "desk", *, topics: Sequence[str] = ("*",), **detector: object) -> Subscription:
    return Subscription(
        id=sid,
        channel="#alerts",
        filter=SubscriptionFilter(topics=tuple(topics)),
        detector=DetectorParams.model_validate(detector),
    )


def window(
    entity: str,
    index: int,
    count: int,
    negative: int,
    baseline: Baseline | None = None,
    params: BaselineParams = DEFAULT_BASELINE,
    kind: EntityKind = "topic",
    spec: WindowSpec = TUMBLING,
) -> WindowAggregate:
    start = T0 + index * spec.step
    share, volume = baseline.trusted(params) if baseline is not None else (None, None)
    return WindowAggregate(
        entity_kind=kind,
        entity=entity,
        window_kind=spec.kind,
        window_start=start,
        window_end=start + spec.size,
        count=count,
        negative_count=negative,
        negative_share=negative / count if count else 0.0,
        mean_score=0.0,
        baseline_negative_share=share,
        baseline_volume=volume,
        step_s=spec.step_s,
    )


def replay(
    series: Mapping[str, Sequence[tuple[int, int]]],
    subs: Sequence[Subscription],
    params: BaselineParams = DEFAULT_BASELINE,
    spec: WindowSpec = TUMBLING,
) -> list[tuple[int, AlertEvent]]:
    """Run per-entity (count, negative) series through the live loop; events with their index."""
    baselines: dict[str, Baseline] = {}
    states: dict[str, DetectorState] = {}
    events: list[tuple[int, AlertEvent]] = []
    length = max(len(s) for s in series.values())
    for i in range(length):
        closed = [
            window(e, i, *s[i], baseline=baselines.get(e), params=params, spec=spec)
            for e, s in sorted(series.items())
            if i < len(s) and s[i][0] > 0
        ]
        result = detect(closed, subs, states, NOW)
        states.update(result.states)
        events += [(i, ev) for ev in result.events]
        for w in closed:
            baselines[w.entity] = update_baseline(baselines.get(w.entity), w, params, spec)
    return events
