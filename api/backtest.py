"""Backtest orchestration: load history and labels, run the grid (alerts.backtest), write a report.

Used by `finpulse backtest` (api/backtest_cli.py) and `POST /api/v1/backtest`
(api/backtest_routes.py). History comes from the store (the windows the live
stream emitted, or windows rebuilt from stored scored items) or from a replay
file classified here; labels from a file, inline, or analysts' feedback.

    request = BacktestRequest(entity="ticker:ACME", grid="min_rise=0.1,0.2")
    outcome = run_from_store(request, settings, store, now=utcnow())
    write_report(outcome, Path("out"))       # report.json, report.md, trend.png
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from alerts.backtest import (
    ADHOC_SUBSCRIPTION,
    BacktestError,
    BacktestReport,
    GridValue,
    LabelledEvent,
    Labels,
    LiveCheck,
    Setting,
    expand_grid,
    group_by_end,
    in_focus,
    parse_grid,
    rebuild_windows,
    refused_settings,
    replay,
    replays,
    run_backtest,
    story_span,
)
from alerts.baseline import BaselineParams
from alerts.live import live_subscriptions
from alerts.subscriptions import WILDCARD, DetectorParams, Subscription, SubscriptionFilter, same_entity
from alerts.windows import WindowSpec, window_specs
from finpulse.errors import ConfigError
from finpulse.schema import (
    EntityKind,
    NewsItem,
    ScoredItem,
    WindowAggregate,
    WindowKind,
    describe_validation_error,
    utcnow,
)
from finpulse.schema import parse_entity as parse_entity_text
from finpulse.settings import Settings
from store import MAX_LIMIT, AlertRecord, AlertsQuery, Changed, HistoryStore, Query
from store.queries import earlier
from store.records import UtcTime, as_utc

if TYPE_CHECKING:
    from ingest.companies import CompanyNames

logger = logging.getLogger(__name__)

# Items classified per model call when scoring a replay file.
CLASSIFY_BATCH = 64
# A resolve is looked for this long after its alert was created (feedback labels' episodes).
EPISODE_SEARCH = timedelta(days=30)
# Windows one backtest may replay: a week of 5-minute windows for ~200 entities.
MAX_WINDOWS = 500_000
# A window's weight in a baseline below which a rebuild may leave it out (`warm_up`).
BASELINE_FORGOTTEN = 0.001
# Windows times settings, each window replayed once per setting (~0.1 ms each on a 2-core VM): a
# request the API runs while its caller waits, so it ends within minutes.
MAX_REPLAYED = 5_000_000
Progress = Callable[[int, int], None]


class NoHistory(BacktestError):
    """The store or replay holds no windows for what the request names (an API 404)."""


class BacktestRequest(BaseModel):
    """What to backtest: the CLI's options and the API's body."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={  # the API docs' example body (tests validate it)
            "examples": [
                {
                    "entity": "ticker:ACME",
                    "start": "2026-03-01T00:00:00Z",
                    "end": "2026-03-08T00:00:00Z",
                    "grid": {"min_rise": [0.1, 0.15, 0.2], "significance": [0.001, 0.01]},
                    "max_alerts_per_day": 2,
                }
            ]
        },
    )

    entity: str | None = Field(
        default=None, description="KIND:NAME (topic, ticker, source), e.g. ticker:ACME", max_length=240
    )
    subscription_id: str | None = Field(
        default=None, description="replay this live subscription (filter, mutes, cooldown, parameters)"
    )
    start: UtcTime | None = Field(
        default=None, description="inclusive window start, ISO 8601 (default end - 7 days)"
    )
    end: UtcTime | None = Field(default=None, description="exclusive, ISO 8601 (default now)")
    grid: dict[str, list[GridValue]] | str = Field(
        default_factory=dict,
        description='detector parameters to try: {"min_rise": [0.1, 0.2]} or "min_rise=0.1,0.2 ..."',
    )
    labels: list[LabelledEvent] | None = Field(
        default=None, description="labelled events (every real event in the range); default: analyst feedback"
    )
    labels_from_feedback: bool = Field(
        default=True, description="use analysts' tp/fp verdicts when no labels"
    )
    max_alerts_per_day: float | None = Field(
        default=None, gt=0, description="target rate for the recommendation"
    )
    rebuild: bool = Field(
        default=False, description="rebuild windows from stored scored items with the current window settings"
    )

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if self.entity is None and self.subscription_id is None:
            raise ValueError("give an entity (KIND:NAME) or a subscription_id")
        if self.entity is not None:
            parse_entity(self.entity)
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError(f"start ({self.start.isoformat()}) must be before end ({self.end.isoformat()})")
        return self

    def focus(self) -> tuple[EntityKind, str] | None:
        return parse_entity(self.entity) if self.entity else None

    def grid_settings(self, base: DetectorParams) -> list[Setting]:
        return expand_grid(self._grid(), base)

    def refused(self, base: DetectorParams) -> list[str]:
        """The grid's combinations the detector refuses (left out of the run), each with why."""
        return refused_settings(self._grid(), base)

    def _grid(self) -> dict[str, list[GridValue]]:
        return parse_grid(self.grid) if isinstance(self.grid, str) else self.grid


@dataclass(frozen=True)
class BacktestOutcome:
    """A report with the windows it replayed (for the plot)."""

    report: BacktestReport
    windows: list[WindowAggregate]

    def plot_entity(self) -> tuple[EntityKind, str] | None:
        """The focus entity, else the one with the most fired alerts, else the busiest."""
        if self.report.focus is not None:
            return self.report.focus
        fired = Counter((e.entity_kind, e.entity) for r in self.report.results for e in r.fired)
        if fired:
            return fired.most_common(1)[0][0]
        busiest = Counter((w.entity_kind, w.entity) for w in self.windows)
        return busiest.most_common(1)[0][0] if busiest else None

    def png(self) -> bytes:
        entity = self.plot_entity()
        if entity is None:
            raise BacktestError("nothing to plot: the backtest replayed no windows")
        report = self.report
        from alerts.backtest_plot import plot_backtest  # matplotlib: loaded by the first chart

        return plot_backtest(
            self.windows, report.results, entity, labels=report.labels, recommended=report.recommended
        )


def parse_entity(text: str) -> tuple[EntityKind, str]:
    """`"ticker:ACME"` -> ("ticker", "ACME"); raises BacktestError naming the kinds."""
    try:
        return parse_entity_text(text)
    except ValueError as exc:
        raise BacktestError(str(exc)) from None


def load_grid_file(path: Path) -> dict[str, list[GridValue]]:
    """A TOML grid: `min_rise = [0.1, 0.2]` at top level or under `[grid]`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BacktestError(f"cannot read grid file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise BacktestError(f"grid file {path} is not valid TOML: {exc}") from exc
    table = data.get("grid", data)
    if not isinstance(table, dict):
        raise BacktestError(f"grid file {path}: [grid] must be a table of parameter = [values]")
    grid: dict[str, list[GridValue]] = {}
    for key, value in table.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, int | float | str) for v in values):
            raise BacktestError(f"grid file {path}: {key} must be a number, a string or a list of them")
        grid[key] = values
    return grid


# -- subscription ---------------------------------------------------------------------------------


def resolve_subscription(
    request: BacktestRequest, settings: Settings, store: HistoryStore | None
) -> Subscription:
    """The live subscription named by the request, or an ad-hoc one watching only its entity."""
    if request.subscription_id is None:
        kind, name = parse_entity(cast(str, request.entity))
        field = {"topic": "topics", "ticker": "tickers", "source": "sources"}[kind]
        return Subscription(
            id=ADHOC_SUBSCRIPTION,
            channel=ADHOC_SUBSCRIPTION,
            filter=SubscriptionFilter.model_validate({field: [name]}),
            detector=DetectorParams(),
        )
    sid = request.subscription_id
    path = settings.alerts.subscriptions_file
    try:
        subs = live_subscriptions(path, store)
    except ConfigError as exc:
        raise BacktestError(str(exc)) from exc
    for sub in subs:
        if sub.id == sid:
            return _watching_focus(sub, request.focus())
    known = ", ".join(s.id for s in subs) or "none"
    raise BacktestError(
        f"no subscription {sid!r} in the store or {path} (invalid stored ones are skipped, see the log); "
        f"known: {known}"
    )


def _watching_focus(sub: Subscription, focus: tuple[EntityKind, str] | None) -> Subscription:
    """The subscription, if it watches the entity asked for: of one it does not, its replay would
    show a clean run, not that it can never alert on it."""
    if focus is not None and not sub.filter.matches(*focus):
        raise BacktestError(
            f"subscription {sub.id!r} does not watch {focus[0]} {focus[1]}: it watches "
            f"{sub.filter.summary()}; give one of those, or no entity (all of them)"
        )
    return sub


def replayable(sub: Subscription) -> tuple[Subscription, tuple[str, ...]]:
    """The subscription to replay and what the report notes of it: one switched off (to be
    retuned, say) is replayed as if on."""
    if sub.enabled:
        return sub, ()
    note = f"subscription {sub.id!r} is off (enabled = false): replayed as if on"
    return sub.model_copy(update={"enabled": True}), (note,)


def apply_recommended(
    report: BacktestReport,
    request: BacktestRequest,
    settings: Settings,
    store: HistoryStore,
    *,
    force: bool = False,
) -> dict[str, tuple[object, object]]:
    """Write the recommended setting's detector parameters into the live subscription (the
    store's copy, which the worker and the dispatcher reload); returns each changed parameter
    as (old, new), nothing when the subscription already uses them.

    Raises:
        BacktestError: nothing recommended, or (unless `force`) no labelled real event in the
            range: the recommendation then rests on alerts/day alone.
    """  # fmt: skip
    if request.subscription_id is None:
        raise BacktestError("only a live subscription's backtest can be applied: use --subscription ID")
    if report.recommended is None:
        raise BacktestError(f"nothing applied: {report.recommendation}")
    best = report.result(report.recommended)
    if best.recall is None and not force:
        raise BacktestError(
            "nothing applied: the range holds no labelled real event, so the recommendation rests on "
            "alerts/day alone; label events (--labels FILE, or mark past alerts real or false in Slack "
            "or the dashboard) and run it again, or give --force"
        )
    sub = resolve_subscription(request, settings, store)  # imports the file first, if it changed
    # The stored copy and its time: written only if nothing (a mute from a Slack link) came since.
    record = store.get_subscription(sub.id)
    if record is not None:
        sub = Subscription.model_validate(record.body)
    params = best.setting.params
    old, new = sub.detector.model_dump(mode="json"), params.model_dump(mode="json")
    changed = {name: (old.get(name), value) for name, value in new.items() if old.get(name) != value}
    if changed:
        body = sub.model_copy(update={"detector": params}).stored_body()
        try:
            store.put_subscription(sub.id, body, read_at=record.updated_at if record else None)
        except Changed as exc:
            raise BacktestError(f"nothing applied: {exc}; run it again") from exc
    return changed


# -- history ------------------------------------------------------------------------------------------


def stored_windows(
    store: HistoryStore,
    request: BacktestRequest,
    subscription: Subscription,
    kinds: set[WindowKind],
    specs: Mapping[WindowKind, WindowSpec],
) -> list[WindowAggregate]:
    """The windows the live stream stored, as it tested them (before late stories): the entity's,
    or all the subscription's entities' (its test family; theirs alone are read); those stored
    before windows carried their step get their kind's (`specs`), as live had it."""
    kind, name = request.focus() or (None, None)
    window_kind = next(iter(kinds)) if len(kinds) == 1 else None
    query = Query(start=request.start, end=request.end)  # default range: the last week
    entities = None
    if request.subscription_id is not None:  # the whole family, as live: the entities it watches
        kind, name = None, None
        entities = watched(subscription, store.window_entities(query.start, query.end))
    elif kind is not None and name is not None:  # named in any case: the store's spelling(s) of it
        stored = store.window_entities(query.start, query.end)
        entities = [(k, e) for k, e in stored if k == kind and same_entity(kind, e, name)]
        kind, name = None, None
    windows = store.window_series(
        kind,
        name,
        start=query.start,
        end=query.end,
        window_kind=window_kind,
        as_tested=True,
        entities=entities,
    )
    return [
        w if w.step_s else w.model_copy(update={"step_s": specs[w.window_kind].step_s})
        for w in windows
        if replays(subscription, kinds, w)
    ]


def watched(
    subscription: Subscription, entities: Iterable[tuple[EntityKind, str]]
) -> list[tuple[EntityKind, str]] | None:
    """Of the stored `entities`, those the subscription's filter matches, in the store's spelling
    (the store compares names exactly, a filter in any case), so that only theirs are read; None
    (read all) when it lists '*': every entity of a kind, too many to name."""
    watches = subscription.filter
    if WILDCARD in (*watches.topics, *watches.tickers, *watches.sources):
        return None
    return [(kind, entity) for kind, entity in entities if watches.matches(kind, entity)]


def windows_from_items(
    items: Sequence[ScoredItem], settings: Settings, subscription: Subscription, kinds: set[WindowKind],
    start: datetime | None = None,
) -> list[WindowAggregate]:  # fmt: skip
    """Rebuild the windows the stream would emit for these items (the subscription's entities);
    those starting from `start`, the items before it warming the baselines up (`warm_up`)."""
    specs = [spec for kind, spec in window_specs(settings.alerts).items() if kind in kinds]
    windows = rebuild_windows(
        items,
        specs,
        BaselineParams.from_settings(settings.alerts),
        top_n=settings.alerts.top_headlines,
        keep=subscription.filter.matches,
    )
    return [w for w in windows if start is None or w.window_start >= start]


def warm_up(settings: Settings) -> timedelta:
    """The history before a rebuilt range that its baselines need to start as live had them: until
    the oldest window weighs under 0.1% in the moving average (135 windows at alpha 0.05)."""
    alerts = settings.alerts
    forgotten = math.ceil(math.log(BASELINE_FORGOTTEN) / math.log(1 - alerts.baseline_alpha))
    steps = max(forgotten, alerts.baseline_min_windows)
    return max(timedelta(seconds=s.step_s * steps + s.size_s) for s in window_specs(alerts).values())


class PredictionLike(Protocol):
    topic: str
    topic_probs: dict[str, float]
    sentiment: str
    sentiment_probs: dict[str, float]
    sentiment_score: float


class TextClassifier(Protocol):
    """What scoring a replay needs of `model.engine.Classifier`."""

    @property
    def version(self) -> str: ...

    def predict(self, texts: list[str]) -> Sequence[PredictionLike]: ...


def read_replay_items(path: Path, names: CompanyNames | None = None) -> list[NewsItem]:
    """The valid items of a replay file (JSONL or CSV, `finpulse ingest replay`'s format), with
    the tickers of the companies their titles name (`names`), as ingestion finds them."""
    from ingest.replay import read_replay

    if not path.is_file():
        raise BacktestError(f"replay file {path} does not exist")
    rows = read_replay(path, names=names)
    bad = [r for r in rows if r.item is None]
    for row in bad[:5]:
        logger.warning("replay row skipped path=%s: %s", path, row.error)
    items = [r.item for r in rows if r.item is not None]
    if not items:
        raise BacktestError(
            f"replay file {path} has no valid rows ({len(bad)} invalid); see the ingest replay format"
        )
    return items


def score_items(
    items: Sequence[NewsItem], classifier: TextClassifier, *, batch: int = CLASSIFY_BATCH,
    progress: Progress | None = None,
) -> list[ScoredItem]:  # fmt: skip
    """Classify items in batches, as the stream's `score` agent does."""
    scored: list[ScoredItem] = []
    for at in range(0, len(items), batch):
        chunk = items[at : at + batch]
        predictions = classifier.predict([item.text for item in chunk])
        now = utcnow()
        for item, pred in zip(chunk, predictions, strict=True):
            scored.append(
                ScoredItem.model_validate(
                    {
                        "item": item,
                        "topic": pred.topic,
                        "topic_probs": pred.topic_probs,
                        "sentiment": pred.sentiment,
                        "sentiment_probs": pred.sentiment_probs,
                        "sentiment_score": pred.sentiment_score,
                        "model_version": classifier.version,
                        "scored_at": now,
                    }
                )
            )
        if progress is not None:
            progress(len(scored), len(items))
    return scored


# -- labels ---------------------------------------------------------------------------------------------


def _utc_times(row: Any) -> Any:
    """A label's start and end written without an offset are UTC, as --since and --until are."""
    if not isinstance(row, dict):
        return row
    out = dict(row)
    for key in ("start", "end"):
        with suppress(KeyError, TypeError, ValueError):  # missing or not a time: the validation says so
            out[key] = as_utc(datetime.fromisoformat(out[key]))
    return out


def read_labels_file(path: Path) -> Labels:
    """Labelled events from JSON (a list, or {"events": [...]}) or CSV.

    Fields / columns: entity_kind, entity, start, end (ISO 8601) and optionally verdict (tp/fp).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise BacktestError(f"cannot read labels file {path}: {exc.strerror}") from exc
    if path.suffix.lower() == ".csv":
        rows: list[Any] = list(csv.DictReader(io.StringIO(text)))
        where = "row {}"
        offset = 2
    else:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BacktestError(f"labels file {path} is not JSON (or name it .csv): {exc}") from exc
        rows = data.get("events", []) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise BacktestError(f'labels file {path}: expected a list of events or {{"events": [...]}}')
        where, offset = "event #{}", 1
    events = []
    for i, row in enumerate(rows):
        try:
            clean = {k: v for k, v in row.items() if v not in ("", None)} if isinstance(row, dict) else row
            events.append(LabelledEvent.model_validate(_utc_times(clean)))
        except ValidationError as exc:
            raise BacktestError(
                f"labels file {path}, {where.format(i + offset)}: {describe_validation_error(exc)} "
                "(columns: entity_kind, entity, start, end[, verdict])"
            ) from exc
    return Labels(events=tuple(events), complete=True)


def feedback_labels(store: HistoryStore, start: datetime | None, end: datetime | None) -> Labels:
    """Analysts' verdicts on past fired alerts; a tp covers the alert's episode (to its resolve)."""
    query = Query(start=start, end=end)
    events: dict[tuple[object, ...], LabelledEvent] = {}
    for labelled in store.labelled_alerts(query.start, query.end):
        alert = store.get_alert(labelled.alert_id)
        if alert is None or alert.state != "fired":
            continue
        episode_end = None
        if labelled.verdict == "tp":
            resolves = store.alert_events(
                AlertsQuery(
                    state="resolved", subscription_id=alert.subscription_id, entity_kind=alert.entity_kind,
                    entity=alert.entity, start=alert.created_at, end=alert.created_at + EPISODE_SEARCH,
                )
            )  # fmt: skip
            episode_end = next((r.window_end for r in resolves if r.fired_alert_id == alert.alert_id), None)
        label = LabelledEvent.from_alert(alert, labelled.verdict, episode_end)
        events.setdefault((label.entity_kind, label.entity, label.start, label.end, label.verdict), label)
    return Labels(events=tuple(events.values()), complete=False)


# -- run ----------------------------------------------------------------------------------------------------


# Where a backtest's history came from, as its report says.
STORED, REBUILT, REPLAYED = "stored windows", "windows rebuilt from stored stories", "replayed stories"


def run_windows(
    request: BacktestRequest,
    windows: list[WindowAggregate],
    subscription: Subscription,
    labels: Labels,
    now: datetime,
    progress: Progress | None = None,
    stories: tuple[datetime, datetime] | None = None,
    history: str = STORED,
    notes: tuple[str, ...] = (),
) -> BacktestOutcome:
    """The grid over already loaded windows; `stories`: when the replay's first and last story of
    the range (any entity's) were published; `history`: where the windows came from; `notes`:
    for the report."""
    if len(windows) > MAX_WINDOWS:
        raise BacktestError(
            f"{len(windows)} windows to replay (at most {MAX_WINDOWS}): narrow the range or entity"
        )
    settings = request.grid_settings(subscription.detector)
    if len(windows) * len(settings) > MAX_REPLAYED:
        raise BacktestError(
            f"{len(windows):,} windows x {len(settings)} settings is {len(windows) * len(settings):,} "
            f"window replays (at most {MAX_REPLAYED:,}, about 10 minutes): narrow the range, the entity "
            "or the grid"
        )
    report = run_backtest(
        windows,
        subscription,
        settings,
        labels,
        now,
        max_alerts_per_day=request.max_alerts_per_day,
        stories=stories,
        focus=request.focus(),
        progress=progress,
    )
    skipped = tuple(request.refused(subscription.detector))
    report = report.model_copy(update={"asked": _asked(request, history), "skipped": skipped, "notes": notes})
    logger.info(
        "backtest subscription=%s windows=%d settings=%d recommended=%s",
        report.subscription_id, report.windows, len(report.results), report.recommended,
    )  # fmt: skip
    return BacktestOutcome(report=report, windows=windows)


def _asked(request: BacktestRequest, history: str) -> dict[str, Any]:
    """The request as run, for the report: a stored range's defaults filled in (the week "now"
    meant; a replay without a range is its whole file)."""
    asked = request.model_dump(mode="json", exclude_none=True, exclude={"labels"}) | {"history": history}
    if history != REPLAYED:
        start, end = (as_utc(t).isoformat() for t in Query(start=request.start, end=request.end).bounds())
        asked |= {"start": start, "end": end}
    return asked


def labels_for(request: BacktestRequest, store: HistoryStore | None, labels: Labels | None = None) -> Labels:
    """Explicit labels win; else inline ones; else analysts' feedback (if a store); else none."""
    if labels is not None:
        return labels
    if request.labels is not None:
        return Labels(events=tuple(request.labels), complete=True)
    if request.labels_from_feedback and store is not None:
        return feedback_labels(store, request.start, request.end)
    return Labels()


def _held(store: HistoryStore) -> str:
    """What the store holds, for an error that a range found nothing: "the store holds stories
    from 2026-03-02 09:00 to 2026-03-02 15:00 UTC"."""
    held = store.stories_span(datetime(1970, 1, 1, tzinfo=UTC), None)
    if held is None:
        return "the store holds no stories yet"
    return f"the store holds stories from {held[0]:%Y-%m-%d %H:%M} to {held[1]:%Y-%m-%d %H:%M} UTC"


def _tumbling(settings: Settings) -> WindowSpec:
    return window_specs(settings.alerts)["tumbling"]


def _kinds(request: BacktestRequest, subscription: Subscription) -> set[WindowKind]:
    return {s.params.window for s in request.grid_settings(subscription.detector)}


def run_from_store(
    request: BacktestRequest, settings: Settings, store: HistoryStore, *, now: datetime,
    labels: Labels | None = None, progress: Progress | None = None,
) -> BacktestOutcome:  # fmt: skip
    """Backtest over the store's history: its windows, or windows rebuilt from its scored items."""
    subscription, notes = replayable(resolve_subscription(request, settings, store))
    kinds = _kinds(request, subscription)
    if request.rebuild:
        query = Query(start=request.start, end=request.end)  # default range: the last week
        assert query.start is not None  # set by its validator
        since = earlier(query.start, warm_up(settings))  # a range from year 1 has no history before
        entities = watched(subscription, store.story_entities(since, query.end))
        items = store.scored_series(since, query.end, entities=entities)
        windows = windows_from_items(items, settings, subscription, kinds, query.start)
    else:
        windows = stored_windows(store, request, subscription, kinds, window_specs(settings.alerts))
    if not windows:
        raise NoHistory(
            f"no stored windows for {request.entity or request.subscription_id} in the range; "
            f"{_held(store)}; check the entity's name (`finpulse history entities --kind KIND`, "
            "GET /api/v1/entities) and the range"
        )
    published = store.stories_span(request.start, request.end)
    stories = story_span(*published, _tumbling(settings)) if published else None
    labels = labels_for(request, store, labels)
    history = REBUILT if request.rebuild else STORED
    outcome = run_windows(request, windows, subscription, labels, now, progress, stories, history, notes)
    if request.subscription_id is None:
        return outcome
    check = live_check(store, outcome, subscription, now)
    return replace(outcome, report=outcome.report.model_copy(update={"live": check}))


def live_check(
    store: HistoryStore, outcome: BacktestOutcome, subscription: Subscription, now: datetime
) -> LiveCheck | None:
    """The subscription's setting in use, replayed, against the alerts it sent in the range (None:
    the grid replayed none of its window kind)."""
    report = outcome.report
    current = next((r for r in report.results if r.setting.params == subscription.detector), None)
    if current is not None:
        replayed = current.events
    elif any(w.window_kind == subscription.detector.window for w in outcome.windows):
        replayed = tuple(
            e
            for e in replay(group_by_end(outcome.windows), subscription, now)
            if in_focus(report.focus, e.entity_kind, e.entity)
        )
    else:
        return None
    kind, entity = report.focus or (None, None)  # the replay's events are the focus entity's alone
    if report.focus is not None:  # named as stored (written in another case, say): the store compares exactly
        entity = next(
            (w.entity for w in outcome.windows if in_focus(report.focus, w.entity_kind, w.entity)), entity
        )
    query = AlertsQuery(
        subscription_id=subscription.id, state="fired", timed_by="window", entity_kind=kind, entity=entity,
        start=report.start, end=report.end, limit=MAX_LIMIT,
    )  # fmt: skip
    sent = [a.alert_id for a in store.fetch(query) if isinstance(a, AlertRecord)]
    return LiveCheck.of(sent, replayed)


def run_from_items(
    request: BacktestRequest, settings: Settings, items: Sequence[ScoredItem], *, now: datetime,
    labels: Labels | None = None, store: HistoryStore | None = None, progress: Progress | None = None,
) -> BacktestOutcome:  # fmt: skip
    """Backtest over scored items (a classified replay file)."""
    subscription, notes = replayable(resolve_subscription(request, settings, store))
    kinds = _kinds(request, subscription)
    lo, hi = request.start, request.end

    def published_from(since: datetime | None) -> list[ScoredItem]:
        return [
            s for s in items
            if (since is None or s.item.published_at >= since) and (hi is None or s.item.published_at < hi)
        ]  # fmt: skip

    # The file's stories before the range warm the baselines up.
    windows = windows_from_items(
        published_from(None if lo is None else lo - warm_up(settings)), settings, subscription, kinds, lo
    )
    kept = published_from(lo)
    if not windows:
        raise BacktestError(
            f"the replay has no items for {request.entity or request.subscription_id} in the range"
        )
    published = [s.item.published_at for s in kept]
    stories = story_span(min(published), max(published), _tumbling(settings))
    labels = labels_for(request, store, labels)
    return run_windows(request, windows, subscription, labels, now, progress, stories, REPLAYED, notes)


def grid_from_option(value: str | None) -> dict[str, list[GridValue]] | str:
    """The CLI's --grid: inline `name=v1,v2 ...`, or the path of a TOML grid file."""
    if not value:
        return {}
    if "=" in value and not value.lower().endswith(".toml"):
        return value
    return load_grid_file(Path(value))
