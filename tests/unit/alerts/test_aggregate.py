"""Window bounds, the window accumulator and the EWMA baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts import (
    Baseline,
    BaselineParams,
    add_item,
    add_items,
    close_window,
    entities_of,
    open_window,
    update_baseline,
    window_bounds,
    window_specs,
    window_starts,
)
from alerts.aggregate import window_view
from alerts.backtest import rebuild_windows
from finpulse.settings import AlertsSettings

from .synth import HOPPING, T0, TUMBLING, scored, window


@pytest.mark.parametrize(
    ("at", "expected_start"),
    [
        ("2025-03-03T09:00:00+00:00", "2025-03-03T09:00:00+00:00"),  # starts are inclusive
        ("2025-03-03T09:04:59.999999+00:00", "2025-03-03T09:00:00+00:00"),
        ("2025-03-03T09:05:00+00:00", "2025-03-03T09:05:00+00:00"),  # ends are exclusive
        ("2025-03-03T10:07:00+01:00", "2025-03-03T09:05:00+00:00"),  # any timezone
    ],
)
def test_tumbling_bounds(at: str, expected_start: str) -> None:
    [(start, end)] = window_bounds(TUMBLING, datetime.fromisoformat(at))
    assert start == datetime.fromisoformat(expected_start)
    assert end - start == timedelta(minutes=5)


def test_hopping_windows_cover_the_event() -> None:
    at = datetime(2025, 3, 3, 9, 7, tzinfo=UTC)
    bounds = window_bounds(HOPPING, at)
    assert len(bounds) == 12
    assert all(start <= at < end for start, end in bounds)
    assert bounds[0][0] == datetime(2025, 3, 3, 8, 10, tzinfo=UTC)
    assert bounds[-1][0] == datetime(2025, 3, 3, 9, 5, tzinfo=UTC)


def test_window_specs_from_settings() -> None:
    specs = window_specs(AlertsSettings(tumbling_window_s=60))
    assert specs["tumbling"].size_s == 60
    assert (specs["hopping"].size_s, specs["hopping"].step_s) == (3600, 300)


def test_entities_of_story() -> None:
    s = scored("a", topic="Earnings", tickers=("ACME", "$ZZZ"), source="wire")
    expected = [("topic", "Earnings"), ("ticker", "ACME"), ("ticker", "ZZZ"), ("source", "wire")]
    assert entities_of(s) == expected


def test_story_counts_once_and_syndicated_copies_once() -> None:
    original = scored("a", "negative")
    copy = scored("b", "negative", source="other", duplicate_of="a")
    items = [original, original, copy, scored("c", "positive")]
    windows = rebuild_windows(items, [TUMBLING], BaselineParams())
    by_entity = {(w.entity_kind, w.entity): w for w in windows}
    assert (by_entity["topic", "Markets"].count, by_entity["topic", "Markets"].negative_count) == (2, 1)
    # The copy counts for its own source: the original never counted there.
    assert by_entity["source", "other"].count == 1
    assert by_entity["source", "wire"].count == 2


def test_window_view_aggregates_like_the_full_story() -> None:
    items = [
        scored("a", "negative", tickers=("ACME",)),
        scored("b", "positive", source="other", duplicate_of="a"),
        scored("c", "neutral", at=T0 + timedelta(minutes=7)),
    ]
    views = [window_view(s) for s in items]
    assert all(v.topic_probs == {} and v.item.summary == "" for v in views)
    assert len(views[0].to_bytes()) < len(items[0].to_bytes())
    specs = [TUMBLING, HOPPING]
    assert rebuild_windows(views, specs, BaselineParams()) == rebuild_windows(items, specs, BaselineParams())


def test_add_items_equals_adding_one_at_a_time() -> None:
    stories = [scored(f"s{i:02}", ("negative", "neutral", "positive")[i % 3]) for i in range(10)]  # type: ignore[arg-type]
    one_by_one = open_window("topic", "Macro", TUMBLING, T0)
    for story in stories:
        one_by_one = add_item(one_by_one, story, top_n=3)
    first = add_items(open_window("topic", "Macro", TUMBLING, T0), stories[:4], top_n=3)
    together = add_items(first, stories[4:], top_n=3)
    assert together == one_by_one
    assert (together.count, together.negative_count, len(together.top_negative)) == (10, 4, 3)
    assert add_items(first, [], top_n=3) == first


def test_close_window_carries_evidence_and_trusted_baseline() -> None:
    acc = open_window("ticker", "ACME", TUMBLING, T0)
    for i, sentiment in enumerate(["negative", "negative", "neutral", "positive"] * 3):
        acc = add_item(acc, scored(f"s{i:02}", sentiment), top_n=3)  # type: ignore[arg-type]
    params = BaselineParams(min_windows=2)
    young = close_window(acc, Baseline(count_sum=5, negative_sum=1, weight=0.5, windows_seen=1), params)
    assert young.baseline_negative_share is None
    agg = close_window(acc, Baseline(count_sum=5, negative_sum=1, weight=0.5, windows_seen=2), params)
    assert (agg.count, agg.negative_count, agg.negative_share) == (12, 6, 0.5)
    assert agg.baseline_negative_share == pytest.approx(0.2)
    assert agg.baseline_volume == pytest.approx(10)
    assert [h.story_id for h in agg.top_negative] == ["s00", "s01", "s04"]
    assert agg.top_negative[0].url == "https://news.example/s00"
    assert agg.mean_score == pytest.approx((6 * -0.8 + 3 * 0.7) / 12)
    assert agg.window_end - agg.window_start == timedelta(minutes=5)


def test_empty_window_cannot_close() -> None:
    with pytest.raises(ValueError, match="empty"):
        close_window(open_window("topic", "x", TUMBLING, T0), None, BaselineParams())


def test_baseline_tracks_share_and_volume() -> None:
    params = BaselineParams(alpha=0.1, min_windows=3)
    base = None
    for i in range(50):
        base = update_baseline(base, window("x", i, 20, 4), params, TUMBLING)
    assert base is not None
    assert base.trusted(params) == pytest.approx((0.2, 20.0))


def test_baseline_gap_decays_volume_not_share() -> None:
    params = BaselineParams(alpha=0.1)
    base = update_baseline(None, window("x", 0, 20, 4), params, TUMBLING)
    after_gap = update_baseline(base, window("x", 11, 20, 4), params, TUMBLING)  # 10 empty windows
    assert after_gap.negative_share == pytest.approx(0.2)
    assert after_gap.volume is not None
    assert after_gap.volume < 20


def test_after_a_quiet_night_one_thin_window_weighs_no_more_than_it_would_have_before() -> None:
    # 200 windows at 2 of 20 negative, then one of 2 stories, both negative: next window, or
    # after 100 windows (8 hours) without stories.
    params = BaselineParams()
    base = None
    for i in range(200):
        base = update_baseline(base, window("x", i, 20, 2), params, TUMBLING)
    at_once = update_baseline(base, window("x", 200, 2, 2), params, TUMBLING)
    overnight = update_baseline(base, window("x", 300, 2, 2), params, TUMBLING)
    assert at_once.negative_share == pytest.approx(0.105, abs=0.001)
    assert overnight.negative_share == pytest.approx(at_once.negative_share)  # was 0.51
    assert overnight.volume is not None
    assert at_once.volume is not None
    assert overnight.volume < at_once.volume  # the volume's average still ages over the gap
    # A baseline kept before the share had sums of its own reads as it was written.
    old = Baseline(count_sum=20.0, negative_sum=4.0, weight=1.0, windows_seen=10)
    assert old.negative_share == pytest.approx(0.2)
    assert update_baseline(old, window("x", 11, 20, 4), params, TUMBLING).negative_share == pytest.approx(0.2)


def test_baseline_is_idempotent_and_forgets_after_long_silence() -> None:
    params = BaselineParams(alpha=0.5)
    w = window("x", 0, 20, 4)
    base = update_baseline(None, w, params, TUMBLING)
    assert update_baseline(base, w, params, TUMBLING) is base
    reborn = update_baseline(base, window("x", 10_000, 10, 9), params, TUMBLING)
    assert reborn.windows_seen == 1
    assert reborn.negative_share == pytest.approx(0.9)


_stories = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from(["negative", "neutral", "positive"])), max_size=40
)


@given(_stories, st.randoms(use_true_random=False))
def test_windows_are_order_independent_and_idempotent(stories: list, rnd: object) -> None:
    items = [scored(f"s{sid}", sentiment) for sid, sentiment in stories]
    # A story id keeps its first sentiment (redeliveries are the same record).
    first = {}
    for it in items:
        first.setdefault(it.story_id, it)
    items = [first[it.story_id] for it in items]
    shuffled = items + items[: len(items) // 2]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    a = rebuild_windows(items, [TUMBLING], BaselineParams())
    b = rebuild_windows(shuffled, [TUMBLING], BaselineParams())
    assert [(w.key, w.count, w.negative_count, w.top_negative) for w in a] == [
        (w.key, w.count, w.negative_count, w.top_negative) for w in b
    ]
    assert [w.mean_score for w in a] == pytest.approx([w.mean_score for w in b])
    topic = [w for w in a if w.entity_kind == "topic"]
    assert sum(w.count for w in topic) == len(first)
    assert sum(w.negative_count for w in topic) == sum(it.sentiment == "negative" for it in first.values())


@given(st.lists(st.tuples(st.integers(1, 200), st.floats(0, 1)), min_size=1, max_size=60))
def test_baseline_share_stays_within_observed_range(series: list[tuple[int, float]]) -> None:
    base = None
    shares = []
    for i, (count, share) in enumerate(series):
        negative = round(count * share)
        shares.append(negative / count)
        base = update_baseline(base, window("x", i, count, negative), BaselineParams(), TUMBLING)
    assert base is not None
    assert base.negative_share is not None
    assert min(shares) - 1e-9 <= base.negative_share <= max(shares) + 1e-9
    assert base.volume is not None
    assert min(c for c, _ in series) - 1e-6 <= base.volume <= max(c for c, _ in series) + 1e-6
    assert Baseline.model_validate_json(base.model_dump_json()) == base


def test_window_starts_hopping_count() -> None:
    assert len(window_starts(HOPPING, T0)) == 12
