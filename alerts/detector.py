"""The spike detector: closed windows + subscriptions + states -> alert events + states.

One pure function, `detect`, used by the live stream and by the backtest. It
does no I/O; time comes in as arguments (event time from the windows, `now`
only stamps `created_at`), so replaying history gives the same events with the
same ids.

Method (README "Detector"): per subscription, the windows it matches that end
at the same instant form one family. Each window with a trusted baseline and
at least `min_volume` stories is tested: one-sided binomial test of its
negative count against the baseline rate (floored at `baseline_floor`), the
p-values adjusted across the family (Benjamini-Hochberg or Holm). A quiet
entity fires when the adjusted p <= `significance`, its negative share exceeds
the baseline by `min_rise`, no mute is active at the window's end, and the
cooldown after its last calm resolve is over. A fire a mute holds back keeps the
baseline it was tested against until a calm window: the baseline's moving average
takes the spike in meanwhile, and would hide one that outlasts the mute. A firing
entity resolves after `resolve_windows` consecutive calm windows (share <= the
baseline it fired against + `resolve_rise`, or volume under `min_volume`):
hysteresis, so it does not flap; or after UNWATCHED_WINDOWS windows its
subscription no longer tests (switched off, its filter or window kind changed).

Calling pattern (stream: one call per batch of closed windows; backtest: one
call per window end, in time order)::

    result = detect(windows, subscriptions, states, now)
    states.update(result.states)          # write back (Faust table / dict)
    for event in result.events: publish(event)  # key: event.alert_id

Keep states in a table keyed by `state_key(...)`. A window not newer than the
state's last evaluated window is ignored, so redelivered windows and late
revisions change nothing and emit nothing. Pass all windows ending together in
one call: the multiple-testing family is what one call sees.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, cast

from pydantic import BaseModel, ConfigDict, Field

from finpulse.schema import AlertEvent, EntityKind, Resolution, WindowAggregate, WindowKind

from .stats import adjust, binomial_p
from .subscriptions import DetectorParams, Subscription

# Windows a firing alert's subscription no longer tests (switched off, its filter or window kind
# changed) before the alert resolves as "unwatched": an hour of 5-minute windows, so an edit
# undone soon does not end it.
UNWATCHED_WINDOWS = 12


class DetectorState(BaseModel):
    """One (subscription, entity, window kind)'s alert state; JSON-serialisable table state."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # a newer worker's fields (rolling upgrade)

    status: Literal["ok", "firing"] = "ok"
    fired_alert_id: str | None = None
    fired_baseline: float | None = Field(default=None, ge=0, le=1)
    calm_windows: int = Field(default=0, ge=0)
    # Whether the calm run so far held a window with stories enough to test: then the resolve
    # starts a cooldown; one that only went quiet (no or too few stories) does not, so a burst
    # right after it fires.
    calm_seen: bool = False
    # Windows in a row its subscription did not test (switched off, its filter changed).
    unwatched_windows: int = Field(default=0, ge=0)
    # The end of the last resolve that starts a cooldown.
    resolved_at: datetime | None = None
    last_window_end: datetime | None = None
    # The baseline a fire held back by a mute was tested against, until a calm window.
    held_baseline: float | None = Field(default=None, ge=0, le=1)


class Detection(NamedTuple):
    """What `detect` returns: the events to publish and the states to write back."""

    events: tuple[AlertEvent, ...]
    states: dict[str, DetectorState]


class _Test(NamedTuple):
    window: WindowAggregate
    p_value: float | None  # adjusted; None when not tested (no baseline / too few stories)


def state_key(subscription_id: str, kind: EntityKind, entity: str, window_kind: WindowKind) -> str:
    """The key of a DetectorState in the stream's table: `<subscription>|<kind>:<entity>|<window>`.

    Topic labels contain '|' ("Energy | Oil"), so the entity is written with '%' and '|'
    percent-encoded: the key splits on '|' into exactly three parts, the middle one a
    stable per-entity key. `parse_state_key` inverts it.
    """
    return f"{subscription_id}|{kind}:{escape_entity(entity)}|{window_kind}"


def escape_entity(entity: str) -> str:
    """An entity name without '|' (a state key's separator): '%' and '|' percent-encoded."""
    return entity.replace("%", "%25").replace("|", "%7C")


def parse_state_key(key: str) -> tuple[str, EntityKind, str, WindowKind]:
    """(subscription id, entity kind, entity, window kind) of a `state_key`."""
    subscription_id, middle, window_kind = key.split("|")
    kind, _, safe = middle.partition(":")
    entity = safe.replace("%7C", "|").replace("%25", "%")
    return subscription_id, cast(EntityKind, kind), entity, cast(WindowKind, window_kind)


def alert_id(
    state: Literal["fired", "resolved"], subscription_id: str, window: WindowAggregate, fired_id: str = ""
) -> str:
    """Deterministic dedup key: a fired alert by its first window, a resolve by its alert."""
    if state == "fired":
        parts = ["fired", subscription_id, window.entity_kind, window.entity, window.window_kind]
        parts.append(window.window_end.isoformat())
    else:
        parts = ["resolved", fired_id]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def effective_baseline(window: WindowAggregate, params: DetectorParams) -> float | None:
    """The baseline rate the test uses: the window's baseline floored, or None if untrusted."""
    if window.baseline_negative_share is None:
        return None
    return max(window.baseline_negative_share, params.baseline_floor)


def evaluate_family(windows: Sequence[WindowAggregate], params: DetectorParams) -> list[_Test]:
    """Test every window of one family and adjust the p-values across it."""
    tested: list[int] = []
    raw: list[float] = []
    for i, w in enumerate(windows):
        rate = effective_baseline(w, params)
        if rate is not None and w.count >= params.min_volume:
            tested.append(i)
            raw.append(binomial_p(w.negative_count, w.count, rate))
    adjusted: list[float | None] = [None] * len(windows)
    for i, q in zip(tested, adjust(raw, params.correction), strict=True):
        adjusted[i] = q
    return [_Test(w, q) for w, q in zip(windows, adjusted, strict=True)]


def detect(
    windows: Sequence[WindowAggregate],
    subscriptions: Sequence[Subscription],
    states: Mapping[str, DetectorState],
    now: datetime,
) -> Detection:
    """Evaluate closed windows for every subscription they match.

    Args:
        windows: closed windows (any entities, kinds and ends; usually those ending together).
        subscriptions: all subscriptions; disabled ones and non-matching windows are skipped.
        states: current states by `state_key`; missing keys start as `DetectorState()`.
        now: wall-clock time, only stamped into `AlertEvent.created_at`.
    Returns:
        events in a deterministic order, and the new state of every evaluated key.
    """
    events: list[AlertEvent] = []
    new_states: dict[str, DetectorState] = {}
    firing: set[str] | None = None  # the subscriptions with a firing state, found when needed
    for sub in subscriptions:
        families: dict[datetime, dict[str, WindowAggregate]] = defaultdict(dict)
        unwatched: list[WindowAggregate] = []
        for w in windows:
            if not sub.matches(w.entity_kind, w.entity, w.window_kind):
                unwatched.append(w)
                continue
            family = families[w.window_end]
            previous = family.get(w.key)
            if previous is None or w.revision < previous.revision:
                family[w.key] = w  # its first revision: a later one in the same batch is late stories
        if unwatched:
            if firing is None:
                firing = {k.partition("|")[0] for k, s in states.items() if s.status == "firing"}
            if sub.id in firing:
                resolves, kept = _unwatched(sub, unwatched, new_states, states, now)
                events += resolves
                new_states |= kept
        for end in sorted(families):
            family_windows = [
                _as_held(families[end][k], new_states, states, sub.id) for k in sorted(families[end])
            ]
            for test in evaluate_family(family_windows, sub.detector):
                key = state_key(sub.id, test.window.entity_kind, test.window.entity, test.window.window_kind)
                state = new_states.get(key) or states.get(key) or DetectorState()
                quiet, resolved = resolve_quiet(state, test.window, sub, now)
                event, new_state = step(resolved, test.window, test.p_value, sub, now)
                if new_state is not state:
                    new_states[key] = new_state
                events += [e for e in (quiet, event) if e is not None]
    return Detection(tuple(events), new_states)


def _as_held(
    window: WindowAggregate,
    new_states: Mapping[str, DetectorState],
    states: Mapping[str, DetectorState],
    subscription_id: str,
) -> WindowAggregate:
    """`window` with the baseline a held-back fire was tested against, when that is lower."""
    key = state_key(subscription_id, window.entity_kind, window.entity, window.window_kind)
    state = new_states.get(key) or states.get(key)
    held = state.held_baseline if state is not None and state.status == "ok" else None
    if held is None or (
        window.baseline_negative_share is not None and window.baseline_negative_share <= held
    ):
        return window
    return window.model_copy(update={"baseline_negative_share": held})


def _unwatched(
    sub: Subscription,
    windows: Sequence[WindowAggregate],
    new_states: Mapping[str, DetectorState],
    states: Mapping[str, DetectorState],
    now: datetime,
) -> tuple[list[AlertEvent], dict[str, DetectorState]]:
    """Firing alerts of entities `sub` does not watch now (it is off, or its filter or window kind
    changed) keep up with their windows, untested, and resolve as "unwatched" after UNWATCHED_WINDOWS
    of them (left open, they were "still open" in every digest). Watched again sooner, they resolve
    on the windows they see, not as "quiet" over the time they were not watched."""
    events: list[AlertEvent] = []
    seen: dict[str, DetectorState] = {}
    for w in sorted(windows, key=lambda w: w.window_end):
        key = state_key(sub.id, w.entity_kind, w.entity, w.window_kind)
        state = seen.get(key) or new_states.get(key) or states.get(key)
        if state is None or state.status != "firing" or state.last_window_end is None:
            continue
        if w.window_end <= state.last_window_end:
            continue
        state = state.model_copy(
            update={"last_window_end": w.window_end, "unwatched_windows": state.unwatched_windows + 1}
        )
        if state.unwatched_windows >= UNWATCHED_WINDOWS:
            event, state = _resolved(state, w, None, sub, now, "unwatched")
            events.append(event)
        seen[key] = state
    return events, seen


def step(
    state: DetectorState, window: WindowAggregate, p_value: float | None, sub: Subscription, now: datetime
) -> tuple[AlertEvent | None, DetectorState]:
    """One entity's transition for one window, given its adjusted p-value (None: not tested)."""
    if state.last_window_end is not None and window.window_end <= state.last_window_end:
        return None, state
    params = sub.detector
    seen = state.model_copy(update={"last_window_end": window.window_end})
    if state.status == "firing":
        return _maybe_resolve(seen, window, p_value, sub, now)
    rate = effective_baseline(window, params)
    if not _fires(state, window, p_value, sub):
        # A held fire ends on a window with stories enough that is calm, or past the mute.
        if state.held_baseline is not None and rate is not None and window.count >= params.min_volume:
            calm = window.negative_share <= rate + params.resolve_rise
            if calm or not sub.muted(window.window_end, window.entity_kind, window.entity):
                return None, seen.model_copy(update={"held_baseline": None})
        return None, seen
    assert rate is not None  # _fires checked it
    assert p_value is not None
    if sub.muted(window.window_end, window.entity_kind, window.entity):
        return None, seen.model_copy(update={"held_baseline": rate})
    fired_id = alert_id("fired", sub.id, window)
    event = _event("fired", fired_id, window, p_value, rate, sub, now)
    update = {"status": "firing", "fired_alert_id": fired_id, "fired_baseline": rate, "calm_windows": 0}
    return event, seen.model_copy(update=update | {"held_baseline": None})


def resolve_quiet(
    state: DetectorState, window: WindowAggregate, sub: Subscription, now: datetime
) -> tuple[AlertEvent | None, DetectorState]:
    """A firing alert whose entity had no stories in the `resolve_windows` windows that would have
    followed its last one (a step apart: hopping windows overlap) resolves as of the end of those,
    before `window` is evaluated (a new episode may fire). A window without stories is never
    emitted: counting only those that arrive kept such an alert open until the entity's news
    resumed, and longer."""
    if state.status != "firing" or state.last_window_end is None:
        return None, state
    size = window.window_end - window.window_start
    step = timedelta(seconds=window.step_s) if window.step_s else size
    # The windows that would have followed the last one start a step apart from here: those
    # that start before `window` were not emitted, so they held no stories.
    first_empty = state.last_window_end - size + step
    if window.window_start < first_empty + sub.detector.resolve_windows * step:
        return None, state
    quiet_end = first_empty + (sub.detector.resolve_windows - 1) * step + size
    nothing = window.model_copy(
        update={
            "window_start": first_empty, "window_end": quiet_end, "count": 0,
            "negative_count": 0, "negative_share": 0.0, "top_negative": (),
        }
    )  # fmt: skip
    return _resolved(state, nothing, None, sub, now, "quiet")


def _fires(state: DetectorState, window: WindowAggregate, p_value: float | None, sub: Subscription) -> bool:
    """Whether the window fires, a mute aside (a fire a mute holds back is remembered)."""
    params = sub.detector
    rate = effective_baseline(window, params)
    if p_value is None or rate is None or p_value > params.significance:
        return False
    if window.negative_share - rate < params.min_rise:
        return False
    cooling = state.resolved_at is not None and window.window_end < state.resolved_at + timedelta(
        seconds=params.cooldown_s
    )
    return not cooling


def _maybe_resolve(
    state: DetectorState, window: WindowAggregate, p_value: float | None, sub: Subscription, now: datetime
) -> tuple[AlertEvent | None, DetectorState]:
    params = sub.detector
    # Calm means back near the baseline the alert fired against: the entity's EWMA has taken in
    # the burst's own windows since, and a long burst would otherwise "resolve" while still high.
    rate = _fired_rate(state, window, params)
    thin = window.count < params.min_volume
    calm = thin or window.negative_share <= rate + params.resolve_rise
    run = {
        "calm_windows": state.calm_windows + 1 if calm else 0,
        "calm_seen": calm and (state.calm_seen or not thin),
        "unwatched_windows": 0,
    }
    state = state.model_copy(update=run)
    if state.calm_windows < params.resolve_windows:
        return None, state
    because: Resolution = "few_stories" if thin else "calm"
    return _resolved(state, window, p_value, sub, now, because)


def _fired_rate(state: DetectorState, window: WindowAggregate, params: DetectorParams) -> float:
    if state.fired_baseline is None:  # a state kept before fired_baseline was
        return effective_baseline(window, params) or params.baseline_floor
    return state.fired_baseline


def _resolved(
    state: DetectorState,
    window: WindowAggregate,
    p_value: float | None,
    sub: Subscription,
    now: datetime,
    because: Resolution,
) -> tuple[AlertEvent, DetectorState]:
    """The resolve of a firing state at `window`, and the state it leaves."""
    rate = _fired_rate(state, window, sub.detector)
    fired_id = state.fired_alert_id or alert_id("fired", sub.id, window)
    event = _event(
        "resolved", alert_id("resolved", sub.id, window, fired_id), window, p_value, rate, sub, now, fired_id
    ).model_copy(update={"resolved_because": because})
    return event, state.model_copy(
        update={
            "status": "ok",
            "fired_alert_id": None,
            "fired_baseline": None,
            "calm_windows": 0,
            "calm_seen": False,
            "unwatched_windows": 0,
            "resolved_at": window.window_end if state.calm_seen else None,
        }
    )


def _event(
    state: Literal["fired", "resolved"],
    event_id: str,
    window: WindowAggregate,
    p_value: float | None,
    rate: float,
    sub: Subscription,
    now: datetime,
    fired_id: str | None = None,
) -> AlertEvent:
    return AlertEvent(
        alert_id=event_id,
        subscription_id=sub.id,
        state=state,
        entity_kind=window.entity_kind,
        entity=window.entity,
        window_kind=window.window_kind,
        window_start=window.window_start,
        window_end=window.window_end,
        count=window.count,
        negative_count=window.negative_count,
        negative_share=window.negative_share,
        baseline_negative_share=min(1.0, rate),
        p_value=1.0 if p_value is None else min(1.0, max(0.0, p_value)),
        significance=sub.detector.significance,
        correction=sub.detector.correction,
        top_headlines=window.top_negative,
        channel=sub.channel,
        created_at=now,
        fired_alert_id=fired_id,
    )
