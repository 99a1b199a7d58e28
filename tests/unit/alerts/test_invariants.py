"""Property-based invariants of the detector over arbitrary window series."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import BaselineParams

from .synth import replay, subscription

_window = st.integers(0, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))
_series = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]), st.lists(_window, min_size=1, max_size=40), min_size=1
)
_params = st.fixed_dictionaries(
    {
        "min_volume": st.integers(1, 30),
        "min_rise": st.sampled_from([0.1, 0.2, 0.4]),
        "significance": st.sampled_from([0.001, 0.05, 0.2]),
        "correction": st.sampled_from(["bh", "holm", "none"]),
        "resolve_windows": st.integers(1, 3),
        "cooldown_s": st.sampled_from([0, 600, 3600]),
    }
)


@settings(max_examples=60, deadline=None)
@given(_series, _params)
def test_detector_invariants(series: dict[str, list[tuple[int, int]]], params: dict[str, object]) -> None:
    sub = subscription(**params)
    base = BaselineParams(min_windows=2, alpha=0.2)
    events = replay(series, [sub], base)

    # Deterministic: the same history yields the same events, ids included.
    assert events == replay(series, [sub], base)

    per_entity: dict[str, list] = defaultdict(list)
    for i, e in events:
        per_entity[e.entity].append((i, e))
    for entity_events in per_entity.values():
        # fired / resolved alternate, starting with fired; each resolve closes the open alert.
        states = [e.state for _, e in entity_events]
        assert states == ["fired", "resolved"] * (len(states) // 2) + ["fired"] * (len(states) % 2)
        for (_, fired), (_, resolved) in zip(entity_events[::2], entity_events[1::2], strict=False):
            assert resolved.fired_alert_id == fired.alert_id
        # No re-fire within the cooldown after a calm resolve (event time); after a quiet one (no
        # or too few stories) a burst fires at once.
        for (_, resolved), (_, refired) in zip(entity_events[1::2], entity_events[2::2], strict=False):
            if resolved.resolved_because == "calm":
                assert (refired.window_end - resolved.window_end).total_seconds() >= sub.detector.cooldown_s

    for _, e in events:
        if e.state == "fired":
            assert e.count >= sub.detector.min_volume
            assert e.negative_share - e.baseline_negative_share >= sub.detector.min_rise
            assert e.p_value <= sub.detector.significance
    assert len({e.alert_id for _, e in events}) == len(events)
