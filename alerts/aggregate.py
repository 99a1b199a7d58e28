"""Window aggregation: which entities a scored story counts for, and one window's sums.

Pure functions over small frozen models, so the stream can keep a
`WindowAccumulator` per (entity, window) in a changelogged table and the
backtest can fold history through the very same code:

    acc = open_window("ticker", "ACME", spec, start)
    for scored in items_in_window:            # any order, each story_key once
        acc = add_item(acc, scored)
    agg = close_window(acc, baseline, params)  # -> WindowAggregate

A story counts once per entity-window (its `story_key`), however often it is
delivered; a syndicated copy (`item.duplicate_of` set) has the original's key,
so a story and its copies count once. The caller keeps what it has counted
(the backtest in a set, the stream in a changelogged table), so an
accumulator stays small however many stories a window holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from finpulse.schema import EntityKind, HeadlineRef, ScoredItem, WindowAggregate, WindowKind

from .baseline import Baseline, BaselineParams
from .windows import WindowSpec

# Headlines kept as evidence per window (settings.alerts.top_headlines overrides per call).
DEFAULT_TOP_HEADLINES = 5
# Titles in evidence are cut to this length: enough for Slack, small for table state.
EVIDENCE_TITLE_CHARS = 300


def story_key(scored: ScoredItem) -> str:
    """The id a story counts under: the original's id for a syndicated duplicate."""
    return scored.item.duplicate_of or scored.item.story_id


def entities_of(scored: ScoredItem) -> list[tuple[EntityKind, str]]:
    """The entities a scored story counts for: its topic, each ticker, its source.

    Deduplicated and in a stable order (topic, tickers as given, source).
    """
    entities: list[tuple[EntityKind, str]] = [("topic", scored.topic)]
    entities += [("ticker", t) for t in scored.item.tickers]
    entities.append(("source", scored.item.source))
    return list(dict.fromkeys(entities))


class WindowAccumulator(BaseModel):
    """Running sums of one entity's window; JSON-serialisable table state."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # a newer worker's fields (rolling upgrade)

    entity_kind: EntityKind
    entity: str
    window_kind: WindowKind
    window_start: datetime
    window_end: datetime
    count: int = Field(default=0, ge=0)
    negative_count: int = Field(default=0, ge=0)
    score_sum: float = 0.0
    top_negative: tuple[HeadlineRef, ...] = ()
    step_s: int | None = None  # its kind's step (None: kept by a version before it was)


def window_view(scored: ScoredItem) -> ScoredItem:
    """The story with only what `entities_of` and `add_item` read: no class probabilities,
    no summary. The stream ships this to its aggregate stage, once per entity."""
    item = scored.item.model_copy(update={"summary": "", "tags": ()})
    return scored.model_copy(update={"item": item, "topic_probs": {}, "sentiment_probs": {}})


def open_window(kind: EntityKind, entity: str, spec: WindowSpec, start: datetime) -> WindowAccumulator:
    """An empty accumulator for the window of `spec` that starts at `start`."""
    return WindowAccumulator(
        entity_kind=kind,
        entity=entity,
        window_kind=spec.kind,
        window_start=start,
        window_end=start + spec.size,
        step_s=spec.step_s,
    )


def _headline(scored: ScoredItem) -> HeadlineRef:
    item = scored.item
    return HeadlineRef(
        story_id=story_key(scored),
        title=item.title[:EVIDENCE_TITLE_CHARS],
        url=item.url,
        source=item.source,
        sentiment_score=scored.sentiment_score,
    )


def _rank(h: HeadlineRef) -> tuple[float, str]:
    return (h.sentiment_score, h.story_id)


def add_item(
    acc: WindowAccumulator, scored: ScoredItem, top_n: int = DEFAULT_TOP_HEADLINES
) -> WindowAccumulator:
    """The accumulator with `scored` counted; count each `story_key` once per window.

    The result does not depend on the order items arrive in (up to float rounding of
    `score_sum`): the top headlines are ranked by (score, story key).
    """
    return add_items(acc, [scored], top_n)


def add_items(
    acc: WindowAccumulator, stories: Sequence[ScoredItem], top_n: int = DEFAULT_TOP_HEADLINES
) -> WindowAccumulator:
    """`add_item` for each story in turn, in one copy of the accumulator."""
    negatives = [scored for scored in stories if scored.sentiment == "negative"]
    top = acc.top_negative
    if negatives:
        top = tuple(sorted((*top, *map(_headline, negatives)), key=_rank)[:top_n])
    score_sum = acc.score_sum
    for scored in stories:
        score_sum += scored.sentiment_score
    return acc.model_copy(
        update={
            "count": acc.count + len(stories),
            "negative_count": acc.negative_count + len(negatives),
            "score_sum": score_sum,
            "top_negative": top,
        }
    )


def close_window(
    acc: WindowAccumulator,
    baseline: Baseline | None,
    params: BaselineParams,
    revision: int = 0,
) -> WindowAggregate:
    """The WindowAggregate of a closed window, carrying the baseline *before* this window.

    The baseline fields stay None until the entity's baseline has seen
    `params.min_windows` windows: the detector does not fire on untrusted baselines.
    Pass `revision` > 0 when re-emitting a window updated by late items.
    """
    if acc.count == 0:
        raise ValueError(f"window {acc.entity_kind}:{acc.entity}@{acc.window_start} is empty")
    share, volume = baseline.trusted(params) if baseline is not None else (None, None)
    mean = max(-1.0, min(1.0, acc.score_sum / acc.count))
    return WindowAggregate(
        entity_kind=acc.entity_kind,
        entity=acc.entity,
        window_kind=acc.window_kind,
        window_start=acc.window_start,
        window_end=acc.window_end,
        count=acc.count,
        negative_count=acc.negative_count,
        negative_share=acc.negative_count / acc.count,
        mean_score=mean,
        top_negative=acc.top_negative,
        baseline_negative_share=share,
        baseline_volume=volume,
        revision=revision,
        step_s=acc.step_s,
    )
