"""The backtest on synthetic series: spikes found, metrics right, recommendation, live parity, grid limits."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from alerts import Baseline, BaselineParams, DetectorState, MuteWindow, detect, update_baseline
from alerts.backtest import (
    MAX_SETTINGS,
    BacktestError,
    LabelledEvent,
    Labels,
    Setting,
    SettingResult,
    _explain,
    evaluate,
    expand_grid,
    group_by_end,
    parse_grid,
    rebuild_windows,
    recommend,
    refused_settings,
    replay,
    run_backtest,
    story_span,
)
from alerts.subscriptions import DetectorParams, SubscriptionFilter
from finpulse.schema import AlertEvent, ScoredItem, WindowAggregate

from .events import alert
from .synth import HOPPING, NOW, T0, TUMBLING, scored, subscription, window

M5 = timedelta(minutes=5)
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)
CALM, SPIKE_AT, SPIKE_LEN, AFTER = 0.15, 30, 3, 12


def spike_items(entity: str = "Energy", per_window: int = 20, spike_rate: float = 0.6) -> list[ScoredItem]:
    """`per_window` stories every 5 minutes; negative share CALM, then spike_rate for SPIKE_LEN windows."""
    items = []
    for i in range(SPIKE_AT + SPIKE_LEN + AFTER):
        rate = spike_rate if SPIKE_AT <= i < SPIKE_AT + SPIKE_LEN else CALM
        negatives = round(per_window * rate)
        for k in range(per_window):
            at = T0 + i * M5 + timedelta(seconds=7 + 14 * k)
            sentiment = "negative" if k < negatives else "neutral"
            items.append(scored(f"{entity}-{i}-{k}", sentiment, at=at, topic=entity))
    return items


def noisy_items(entity: str, seed: int, n: int = SPIKE_AT + SPIKE_LEN + AFTER) -> list[ScoredItem]:
    """Calm but noisy: 4 to 20 stories per window, each negative with probability CALM."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        for k in range(rng.randint(4, 20)):
            sentiment = "negative" if rng.random() < CALM else "neutral"
            items.append(scored(f"{entity}-{i}-{k}", sentiment, at=T0 + i * M5 + k * 10 * SEC, topic=entity))
    return items


SPIKE = LabelledEvent(
    entity_kind="topic", entity="Energy", start=T0 + SPIKE_AT * M5, end=T0 + (SPIKE_AT + SPIKE_LEN) * M5
)


def topic_windows(items: list[ScoredItem]) -> list[WindowAggregate]:
    return rebuild_windows(items, [TUMBLING], BaselineParams(), keep=lambda kind, _: kind == "topic")


def test_planted_spike_is_found_by_sensitive_settings_only() -> None:
    windows = topic_windows(spike_items())
    settings = expand_grid({"min_rise": [0.1, 0.3, 0.5]}, DetectorParams())
    report = run_backtest(windows, subscription(), settings, Labels(events=(SPIKE,), complete=True), NOW)
    found = {r.setting.name: r for r in report.results}
    assert set(found) == {"min_rise=0.1", "min_rise=0.3", "min_rise=0.5"}
    for name in ("min_rise=0.1", "min_rise=0.3"):
        r = found[name]
        assert r.alerts_fired == 1
        assert (r.recall, r.precision, r.true_positives, r.false_positives) == (1.0, 1.0, 1, 0)
        assert r.fired[0].window_start == SPIKE.start  # caught in the spike's first window
        assert r.delays_s == (300.0,)
    # A rise of 0.60 - 0.15 = 0.45 points is under 0.5: no alert, nothing detected.
    assert found["min_rise=0.5"].alerts_fired == 0
    assert found["min_rise=0.5"].recall == 0.0
    assert found["min_rise=0.5"].precision is None
    assert report.windows == SPIKE_AT + SPIKE_LEN + AFTER
    assert report.days == pytest.approx(len(windows) * 300 / 86_400)
    assert found["min_rise=0.1"].alerts_per_day == pytest.approx(1 / report.days)
    # Both catch the spike with the same one alert: the stricter fires it with more margin.
    assert report.recommended == "min_rise=0.3"


def test_rebuilt_windows_match_hand_counts_and_baseline_chain() -> None:
    items = spike_items(per_window=10)
    random.Random(3).shuffle(items)  # arrival order does not matter
    windows = topic_windows(items)
    assert [w.window_start for w in windows] == [T0 + i * M5 for i in range(SPIKE_AT + SPIKE_LEN + AFTER)]
    params, baseline = BaselineParams(), None
    for i, w in enumerate(windows):
        negatives = 6 if SPIKE_AT <= i < SPIKE_AT + SPIKE_LEN else round(10 * CALM)
        assert (w.count, w.negative_count) == (10, negatives)
        expected = baseline.trusted(params)[0] if baseline is not None else None
        assert w.baseline_negative_share == expected
        baseline = update_baseline(baseline, w, params, TUMBLING)
    assert windows[params.min_windows - 1].baseline_negative_share is None
    assert windows[params.min_windows].baseline_negative_share == pytest.approx(0.2)


def test_duplicates_count_once_in_rebuilt_windows() -> None:
    items = spike_items(per_window=10)
    copies = [scored(f"copy-{s.story_id}", s.sentiment, at=s.item.published_at, topic="Energy",
                     duplicate_of=s.story_id) for s in items[:10]]  # fmt: skip
    assert [w.count for w in topic_windows(items + items[:5] + copies)] == [
        w.count for w in topic_windows(items)
    ]


def live_run(seed: int) -> tuple[list[WindowAggregate], list[AlertEvent], list]:  # type: ignore[type-arg]
    """The stream's loop: per tick, close each entity's window, detect the batch, update baselines."""
    rng = random.Random(seed)
    entities = [f"T{n}" for n in range(8)]
    mute = MuteWindow.model_validate({"from": T0 + 70 * M5, "until": T0 + 80 * M5})
    sub = subscription(significance=0.01, min_rise=0.15, cooldown_s=1800, min_volume=8).model_copy(
        update={"mute": (mute,)}
    )
    baselines: dict[str, Baseline] = {}
    states: dict[str, DetectorState] = {}
    emitted: list[WindowAggregate] = []
    events: list[AlertEvent] = []
    for i in range(120):
        batch = []
        for e in entities:
            count = rng.randint(0, 25)
            if count == 0:
                continue  # an empty window never closes
            spiking = (i // 15) % 4 == 3 and e in ("T1", "T5")
            rate = 0.55 if spiking else 0.12
            negative = sum(rng.random() < rate for _ in range(count))
            batch.append(window(e, i, count, negative, baseline=baselines.get(e)))
        result = detect(batch, [sub], states, NOW)
        states.update(result.states)
        events += result.events
        for w in batch:
            baselines[w.entity] = update_baseline(baselines.get(w.entity), w, BaselineParams(), TUMBLING)
        emitted += batch
    return emitted, events, [sub]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replaying_live_windows_reproduces_live_alerts_exactly(seed: int) -> None:
    windows, live, (sub,) = live_run(seed)
    assert sum(e.state == "fired" for e in live) >= 2, "the series must make the live loop fire"
    shuffled = windows[:]
    random.Random(seed).shuffle(shuffled)  # the store returns them in its own order
    assert list(replay(group_by_end(shuffled), sub, NOW)) == live
    report = run_backtest(shuffled, sub, expand_grid({}, sub.detector), Labels(), NOW)
    assert report.results[0].setting.name == "current"
    assert list(report.results[0].events) == live


def test_late_revisions_of_windows_are_not_what_live_tested() -> None:
    """Late stories re-emit a window (revision 1); live tested its first revision and skips the
    rest, so the replay must too, even where the late stories make a spike."""
    windows, live, (sub,) = live_run(1)
    late = [
        w.model_copy(
            update={
                "revision": 1,
                "count": w.count + 20,
                "negative_count": w.negative_count + 20,
                "negative_share": (w.negative_count + 20) / (w.count + 20),
            }
        )
        for w in windows[::5]
    ]
    assert len(replay(group_by_end(late), sub, NOW)) > len(live), "the late stories alone would fire"
    assert list(replay(group_by_end(late + windows), sub, NOW)) == live


def test_mutes_of_the_subscription_apply_in_the_backtest() -> None:
    windows, live, (sub,) = live_run(1)
    always = MuteWindow.model_validate({"from": T0 - M5})
    report = run_backtest(
        windows, sub.model_copy(update={"mute": (always,)}), expand_grid({}, sub.detector), Labels(), NOW
    )
    assert sum(e.state == "fired" for e in live) > 0
    assert report.results[0].alerts_fired == 0


def test_precision_recall_delay_against_labels() -> None:
    # alert(n): ticker T{n:03d} unless entity given, window [T0 + 5n min, +5 min).
    events = [
        alert(1, entity="T001"),  # inside the T001 event
        alert(3, entity="T001"),  # same event again (window T0+15..20 overlaps [T0+5, T0+20))
        alert(4, entity="T001"),  # T0+20..25: after the event ends
        alert(6, entity="T2"),  # covered by an fp label
        alert(7, "resolved", entity="T001", fired="x"),  # resolves do not count as alerts
    ]
    labels = [
        LabelledEvent(entity_kind="ticker", entity="t001", start=T0 + 5 * MIN, end=T0 + 20 * MIN),
        LabelledEvent(
            entity_kind="ticker", entity="T2", start=T0 + 30 * MIN, end=T0 + 35 * MIN, verdict="fp"
        ),
        LabelledEvent(entity_kind="ticker", entity="T009", start=T0, end=T0 + M5),  # missed
    ]
    setting = Setting(name="s", overrides={}, params=DetectorParams())
    partial = evaluate(setting, events, Labels(events=tuple(labels)), days=2.0)
    assert (partial.alerts_fired, partial.alerts_per_day) == (4, 2.0)
    assert (partial.true_positives, partial.false_positives, partial.unlabelled) == (2, 1, 1)
    assert partial.precision == pytest.approx(2 / 3)
    assert (partial.labelled_events, partial.events_detected, partial.recall) == (2, 1, 0.5)
    # Analysts' verdicts (incomplete labels) start at their own alert's window: no delay to tell.
    assert (partial.delays_s, partial.median_delay_s) == ((), None)
    complete = evaluate(setting, events, Labels(events=tuple(labels), complete=True), days=2.0)
    assert (complete.true_positives, complete.false_positives, complete.unlabelled) == (2, 2, 0)
    assert complete.precision == 0.5
    assert complete.delays_s == (300.0,)  # first fired window end T0+10 min - event start T0+5 min


def result(name: str, fired: int, days: float, caught: int, tp: int) -> object:
    """A SettingResult with `fired` alerts of which `tp` hit a label, catching `caught` of 2 events."""
    labels = Labels(
        events=tuple(
            LabelledEvent(entity_kind="ticker", entity=f"E{k}", start=T0 + k * M5, end=T0 + (k + 1) * M5)
            for k in range(2)
        ),
        complete=True,
    )
    hits = [alert(k, entity=f"E{k}") for k in range(caught)]
    hits += [alert(k % caught, entity=f"E{k % caught}") for k in range(caught, tp)]
    misses = [alert(50 + k, entity="OTHER") for k in range(fired - tp)]
    setting = Setting(name=name, overrides={}, params=DetectorParams())
    return evaluate(setting, hits + misses, labels, days)


def test_recommend_best_recall_within_target_then_precision_then_fewer_alerts() -> None:
    loud = result("loud", fired=10, days=2, caught=2, tp=2)  # recall 1.0, 5/day
    sharp = result("sharp", fired=2, days=2, caught=1, tp=2)  # recall .5, precision 1, 1/day
    sloppy = result("sloppy", fired=2, days=2, caught=1, tp=1)  # recall .5, precision .5, 1/day
    quiet = result("quiet", fired=1, days=2, caught=1, tp=1)  # recall .5, precision 1, 0.5/day
    results = [loud, sharp, sloppy, quiet]
    assert recommend(results, None).setting.name == "loud"  # type: ignore[union-attr]
    assert recommend(results, 5.0).setting.name == "loud"  # type: ignore[union-attr]
    assert recommend(results, 2.0).setting.name == "quiet"  # type: ignore[union-attr]
    assert recommend(results, 0.5).setting.name == "quiet"  # type: ignore[union-attr]
    assert recommend(results, 0.4) is None


def test_a_setting_that_fires_nothing_beats_one_that_fires_only_false_alarms() -> None:
    noisy = result("noisy", fired=2, days=1, caught=0, tp=0)  # recall 0, precision 0
    silent = result("silent", fired=0, days=1, caught=0, tp=0)  # recall 0, no precision
    assert recommend([noisy, silent], None).setting.name == "silent"  # type: ignore[union-attr]


def test_labels_the_subscription_cannot_alert_on_are_not_counted() -> None:
    """Another subscription's verdict on an entity this one does not watch is no event it missed."""
    windows, _, (sub,) = live_run(1)
    energy = sub.model_copy(update={"filter": SubscriptionFilter(topics=("T1", "T5"))})
    elsewhere = LabelledEvent(entity_kind="ticker", entity="ACME", start=T0, end=T0 + 600 * M5)
    report = run_backtest(windows, energy, expand_grid({}, energy.detector), Labels(events=(elsewhere,)), NOW)
    assert report.labels.events == ()
    assert (report.results[0].labelled_events, report.results[0].recall) == (0, None)


def test_the_focus_entity_is_named_in_any_case() -> None:
    windows, live, (sub,) = live_run(1)
    grid = expand_grid({}, sub.detector)
    label = LabelledEvent(entity_kind="topic", entity="t1", start=T0, end=T0 + 600 * M5)
    exact, lower = (
        run_backtest(windows, sub, grid, Labels(events=(label,)), NOW, focus=("topic", name))
        for name in ("T1", "t1")
    )
    assert exact.results[0].events == lower.results[0].events == tuple(e for e in live if e.entity == "T1")
    assert exact.results[0].alerts_fired > 0
    assert lower.results[0].recall == exact.results[0].recall == 1.0


def test_recommend_the_strictest_of_settings_that_fire_the_same() -> None:
    """No labels (recall and precision unknown) and the same alerts: the strictest setting."""

    def same(name: str, **params: float) -> SettingResult:
        setting = Setting(name=name, overrides=params, params=DetectorParams.model_validate(params))
        return evaluate(setting, [alert(0), alert(1)], Labels(), 1.0)

    results = [
        same("loose", min_rise=0.1, significance=0.01),
        same("strict", min_rise=0.2, significance=0.001),
        same("rise", min_rise=0.2, significance=0.01),
        same("volume", min_rise=0.1, significance=0.01, min_volume=20),
    ]
    assert [r.recall for r in results] == [None] * 4
    assert recommend(results, None).setting.name == "strict"  # type: ignore[union-attr]
    assert recommend(results[:1] + results[3:], None).setting.name == "volume"  # type: ignore[union-attr]
    # The setting in use fires the same: it stays (no change without evidence).
    in_use = results[0].setting.params
    assert recommend(results, None, current=in_use).setting.name == "loose"  # type: ignore[union-attr]


def test_recommend_the_quicker_of_settings_that_catch_the_same() -> None:
    event = LabelledEvent(entity_kind="ticker", entity="E0", start=T0, end=T0 + 3 * M5)
    labels = Labels(events=(event,), complete=True)

    def caught_in(name: str, window: int, **params: float) -> SettingResult:
        setting = Setting(name=name, overrides=params, params=DetectorParams.model_validate(params))
        return evaluate(setting, [alert(window, entity="E0")], labels, 1.0)

    quick, late = caught_in("quick", 0, min_rise=0.1), caught_in("late", 1, min_rise=0.3)
    assert (quick.recall, quick.precision, late.recall, late.precision) == (1.0, 1.0, 1.0, 1.0)
    assert (quick.median_delay_s, late.median_delay_s) == (300.0, 600.0)
    # The stricter setting caught it five minutes later: the quicker one, strictness only after.
    assert recommend([late, quick], None).setting.name == "quick"  # type: ignore[union-attr]


def test_no_setting_within_the_target_says_why() -> None:
    def fires(name: str, n: int, days: float, **params: float) -> SettingResult:
        setting = Setting(name=name, overrides=params, params=DetectorParams.model_validate(params))
        return evaluate(setting, [alert(k) for k in range(n)], Labels(), days)

    # Ten days, two alerts each (0.2/day) against 0.15: the strictest of the quietest, not the first.
    results = [
        fires("loose", 2, 10, min_rise=0.1),
        fires("strict", 2, 10, min_rise=0.2),
        fires("loud", 5, 10),
    ]
    assert recommend(results, 0.15) is None
    said = _explain(None, results, 0.15, 10)
    assert said.startswith("no setting stays within 0.15 alerts/day; the quietest, strict, fires 0.20/day")
    # Six hours: one alert is 4/day, over any target under that; the grid is not what to widen.
    short = [fires("loose", 1, 0.25, min_rise=0.1)]
    said = _explain(None, short, 2, 0.25)
    assert said == (
        "no setting stays within 2 alerts/day: the history holds 6 hours, in which one alert is 4.00/day; "
        "raise --max-alerts-per-day, or replay a longer range (--since) if the store holds one"
    )


def test_report_recommendation_obeys_alert_rate_target() -> None:
    noise = [item for n in range(6) for item in noisy_items(f"Noise{n}", seed=n)]
    windows = topic_windows(spike_items() + noise)
    grid = {"min_rise": [0.1, 0.2], "significance": [0.05, 0.001], "min_volume": [5, 30]}
    settings = expand_grid(grid, DetectorParams())
    labels = Labels(events=(SPIKE,), complete=True)
    loose = run_backtest(windows, subscription(), settings, labels, NOW)
    rates = sorted({r.alerts_per_day for r in loose.results})
    assert len(rates) >= 3, "the grid must spread the alert rate"
    top = max(loose.results, key=lambda r: r.alerts_per_day)
    assert loose.recommended is not None
    target = rates[1]
    report = run_backtest(windows, subscription(), settings, labels, NOW, max_alerts_per_day=target)
    best = report.result(report.recommended)  # type: ignore[arg-type]
    assert best.alerts_per_day <= target < top.alerts_per_day
    within = [r for r in report.results if r.alerts_per_day <= target]
    assert all(_key(r) <= _key(best) for r in within)
    assert best.recall == 1.0


def _key(r: object) -> tuple[float, float, int]:
    return ((r.recall or 0), (r.precision or 0), -r.alerts_fired)  # type: ignore[attr-defined]


def test_grid_parsing_and_expansion() -> None:
    grid = parse_grid("min_rise=0.1,0.2 significance=0.01,0.001;window=hopping")
    assert grid == {"min_rise": [0.1, 0.2], "significance": [0.01, 0.001], "window": ["hopping"]}
    settings = expand_grid(grid, DetectorParams(min_volume=7))
    assert [s.name for s in settings] == [
        "min_rise=0.1 significance=0.01 window=hopping",
        "min_rise=0.1 significance=0.001 window=hopping",
        "min_rise=0.2 significance=0.01 window=hopping",
        "min_rise=0.2 significance=0.001 window=hopping",
    ]
    assert all(s.params.min_volume == 7 and s.params.window == "hopping" for s in settings)
    assert [s.name for s in expand_grid({}, DetectorParams())] == ["current"]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"min_rise": [0.1 + k / 100 for k in range(15)], "min_volume": list(range(1, 16))}, "225 settings"),
        ({"threshold": [1]}, "unknown detector parameter 'threshold'"),
        ({"min_rise": [0.04]}, "resolve_rise (0.05) must be below min_rise (0.04)"),
        ({"significance": [2]}, "significance"),
        ({"min_rise": []}, "no values"),
    ],
)
def test_bad_grids_get_clear_errors(grid: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(BacktestError) as caught:
        expand_grid(grid, DetectorParams())
    assert message in str(caught.value)


def test_a_combination_the_detector_refuses_is_left_out_not_the_grid() -> None:
    # resolve_rise must stay below min_rise: 0.03 with 0.08 is refused, the other three run.
    grid = {"min_rise": [0.03, 0.1], "resolve_rise": [0.02, 0.08]}
    names = [s.name for s in expand_grid(grid, DetectorParams())]
    assert names == [
        "min_rise=0.03 resolve_rise=0.02",
        "min_rise=0.1 resolve_rise=0.02",
        "min_rise=0.1 resolve_rise=0.08",
    ]
    [refused] = refused_settings(grid, DetectorParams())
    assert refused.startswith("min_rise=0.03 resolve_rise=0.08: ")
    assert "resolve_rise (0.08) must be below min_rise (0.03)" in refused


def test_grid_limit_is_the_documented_bound() -> None:
    at_limit = {"min_volume": list(range(1, MAX_SETTINGS + 1))}
    assert len(expand_grid(at_limit, DetectorParams())) == MAX_SETTINGS
    with pytest.raises(BacktestError, match=f"{MAX_SETTINGS + 1} settings"):
        expand_grid({"min_volume": list(range(1, MAX_SETTINGS + 2))}, DetectorParams())


@pytest.mark.parametrize("text", ["min_rise", "=0.1", "min_rise=", "min_rise=0.1 min_rise=0.2"])
def test_bad_grid_text(text: str) -> None:
    with pytest.raises(BacktestError):
        parse_grid(text)


def test_no_matching_windows_is_a_clear_error() -> None:
    windows = topic_windows(spike_items())
    with pytest.raises(BacktestError, match="no windows match subscription"):
        run_backtest(
            windows, subscription(topics=["Metals"]), expand_grid({}, DetectorParams()), Labels(), NOW
        )


def test_labelled_event_validation() -> None:
    with pytest.raises(ValueError, match="must be after start"):
        LabelledEvent(entity_kind="ticker", entity="ACME", start=T0, end=T0)
    assert LabelledEvent(entity_kind="ticker", entity="$acme", start=T0, end=T0 + M5).entity == "ACME"


def test_plot_draws_a_png() -> None:
    import io

    from matplotlib.image import imread

    from alerts.backtest_plot import plot_backtest

    windows = topic_windows(spike_items())
    settings = expand_grid({"min_rise": [0.1, 0.5]}, DetectorParams())
    report = run_backtest(windows, subscription(), settings, Labels(events=(SPIKE,), complete=True), NOW)
    png = plot_backtest(windows, report.results, ("topic", "Energy"), labels=report.labels)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    pixels = imread(io.BytesIO(png))
    assert pixels.shape[0] > 300
    assert pixels.shape[1] > 800
    rgb = pixels[..., :3]
    red = (rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.35)
    assert red.sum() > 20, "the alert marker (red triangle) is drawn"
    assert (rgb.min(axis=2) < 0.9).mean() > 0.02, "lines and text are drawn"


def test_the_chart_breaks_a_line_where_windows_are_missing() -> None:
    from matplotlib import dates

    from alerts.backtest_plot import _broken

    start = datetime(2026, 1, 1, tzinfo=UTC)
    ends = [start + timedelta(minutes=m) for m in (5, 10, 25, 30)]  # 15 and 20 missing
    xs, ys = _broken(ends, [0.1, 0.2, 0.3, 0.4])
    assert [y if y == y else "break" for y in ys] == [0.1, 0.2, "break", 0.3, 0.4]
    assert dates.num2date(xs[2]) == start + timedelta(minutes=15)  # the first missing window's end
    assert _broken(ends[:1], [0.5]) == (xs[:1], [0.5])  # one window: nothing to break


def test_the_rate_of_a_setting_does_not_depend_on_the_other_window_kinds_replayed() -> None:
    items = spike_items()
    stories = story_span(items[0].item.published_at, items[-1].item.published_at, TUMBLING)
    assert stories == (T0, T0 + (SPIKE_AT + SPIKE_LEN + AFTER) * M5)  # whole windows
    windows = rebuild_windows(
        items, [TUMBLING, HOPPING], BaselineParams(), keep=lambda kind, _: kind == "topic"
    )
    labels = Labels(events=(SPIKE,), complete=True)

    def tumbling_rate(grid: dict[str, list[str]]) -> tuple[float, datetime]:
        report = run_backtest(
            windows, subscription(), expand_grid(grid, DetectorParams()), labels, NOW, stories=stories
        )
        return report.result("window=tumbling").alerts_per_day, report.start

    # Before: hopping windows (an hour long) start an hour before the first story, and the
    # tumbling setting's rate fell by a fifth when the grid held both kinds.
    assert tumbling_rate({"window": ["tumbling"]}) == tumbling_rate({"window": ["tumbling", "hopping"]})
    assert tumbling_rate({"window": ["tumbling"]})[1] == stories[0]
