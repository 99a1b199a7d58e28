"""The spike detector on synthetic series: planted spikes, quiet series, hysteresis, cooldown."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from alerts import DetectorState, MuteWindow, alert_id, detect, state_key
from alerts.baseline import update_baseline
from alerts.detector import UNWATCHED_WINDOWS, parse_state_key
from alerts.stats import adjust
from alerts.subscriptions import Subscription, SubscriptionFilter
from finpulse.schema import AlertEvent

from .synth import DEFAULT_BASELINE, HOPPING, NOW, T0, TUMBLING, replay, subscription, window

WARMUP = 30


def flat(count: int, rate: float, n: int = WARMUP) -> list[tuple[int, int]]:
    return [(count, round(count * rate))] * n


def noisy(rng: random.Random, mean_count: int, rate: float, n: int) -> list[tuple[int, int]]:
    out = []
    for _ in range(n):
        count = max(0, round(rng.gauss(mean_count, mean_count**0.5)))
        out.append((count, sum(rng.random() < rate for _ in range(count))))
    return out


@pytest.mark.parametrize(
    ("volume", "base_rate", "spike_rate", "spike_len", "detected"),
    [
        (20, 0.15, 0.60, 3, True),  # clear spike
        (12, 0.10, 0.70, 2, True),  # small entity, strong spike
        (60, 0.20, 0.45, 3, True),  # busy entity, moderate spike
        (200, 0.30, 0.48, 2, True),  # very busy entity
        (6, 0.10, 0.90, 3, False),  # under min_volume (10): ignored however strong
        (20, 0.15, 0.25, 4, False),  # rise of 10 points < min_rise of 15
        (10, 0.30, 0.50, 3, False),  # rise 20 points, but 5/10 against 30 % is not significant
    ],
)
def test_planted_spike(
    volume: int, base_rate: float, spike_rate: float, spike_len: int, detected: bool
) -> None:
    spike = [(volume, round(volume * spike_rate))] * spike_len
    series = {"Energy": flat(volume, base_rate) + spike + flat(volume, base_rate, 10)}
    events = replay(series, [subscription()])
    fired = [i for i, e in events if e.state == "fired"]
    if not detected:
        assert fired == []
        return
    assert len(fired) == 1
    assert WARMUP <= fired[0] <= WARMUP + 1, "detected within two windows of the spike's start"
    resolved = [i for i, e in events if e.state == "resolved"]
    assert len(resolved) == 1
    assert resolved[0] > fired[0]


def test_spike_among_many_entities_is_found_and_only_there() -> None:
    rng = random.Random(7)
    series = {f"topic-{i}": noisy(rng, 25, 0.15, WARMUP + 20) for i in range(15)}
    series["topic-3"][WARMUP] = (25, 16)
    events = replay(series, [subscription()])
    assert [(i, e.entity, e.state) for i, e in events if e.state == "fired"] == [(WARMUP, "topic-3", "fired")]


def test_noisy_series_stay_quiet() -> None:
    """No spike anywhere: false alarms stay within the significance level's budget.

    Each window family is one test at `significance` (0.001) after the BH step, so
    without spikes about 0.001 x families false alarms are expected. The baseline is
    itself an estimate, which the binomial test treats as exact, so allow 2x that.
    The seeds are fixed: the count is deterministic (7 of 4,500 families).
    """
    families, fired = 0, 0
    for seed in range(1, 11):
        for mean_count, rate in ((15, 0.1), (30, 0.2), (80, 0.35)):
            rng = random.Random(seed * 1000 + mean_count)
            series = {f"e{i}": noisy(rng, mean_count, rate, 150) for i in range(8)}
            events = replay(series, [subscription()])
            fired += sum(e.state == "fired" for _, e in events)
            families += 150
    assert fired / families <= 2 * 0.001


def test_flat_and_sparse_series_stay_quiet() -> None:
    series = {
        "flat": flat(20, 0.15, 100),
        "sparse": [(2, 2), (0, 0), (1, 1), (3, 3)] * 25,  # all negative, never enough volume
        "gappy": [(20, 3), (0, 0), (0, 0), (20, 3)] * 25,
    }
    assert replay(series, [subscription()]) == []


def test_no_alert_before_the_baseline_is_trusted() -> None:
    series = {"Energy": [(20, 18)] * 3 + flat(20, 0.1, 5)}
    assert replay(series, [subscription()]) == []


def test_hysteresis_keeps_a_wobbling_alert_open() -> None:
    # Baseline 15 %; spike, then wobbling around the fire threshold: stays one episode.
    wobble = [(20, 12), (20, 6), (20, 9), (20, 6), (20, 8)]
    series = {"Energy": flat(20, 0.15) + wobble + flat(20, 0.15, 5)}
    events = replay(series, [subscription()])
    assert [e.state for _, e in events] == ["fired", "resolved"]
    assert events[1][0] == WARMUP + len(wobble) + 1, "resolves after two calm windows"


def test_a_long_burst_resolves_only_back_near_the_baseline_it_fired_against() -> None:
    # Baseline 10 %; 20 windows at 60 % lift the entity's EWMA to about 40 %. Windows at 30 %
    # are calm against that, but still three times the normal the alert was raised against.
    burst, elevated, normal = [(20, 12)] * 20, [(20, 6)] * 6, flat(20, 0.1, 4)
    events = replay({"Energy": flat(20, 0.1) + burst + elevated + normal}, [subscription()])
    assert [e.state for _, e in events] == ["fired", "resolved"]
    index, resolved = events[1]
    assert index == WARMUP + len(burst) + len(elevated) + 1, "resolves on the second normal window"
    assert resolved.baseline_negative_share == pytest.approx(0.1), "the baseline it fired against"


def test_an_alert_whose_entity_goes_quiet_resolves_as_of_the_quiet_windows() -> None:
    # No stories: no windows arrive at all. The next window the entity has resolves the alert as of
    # its two quiet windows, then is tested afresh: a new spike 2.5 hours on fires again.
    spike, silence = [(20, 14)] * 2, [(0, 0)] * 30
    events = replay({"Energy": flat(20, 0.15) + spike + silence + spike}, [subscription(cooldown_s=3600)])
    resumed = WARMUP + len(spike) + len(silence)
    assert [(i, e.state, e.resolved_because) for i, e in events] == [
        (WARMUP, "fired", None),
        (resumed, "resolved", "quiet"),
        (resumed, "fired", None),
    ]
    fired, quiet = events[0][1], events[1][1]
    last_end = T0 + (WARMUP + 2) * TUMBLING.step
    assert (quiet.window_start, quiet.window_end, quiet.count) == (last_end, last_end + 2 * TUMBLING.step, 0)
    assert quiet.fired_alert_id == fired.alert_id
    # One quiet window is not enough; windows of too few stories resolve it, and say so.
    held = replay({"Energy": flat(20, 0.15) + spike + [(0, 0)] + spike}, [subscription()])
    assert [e.state for _, e in held] == ["fired"]
    few = replay({"Energy": flat(20, 0.15) + spike + [(3, 3)] * 2}, [subscription()])
    assert [(e.state, e.resolved_because) for _, e in few] == [("fired", None), ("resolved", "few_stories")]


def _as_planned(plan: list[tuple[Subscription, tuple[int, int]]]) -> list[tuple[int, AlertEvent]]:
    """Energy's windows of (count, negative), each with the subscription as it was then (edited
    between windows, as the live stream sees edits); the events with their window's index."""
    states: dict[str, DetectorState] = {}
    events: list[tuple[int, AlertEvent]] = []
    baseline = None
    for i, (active, (count, negative)) in enumerate(plan):
        w = window("Energy", i, count, negative, baseline=baseline)
        result = detect([w], [active], states, NOW)
        states.update(result.states)
        events += [(i, e) for e in result.events]
        baseline = update_baseline(baseline, w, DEFAULT_BASELINE, TUMBLING)
    return events


@pytest.mark.parametrize("away", [{"enabled": False}, {"filter": SubscriptionFilter(topics=("Macro",))}])
def test_a_subscription_switched_off_and_on_does_not_call_its_time_off_quiet(away: dict[str, object]) -> None:
    # Off (or not watching the entity) for a while during a spike, its windows not tested, back
    # once the news is calm: the alert resolves on the windows it sees, with their numbers, not
    # as "no stories".
    sub = subscription()
    off = sub.model_copy(update=away)
    events = _as_planned(
        [
            *([(sub, (20, 3))] * 30),
            *([(sub, (20, 14))] * 2),
            *([(off, (20, 3))] * 10),
            *([(sub, (20, 3))] * 3),
        ]
    )
    assert [(e.state, e.resolved_because) for _, e in events] == [("fired", None), ("resolved", "calm")]


def test_hopping_windows_go_quiet_by_their_steps_not_their_length() -> None:
    # Hopping windows (1 h, every 5 min) overlap: two that would have followed the last one and
    # were not emitted are two quiet steps, not two hours.
    sub = subscription(window="hopping")
    spike, calm = [(20, 14)] * 2, [(20, 3)] * 3
    base = flat(20, 0.15) + spike
    quiet = replay({"Energy": base + [(0, 0)] * 2 + calm}, [sub], spec=HOPPING)
    assert [(e.state, e.resolved_because) for _, e in quiet] == [("fired", None), ("resolved", "quiet")]
    last_end = T0 + (len(base) - 1) * HOPPING.step + HOPPING.size
    first_empty = last_end - HOPPING.size + HOPPING.step
    assert (quiet[1][1].window_start, quiet[1][1].window_end) == (
        first_empty,
        first_empty + HOPPING.step + HOPPING.size,
    )
    held = replay({"Energy": [*base, (0, 0), *calm]}, [sub], spec=HOPPING)  # one: calm windows end it
    assert [(e.state, e.resolved_because) for _, e in held] == [("fired", None), ("resolved", "calm")]


@pytest.mark.parametrize(("cooldown_s", "fires"), [(0, 2), (3600, 1), (4 * 3600, 1)])
def test_cooldown_after_resolve(cooldown_s: float, fires: int) -> None:
    spike = [(20, 14)] * 2
    calm = flat(20, 0.15, 4)
    series = {"Energy": flat(20, 0.15) + spike + calm + spike + calm}
    events = replay(series, [subscription(cooldown_s=cooldown_s)])
    assert sum(e.state == "fired" for _, e in events) == fires


def test_cooldown_ends() -> None:
    spike = [(20, 14)] * 2
    series = {"Energy": flat(20, 0.15) + spike + flat(20, 0.15, 14) + spike}  # 70 min apart
    events = replay(series, [subscription(cooldown_s=3600)])
    assert [e.state for _, e in events] == ["fired", "resolved", "fired"]


def test_mute_suppresses_firing() -> None:
    spike_end = T0 + (WARMUP + 1) * TUMBLING.step
    muted = subscription().model_copy(
        update={"mute": (MuteWindow.model_validate({"from": spike_end - timedelta(minutes=1)}),)}
    )
    series = {"Energy": [*flat(20, 0.15), (20, 15), (20, 15)]}
    assert replay(series, [muted]) == []
    assert len(replay(series, [subscription()])) == 1


def test_a_mute_that_names_an_entity_holds_back_only_that_one() -> None:
    spike = [*flat(20, 0.15), (20, 15), (20, 15)]
    mute = MuteWindow.model_validate({"from": T0, "entities": ["topic:energy"]})
    muted = subscription().model_copy(update={"mute": (mute,)})
    events = replay({"Energy": spike, "Metals": spike}, [muted])
    assert [e.entity for _, e in events] == ["Metals"]


def test_a_spike_that_outlasts_a_mute_fires_when_it_ends_against_the_baseline_before_it() -> None:
    # Quiet hours over a spike of 40 windows: the entity's moving baseline takes the spike in
    # (about 55 % by the end), so tested against it the spike would never fire.
    start = T0 + WARMUP * TUMBLING.step
    quiet = MuteWindow.model_validate({"from": start, "until": start + 40 * TUMBLING.step})
    muted = subscription().model_copy(update={"mute": (quiet,)})
    series = {"Energy": flat(20, 0.1) + [(20, 12)] * 45}
    events = replay(series, [muted])
    assert [(i, e.state) for i, e in events] == [(WARMUP + 39, "fired")]  # it ends as the mute does
    assert events[0][1].baseline_negative_share == pytest.approx(0.1)
    # A spike over before the mute ends is not told afterwards.
    ended = replay({"Energy": flat(20, 0.1) + [(20, 12)] * 20 + flat(20, 0.1, 25)}, [muted])
    assert ended == []


def test_a_burst_right_after_a_quiet_resolve_fires_despite_the_cooldown() -> None:
    # The cooldown is for an alert that calmed down: one resolved because its entity went quiet
    # (no stories for two windows) fires again on the burst that follows.
    spike = [(20, 14)] * 2
    series = {"Energy": flat(20, 0.15) + spike + [(0, 0)] * 2 + spike}
    events = replay(series, [subscription(cooldown_s=3600)])
    assert [(e.state, e.resolved_because) for _, e in events] == [
        ("fired", None), ("resolved", "quiet"), ("fired", None),
    ]  # fmt: skip


def test_an_alert_its_subscription_stops_watching_resolves_as_unwatched() -> None:
    sub = subscription()
    away = sub.model_copy(update={"filter": SubscriptionFilter(topics=("Macro",))})
    events = _as_planned([*([(sub, (20, 3))] * 30), *([(sub, (20, 14))] * 2), *([(away, (20, 14))] * 20)])
    assert [(i, e.state, e.resolved_because) for i, e in events] == [
        (30, "fired", None), (31 + UNWATCHED_WINDOWS, "resolved", "unwatched"),
    ]  # fmt: skip
    assert events[1][1].fired_alert_id == events[0][1].alert_id
    # Watched again sooner: the untested windows are not calm ones, its own calm windows resolve it.
    sub5 = subscription(resolve_windows=5)
    away5 = sub5.model_copy(update={"filter": SubscriptionFilter(topics=("Macro",))})
    events = _as_planned(
        [*([(sub5, (20, 3))] * 30), (sub5, (20, 14)), *([(away5, (20, 3))] * 4), *([(sub5, (20, 3))] * 5)]
    )
    assert [(i, e.state, e.resolved_because) for i, e in events] == [
        (30, "fired", None),
        (39, "resolved", "calm"),
    ]


@pytest.mark.parametrize(
    "calm_run", [[(20, 3), (5, 1), (5, 1)], [(5, 1), (5, 1), (20, 3)], [(5, 1), (20, 3), (5, 1)]]
)
def test_a_calm_run_with_a_tested_window_starts_the_cooldown_in_any_order(
    calm_run: list[tuple[int, int]],
) -> None:
    # The cooldown follows an alert seen calm; which window ends the run (thin or not) does not matter.
    spike = [(20, 14)]
    events = replay({"Energy": flat(20, 0.15) + spike + calm_run + spike}, [subscription(resolve_windows=3)])
    assert [e.state for _, e in events] == ["fired", "resolved"]


def test_a_windows_late_revision_in_the_same_batch_is_not_what_is_tested() -> None:
    # Closed with 2 of 10 negative, re-emitted a moment later with late stories (12 of 16): the
    # detector tests the window as it closed, in whichever order the two arrive, as the backtest does.
    baseline = None
    for i in range(WARMUP):
        baseline = update_baseline(
            baseline, window("Energy", i, 20, 3, baseline=baseline), DEFAULT_BASELINE, TUMBLING
        )
    first = window("Energy", WARMUP, 10, 2, baseline=baseline)
    late = first.model_copy(update={"revision": 1, "count": 16, "negative_count": 12, "negative_share": 0.75})
    for batch in ([first, late], [late, first]):
        assert detect(batch, [subscription(min_volume=10)], {}, NOW).events == ()
    assert len(detect([late], [subscription(min_volume=10)], {}, NOW).events) == 1  # alone, it would fire


def test_filters_and_window_kind_select_windows() -> None:
    series = {"Energy": [*flat(20, 0.15), (20, 15)]}
    assert replay(series, [subscription(topics=["Metals"])]) == []
    assert replay(series, [subscription(window="hopping")]) == []
    assert len(replay(series, [subscription(topics=["energy"])])) == 1


def test_multiple_testing_control_changes_the_decision() -> None:
    # 20 entities; one with a borderline excess: significant alone, not after correction.
    series = {f"t{i:02}": [*flat(40, 0.2), (40, 8)] for i in range(20)}
    series["t05"] = [*flat(40, 0.2), (40, 19)]  # 19/40 vs 20 %: p ~ 2e-4
    [(_, fired)] = replay(series, [subscription(correction="none")])
    assert fired.correction == "none"  # its message says the p-value is unadjusted
    assert replay(series, [subscription(correction="bh")]) == []
    assert replay(series, [subscription(correction="holm")]) == []


def test_alert_ids_are_deterministic_and_replays_identical() -> None:
    series = {"Energy": [*flat(20, 0.15), (20, 15), *flat(20, 0.15, 4)]}
    first, second = replay(series, [subscription()]), replay(series, [subscription()])
    assert first == second
    fired, resolved = first[0][1], first[1][1]
    assert fired.alert_id != resolved.alert_id
    assert resolved.fired_alert_id == fired.alert_id
    assert len({fired.alert_id, resolved.alert_id}) == 2


def test_redelivered_and_late_windows_change_nothing() -> None:
    sub = subscription()
    from alerts import Baseline

    base = Baseline(count_sum=20, negative_sum=3, weight=1, windows_seen=10)
    spike = window("Energy", 5, 20, 15, base)
    first = detect([spike], [sub], {}, NOW)
    assert [e.state for e in first.events] == ["fired"]
    again = detect([spike], [sub], first.states, NOW)
    assert again.events == ()
    assert again.states == {}
    late = spike.model_copy(update={"revision": 1, "negative_count": 16, "negative_share": 0.8})
    assert detect([late], [sub], first.states, NOW).events == ()


def test_state_keys_and_ids() -> None:
    w = window("Energy", 0, 10, 5)
    assert state_key("desk", "topic", "Energy", "tumbling") == "desk|topic:Energy|tumbling"
    key = state_key("desk", "topic", "Energy | Oil 100%", "hopping")
    assert key == "desk|topic:Energy %7C Oil 100%25|hopping"
    assert parse_state_key(key) == ("desk", "topic", "Energy | Oil 100%", "hopping")
    assert alert_id("fired", "desk", w) == alert_id("fired", "desk", w)
    assert alert_id("fired", "desk", w) != alert_id("fired", "other", w)
    assert DetectorState().model_dump_json()


@pytest.mark.parametrize(
    ("ps", "method", "expected"),
    [
        ([0.01, 0.04, 0.03], "none", [0.01, 0.04, 0.03]),
        ([0.01, 0.04, 0.03], "bh", [0.03, 0.04, 0.04]),
        ([0.01, 0.04, 0.03], "holm", [0.03, 0.06, 0.06]),
        ([0.5], "holm", [0.5]),
        ([], "bh", []),
    ],
)
def test_adjust(ps: list[float], method: str, expected: list[float]) -> None:
    assert adjust(ps, method) == pytest.approx(expected)  # type: ignore[arg-type]
