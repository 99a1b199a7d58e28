"""Backtest: replay history through the live aggregation and detector with a grid of parameters.

Pure (no I/O; `now` only stamps `created_at`). What the live stream does, the
backtest does with the same functions:

    scored items --rebuild_windows()--> windows   (open_window/add_item/close_window,
                                                   update_baseline in window order)
    windows --replay()--> alert events             (detect() once per window end, in
                                                   time order, states carried over)

so replaying the windows the live stream emitted, with the live subscription,
gives exactly the live alerts (same ids, same evidence). Each grid setting is
the subscription with some detector parameters replaced; filter, mutes and
cooldown stay. Per setting `evaluate` scores the fired alerts against labels:

- a labelled event is an entity (kind, name) and an interval [start, end) with a
  verdict: "tp" (a real event the detector should catch) or "fp" (a known false
  alarm, e.g. from an analyst's verdict on a past alert);
- a fired alert matches a label when the entity is the same and its window
  overlaps the interval;
- recall = tp events matched by at least one fired alert / tp events;
- precision = alerts matching a tp event / (those + alerts matching only fp
  labels). When the labels are `complete` (a file listing every real event),
  an alert matching no tp event counts as a false positive; otherwise (analyst
  feedback) it is reported as unlabelled and left out of precision;
- detection delay of a caught event = end of the first matching fired window
  minus the event's start; only with `complete` labels: an analyst's verdict
  starts at its own alert's window, so its "delay" would always be one window.

`recommend` picks the best recall among settings within a target alerts/day
(ties: higher precision, then fewer alerts, then the shorter median delay, then the setting
in use, then the strictest setting, then grid order).
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, model_validator

from finpulse.errors import FinpulseError
from finpulse.schema import (
    AlertEvent,
    EntityKind,
    ScoredItem,
    UtcDatetime,
    WindowAggregate,
    WindowKind,
    describe_validation_error,
    normalise_entity,
)

from .aggregate import (
    DEFAULT_TOP_HEADLINES,
    WindowAccumulator,
    add_item,
    close_window,
    entities_of,
    open_window,
    story_key,
)
from .baseline import Baseline, BaselineParams, update_baseline
from .detector import DetectorState, detect
from .render import short_id
from .subscriptions import DetectorParams, Subscription, same_entity
from .windows import WindowSpec, window_bounds, window_starts

# Each setting replays the whole series once: 200 keeps a week of 5-minute windows
# under a minute on one core (measured: ~0.15 s per setting per 2,000 windows).
MAX_SETTINGS = 200
DAY = timedelta(days=1)
Verdict = Literal["tp", "fp"]
GridValue = float | int | str


class BacktestError(FinpulseError, ValueError):
    """Bad backtest input (grid, labels, range); the message says what to change."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LabelledEvent(_Frozen):
    """A labelled interval of one entity: a real event (tp) or a known false alarm (fp)."""

    entity_kind: EntityKind
    entity: str = Field(min_length=1, max_length=200)
    start: UtcDatetime
    end: UtcDatetime
    verdict: Verdict = "tp"
    alert_id: str | None = Field(default=None, description="the past alert this label came from")

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end.isoformat()}) must be after start ({self.start.isoformat()})")
        object.__setattr__(self, "entity", normalise_entity(self.entity_kind, self.entity))
        return self

    def about(self, kind: EntityKind, entity: str) -> bool:
        """Whether the label is about this entity (named in any case, a ticker with or without '$')."""
        return in_focus((self.entity_kind, self.entity), kind, entity)

    def matches(self, alert: AlertEvent) -> bool:
        """Same entity and the alert's window overlaps [start, end)."""
        return (
            self.about(alert.entity_kind, alert.entity)
            and alert.window_start < self.end
            and alert.window_end > self.start
        )

    @classmethod
    def from_alert(cls, alert: AlertEvent, verdict: Verdict, end: datetime | None = None) -> LabelledEvent:
        """The label an analyst's verdict on a past fired alert gives: its window (or episode)."""
        return cls(
            entity_kind=alert.entity_kind,
            entity=alert.entity,
            start=alert.window_start,
            end=max(end or alert.window_end, alert.window_end),
            verdict=verdict,
            alert_id=alert.alert_id,
        )


class Labels(_Frozen):
    """The labelled events; `complete` when every real event is listed (a labels file)."""

    events: tuple[LabelledEvent, ...] = ()
    complete: bool = False

    def where(self, keep: Callable[[LabelledEvent], bool]) -> Labels:
        """Only the labels `keep` accepts."""
        return self.model_copy(update={"events": tuple(e for e in self.events if keep(e))})


def in_focus(focus: tuple[EntityKind, str] | None, kind: EntityKind, entity: str) -> bool:
    """Whether an entity is the one a backtest is restricted to (any, without one); named in
    any case, as subscription filters match."""
    return focus is None or (kind == focus[0] and same_entity(kind, entity, focus[1]))


def replays(subscription: Subscription, kinds: Collection[WindowKind], window: WindowAggregate) -> bool:
    """Whether a replay of the (enabled) subscription over the grid's window `kinds` tests this
    window: not `Subscription.matches`, which takes the subscription's own window kind alone, where
    a grid setting may ask for another."""
    return (
        subscription.enabled
        and window.window_kind in kinds
        and subscription.filter.matches(window.entity_kind, window.entity)
    )


class Setting(_Frozen):
    """One point of the grid: the subscription's detector with `overrides` applied."""

    name: str
    overrides: dict[str, GridValue]
    params: DetectorParams


# -- grid ---------------------------------------------------------------------------------------


def _scalar(text: str) -> GridValue:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            continue
    return text


def parse_grid(text: str) -> dict[str, list[GridValue]]:
    """`"min_rise=0.1,0.15 significance=0.01,0.001"` -> {"min_rise": [0.1, 0.15], ...}."""
    grid: dict[str, list[GridValue]] = {}
    for token in text.replace(";", " ").split():
        key, sep, values = token.partition("=")
        if not sep or not key:
            raise BacktestError(f"grid term {token!r} is not name=value[,value...] (e.g. min_rise=0.1,0.2)")
        if key in grid:
            raise BacktestError(f"grid names {key!r} twice; list all its values once: {key}=a,b,c")
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not parts:
            raise BacktestError(f"grid term {token!r} has no values")
        grid[key] = [_scalar(v) for v in parts]
    return grid


def expand_grid(
    grid: Mapping[str, Sequence[GridValue] | GridValue], base: DetectorParams, limit: int = MAX_SETTINGS
) -> list[Setting]:
    """The cartesian product of the grid over `base`, in grid order; an empty grid is `base` alone.
    A combination the detector refuses (resolve_rise not below min_rise) is left out
    (`refused_settings` says which), so one such pair does not stop the grid.

    Raises:
        BacktestError: an unknown parameter, every combination refused, or more than `limit` settings.
    """
    settings, refused = [], []
    for overrides, params in _combinations(grid, base, limit):
        if isinstance(params, str):
            refused.append(params)
            continue
        name = " ".join(f"{k}={getattr(params, k)}" for k in overrides) or "current"
        settings.append(Setting(name=name, overrides=overrides, params=params))
    if not settings:
        more = f" (and {len(refused) - 1} more settings refused)" if len(refused) > 1 else ""
        raise BacktestError(f"grid setting {refused[0]}{more}")
    return settings


def refused_settings(
    grid: Mapping[str, Sequence[GridValue] | GridValue], base: DetectorParams, limit: int = MAX_SETTINGS
) -> list[str]:
    """The grid's combinations the detector refuses, each with why (`expand_grid` leaves them out)."""
    return [params for _, params in _combinations(grid, base, limit) if isinstance(params, str)]


def _combinations(
    grid: Mapping[str, Sequence[GridValue] | GridValue], base: DetectorParams, limit: int
) -> Iterator[tuple[dict[str, GridValue], DetectorParams | str]]:
    """Each combination's overrides with its parameters, or why the detector refuses them."""
    fields = sorted(DetectorParams.model_fields)
    axes: list[tuple[str, list[GridValue]]] = []
    for key, values in grid.items():
        if key not in DetectorParams.model_fields:
            raise BacktestError(
                f"unknown detector parameter {key!r} in the grid; choose from {', '.join(fields)}"
            )
        listed: list[GridValue] = [values] if isinstance(values, str | int | float) else list(values)
        if not listed:
            raise BacktestError(f"grid parameter {key!r} has no values")
        axes.append((key, list(dict.fromkeys(listed))))
    size = math.prod(len(values) for _, values in axes)
    if size > limit:
        shape = " x ".join(f"{len(v)} {k}" for k, v in axes)
        raise BacktestError(f"the grid has {size} settings ({shape}); at most {limit}: drop some values")
    for combo in itertools.product(*(values for _, values in axes)):
        overrides = dict(zip((k for k, _ in axes), combo, strict=True))
        try:
            yield overrides, DetectorParams.model_validate({**base.model_dump(), **overrides})
        except ValidationError as exc:
            label = " ".join(f"{k}={v}" for k, v in overrides.items())
            yield overrides, f"{label}: {describe_validation_error(exc)}"


# -- the live loop --------------------------------------------------------------------------------


def rebuild_windows(
    items: Iterable[ScoredItem],
    specs: Sequence[WindowSpec],
    params: BaselineParams,
    *,
    top_n: int = DEFAULT_TOP_HEADLINES,
    keep: Callable[[EntityKind, str], bool] | None = None,
) -> list[WindowAggregate]:
    """Every window the stream would close for these items, with its baseline, by end then key.

    Folds each item into every window of every spec that contains its publish
    time (as the stream's `aggregate` agent), then closes each entity's windows in
    start order against the baseline so far. `keep` limits the entities built.
    Unlike the stream there is no allowed lateness: every item counts.
    """
    accs: dict[tuple[EntityKind, str, WindowKind, datetime], WindowAccumulator] = {}
    counted: set[tuple[tuple[EntityKind, str, WindowKind, datetime], str]] = set()
    by_kind = {spec.kind: spec for spec in specs}
    for scored in items:
        for kind, entity in entities_of(scored):
            if keep is not None and not keep(kind, entity):
                continue
            for spec in specs:
                for start in window_starts(spec, scored.item.published_at):
                    key = (kind, entity, spec.kind, start)
                    if (key, story_key(scored)) in counted:
                        continue  # a redelivery, or a syndicated copy of a counted story
                    counted.add((key, story_key(scored)))
                    acc = accs.get(key) or open_window(kind, entity, spec, start)
                    accs[key] = add_item(acc, scored, top_n)
    series: dict[tuple[EntityKind, str, WindowKind], list[WindowAccumulator]] = defaultdict(list)
    for (kind, entity, window_kind, _), acc in sorted(accs.items(), key=lambda kv: kv[0][3]):
        series[(kind, entity, window_kind)].append(acc)
    windows: list[WindowAggregate] = []
    for (_, _, window_kind), accumulators in series.items():
        baseline: Baseline | None = None
        for acc in accumulators:
            aggregate = close_window(acc, baseline, params)
            baseline = update_baseline(baseline, aggregate, params, by_kind[window_kind])
            windows.append(aggregate)
    return sorted(windows, key=lambda w: (w.window_end, w.key))


def group_by_end(windows: Iterable[WindowAggregate]) -> list[list[WindowAggregate]]:
    """Windows ending at the same instant, oldest end first, each window once: its first
    revision, the one the live detector tested (it skips the late stories' revisions)."""
    first: dict[str, WindowAggregate] = {}
    for w in windows:
        held = first.get(w.key)
        if held is None or w.revision < held.revision:
            first[w.key] = w
    ends: dict[datetime, list[WindowAggregate]] = defaultdict(list)
    for w in sorted(first.values(), key=lambda w: (w.window_end, w.key)):
        ends[w.window_end].append(w)
    return [ends[end] for end in sorted(ends)]


def replay(
    families: Sequence[Sequence[WindowAggregate]], subscription: Subscription, now: datetime
) -> tuple[AlertEvent, ...]:
    """Run the detector over windows grouped by end (`group_by_end`), carrying states: the live loop."""
    states: dict[str, DetectorState] = {}
    events: list[AlertEvent] = []
    for family in families:
        result = detect(family, [subscription], states, now)
        states.update(result.states)
        events.extend(result.events)
    return tuple(events)


# -- scoring ---------------------------------------------------------------------------------------


class SettingResult(_Frozen):
    """What one setting did over the history, scored against the labels."""

    setting: Setting
    events: tuple[AlertEvent, ...] = Field(description="fired and resolved events, in time order")
    alerts_fired: int
    alerts_per_day: float
    true_positives: int = Field(description="fired alerts overlapping a tp label")
    false_positives: int
    unlabelled: int = Field(description="fired alerts no label covers (labels not complete)")
    labelled_events: int = Field(description="tp labels in the evaluated range")
    events_detected: int
    precision: float | None
    recall: float | None
    delays_s: tuple[float, ...] = Field(description="per detected event: first fired window end - start")
    mean_delay_s: float | None
    median_delay_s: float | None

    @property
    def fired(self) -> tuple[AlertEvent, ...]:
        return tuple(e for e in self.events if e.state == "fired")


def evaluate(setting: Setting, events: Sequence[AlertEvent], labels: Labels, days: float) -> SettingResult:
    """Score one setting's events against the labels over a span of `days`."""
    fired = [e for e in events if e.state == "fired"]
    positives = [label for label in labels.events if label.verdict == "tp"]
    negatives = [label for label in labels.events if label.verdict == "fp"]
    tp = fp = unlabelled = 0
    for alert in fired:
        if any(label.matches(alert) for label in positives):
            tp += 1
        elif labels.complete or any(label.matches(alert) for label in negatives):
            fp += 1
        else:
            unlabelled += 1
    detected, delays = 0, []
    for label in positives:
        ends = [a.window_end for a in fired if label.matches(a)]
        if ends:
            detected += 1
            if labels.complete:  # a verdict's event starts at its alert's window: no delay to tell
                delays.append((min(ends) - label.start).total_seconds())
    return SettingResult(
        setting=setting,
        events=tuple(events),
        alerts_fired=len(fired),
        alerts_per_day=len(fired) / days if days > 0 else 0.0,
        true_positives=tp,
        false_positives=fp,
        unlabelled=unlabelled,
        labelled_events=len(positives),
        events_detected=detected,
        precision=tp / (tp + fp) if tp + fp else None,
        recall=detected / len(positives) if positives else None,
        delays_s=tuple(delays),
        mean_delay_s=statistics.fmean(delays) if delays else None,
        median_delay_s=statistics.median(delays) if delays else None,
    )


def _rank(
    result: SettingResult, current: DetectorParams | None = None
) -> tuple[float, float, int, float, bool, float, float, int]:
    recall = -1.0 if result.recall is None else result.recall
    # No precision: no alert judged, so none judged false (nothing fired, or none labelled).
    precision = 1.0 if result.precision is None else result.precision
    delay = -math.inf if result.median_delay_s is None else -result.median_delay_s
    # Settings that fire the same: the one in use (no change without evidence), else the
    # strictest, which fires them with the most margin.
    p = result.setting.params
    kept = p == current
    return (recall, precision, -result.alerts_fired, delay, kept, p.min_rise, -p.significance, p.min_volume)


def recommend(
    results: Sequence[SettingResult], max_alerts_per_day: float | None, current: DetectorParams | None = None
) -> SettingResult | None:
    """Best recall among settings with alerts/day <= the target (ties: precision, fewer alerts,
    the shorter median detection delay, the `current` setting, then the strictest: higher
    min_rise, lower significance, higher min_volume).

    None when no setting stays within the target. Without a target every setting qualifies.
    """
    within = [r for r in results if max_alerts_per_day is None or r.alerts_per_day <= max_alerts_per_day]
    # max keeps the first of equals: grid order
    return max(within, key=lambda r: _rank(r, current)) if within else None


# -- the whole run ----------------------------------------------------------------------------------


class LiveCheck(_Frozen):
    """The subscription's setting in use, replayed, against the alerts the live stream sent over
    the same history: the backtest's own check that it shows what live would do."""

    sent: int = Field(description="fired alerts the live stream sent whose windows lie in the range")
    reproduced: int = Field(description="of those, fired again by the replay (same ids)")
    missing: tuple[str, ...] = Field(description="ids sent but not fired by the replay")
    extra: tuple[str, ...] = Field(description="ids fired by the replay but never sent")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def summary(self) -> str:
        """One line: "the setting in use fires the 3 alerts live sent, same ids"."""
        if not self.missing and not self.extra:
            if not self.sent:
                return "live sent no alert in the range, and the setting in use fires none"
            return f"the setting in use fires the {self.sent} alerts live sent, same ids"
        out = f"the setting in use fires {self.reproduced} of the {self.sent} alerts live sent"
        out += f"; not {_ids(self.missing)}" if self.missing else ""
        out += f"; never sent: {_ids(self.extra)}" if self.extra else ""
        return out + " (the alert's window at the range's edge, or a detector since changed)"

    @classmethod
    def of(cls, sent: Iterable[str], replayed: Iterable[AlertEvent]) -> LiveCheck:
        live, again = set(sent), {e.alert_id for e in replayed if e.state == "fired"}
        return cls(
            sent=len(live),
            reproduced=len(live & again),
            missing=tuple(sorted(live - again)),
            extra=tuple(sorted(again - live)),
        )


def _ids(alert_ids: Sequence[str], shown: int = 5) -> str:
    """Alert ids as messages show them, the first `shown`."""
    more = f" and {len(alert_ids) - shown} more" if len(alert_ids) > shown else ""
    return ", ".join(short_id(i) for i in alert_ids[:shown]) + more


class BacktestReport(_Frozen):
    """A backtest's inputs in brief, every setting's result, and the recommendation."""

    subscription_id: str
    focus: tuple[EntityKind, str] | None = Field(description="the entity the metrics are restricted to")
    base: DetectorParams = Field(
        description="the replayed subscription's detector (an entity's: the defaults); the grid overrides it"
    )
    start: UtcDatetime
    end: UtcDatetime
    days: float
    windows: int
    labels: Labels
    max_alerts_per_day: float | None
    results: tuple[SettingResult, ...]
    recommended: str | None = Field(description="name of the recommended setting")
    recommendation: str = Field(description="why, in one sentence")
    created_at: UtcDatetime
    live: LiveCheck | None = Field(
        default=None, description="a live subscription's: its setting in use against the alerts it sent"
    )
    skipped: tuple[str, ...] = Field(
        default=(), description="the grid's combinations the detector refuses, each with why (left out)"
    )
    notes: tuple[str, ...] = Field(default=(), description="what to know of the replay (a subscription off)")
    asked: dict[str, Any] = Field(
        default_factory=dict,
        description="the request as run (entity or subscription, range, grid, target), its history's source",
    )

    def result(self, name: str) -> SettingResult:
        for r in self.results:
            if r.setting.name == name:
                return r
        raise KeyError(name)


# The subscription an entity's replay runs under: watching only it, with the default detector.
ADHOC_SUBSCRIPTION = "backtest"


def held(days: float) -> str:
    """How much history a rate is taken over: "1.5 hours", "6.5 days" (the dashboard's words)."""
    return f"{days * 24:.3g} hours" if days < 2 else f"{days:.3g} days"


def _explain(
    best: SettingResult | None, results: Sequence[SettingResult], target: float | None, days: float
) -> str:
    if best is None:
        assert target is not None  # without a target every setting qualifies
        fewest = min(r.alerts_per_day for r in results)
        quietest = max((r for r in results if r.alerts_per_day == fewest), key=_rank)
        said = f"no setting stays within {target:g} alerts/day"
        if 1 / days > target:  # a single alert over this little history is over the target
            return (
                f"{said}: the history holds {held(days)}, in which one alert is {1 / days:.2f}/day; "
                "raise --max-alerts-per-day, or replay a longer range (--since) if the store holds one"
            )
        return (
            f"{said}; the quietest, {quietest.setting.name}, fires {quietest.alerts_per_day:.2f}/day: "
            "widen the grid (higher min_rise, lower significance)"
        )
    recall = "n/a (no labelled events)" if best.recall is None else f"{best.recall:.2f}"
    precision = "n/a" if best.precision is None else f"{best.precision:.2f}"
    bound = f" (target <= {target:g})" if target is not None else ""
    return (
        f"{best.setting.name}: recall {recall}, precision {precision}, "
        f"{best.alerts_per_day:.2f} alerts/day{bound}"
    )


def story_span(first: datetime, last: datetime, tumbling: WindowSpec) -> tuple[datetime, datetime]:
    """The first and last story's times widened to the tumbling windows holding them: the
    history the alerts were tested over, in whole windows (09:00:03-14:57:48 is 09:00-15:00)."""
    [(start, _)] = window_bounds(tumbling, first)
    [(_, end)] = window_bounds(tumbling, last)
    return start, end


def history_span(
    windows: Sequence[WindowAggregate], stories: tuple[datetime, datetime] | None
) -> tuple[datetime, datetime]:
    """The time the alerts/day rate is taken over: what the replay holds of the range asked for,
    from its first story (or window) to its last, whichever entities they name. Not the whole range:
    a week asked of 6 hours of history is 6 hours' rate. Not the replayed entity's windows alone:
    a quiet entity's one burst of news would count as a day's. Not the windows' when the stories
    are known: an hour-long hopping window starts an hour before its first story, and the rate of
    the same setting would change with the window kinds the grid replays."""
    if stories is not None and stories[1] > stories[0]:
        return stories
    return min(w.window_start for w in windows), max(w.window_end for w in windows)


def run_backtest(
    windows: Sequence[WindowAggregate],
    subscription: Subscription,
    settings: Sequence[Setting],
    labels: Labels,
    now: datetime,
    *,
    max_alerts_per_day: float | None = None,
    stories: tuple[datetime, datetime] | None = None,
    focus: tuple[EntityKind, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BacktestReport:
    """Replay `windows` for every setting (the subscription with that setting's detector).

    `stories`: when the replay's first and last story of the range (any entity's) were
    published; with the matched windows they set the alerts/day denominator and which labels
    count (`history_span`). `focus` restricts the metrics to one entity's alerts;
    `progress(done, total)` is called after each setting.
    """
    if not settings:
        raise BacktestError("no settings to test: give a grid, or none for the current parameters")
    kinds = {s.params.window for s in settings}
    matched = [w for w in windows if replays(subscription, kinds, w)]
    if not matched:
        raise BacktestError(
            f"no windows match subscription {subscription.id!r} ({'/'.join(sorted(kinds))}) in the history; "
            "check the entity, the time range and the window kind"
        )
    span_start, span_end = history_span(matched, stories)
    days = (span_end - span_start) / DAY
    if focus is not None:
        focus = (focus[0], normalise_entity(*focus))
    # Labels of what the replay can alert on: others' verdicts on entities this one does not
    # watch would count as events it missed.
    labels = labels.where(
        lambda e: (
            in_focus(focus, e.entity_kind, e.entity)
            and subscription.filter.matches(e.entity_kind, e.entity)
            and e.start < span_end
            and e.end > span_start
        )
    )
    families = group_by_end(matched)
    results: list[SettingResult] = []
    for setting in settings:
        events = replay(families, subscription.model_copy(update={"detector": setting.params}), now)
        events = tuple(e for e in events if in_focus(focus, e.entity_kind, e.entity))
        results.append(evaluate(setting, events, labels, days))
        if progress is not None:
            progress(len(results), len(settings))
    best = recommend(results, max_alerts_per_day, subscription.detector)
    return BacktestReport(
        subscription_id=subscription.id,
        focus=focus,
        base=subscription.detector,
        start=span_start,
        end=span_end,
        days=days,
        windows=len(matched),
        labels=labels,
        max_alerts_per_day=max_alerts_per_day,
        results=tuple(results),
        recommended=best.setting.name if best else None,
        recommendation=_explain(best, results, max_alerts_per_day, days),
        created_at=now,
    )
