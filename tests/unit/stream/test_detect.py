"""The detect agent's batch of windows (stream/detect.py): windows the consumer skipped come first,
in each partition's order, also when reading them back fails for a while."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest

from alerts import DetectorState
from alerts.baseline import update_baseline
from alerts.detector import state_key
from finpulse.errors import TransientError
from finpulse.schema import AlertEvent, WindowAggregate
from stream.detect import _escaped, _evaluate, _readable, _windows_of
from stream.skipped import Record
from tests.unit.alerts.synth import DEFAULT_BASELINE, TUMBLING, subscription, window
from tests.unit.stream.test_skipped import _Skipped

WINDOWS = [window("Earnings", i, count=10, negative=i) for i in range(6)]


def _event(offset: int) -> Any:
    message = SimpleNamespace(topic="windows", partition=0, offset=offset)
    return SimpleNamespace(message=message, value=WINDOWS[offset].to_bytes())


class _Windows(_Skipped):
    """The windows partition as the broker holds it; `down` while it does not answer reads."""

    down = False

    async def read(self, partition: int, start: int, end: int) -> list[Record]:
        if self.down:
            raise TransientError("broker unreachable")
        self.asked.append((partition, start, end))
        return [Record(o, b"topic:Earnings", WINDOWS[o].to_bytes(), {}) for o in range(start, end)]


def _offsets(windows: list[WindowAggregate]) -> list[int]:
    return [WINDOWS.index(w) for w in windows]


async def test_a_window_whose_gap_cannot_be_read_back_waits_for_the_next_batch() -> None:
    skipped = _Windows({0: 0})
    skipped.pause_s = 0.0
    windows, read_back = await _windows_of([_event(0), _event(1)], skipped, dead=None)  # type: ignore[arg-type]
    assert (_offsets(windows), read_back) == ([0, 1], [])
    skipped.down = True  # Faust skipped 2 and 3, and the broker does not answer their read
    windows, read_back = await _windows_of([_event(4)], skipped, dead=None)  # type: ignore[arg-type]
    assert (windows, read_back) == ([], [])  # evaluated before 2 and 3, they would count as replays
    skipped.down = False
    windows, read_back = await _windows_of([_event(5)], skipped, dead=None)  # type: ignore[arg-type]
    assert _offsets(windows) == [2, 3, 4, 5]
    assert [r.offset for _, r in read_back] == [2, 3, 4]  # acked once evaluated


def test_a_detector_state_this_version_cannot_read_starts_afresh() -> None:
    firing = DetectorState(status="firing", fired_alert_id="a1", fired_baseline=0.1)
    stored = {
        "desk|topic:Earnings|tumbling": firing.model_dump_json(),
        "old|topic:Earnings|tumbling": '{"status": "paused"}',  # a status it does not know
    }
    assert _readable(stored) == {"desk|topic:Earnings|tumbling": firing}


class _Alerts:
    """The alerts topic: what the agent sends, delivered at once."""

    def __init__(self) -> None:
        self.sent: list[AlertEvent] = []

    async def send(self, key: bytes, value: bytes) -> asyncio.Future[None]:
        self.sent.append(AlertEvent.from_bytes(value))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.mark.parametrize("topic", ["Earnings", "Energy | Oil"])
async def test_an_entity_keeps_its_detector_state_from_batch_to_batch(topic: str) -> None:
    # A spike fires once and resolves once, also for a topic whose name holds the '|' the
    # state keys escape: its state was written where the next batch never read it, so it
    # fired at every spiking window and never resolved.
    states: dict[bytes, bytes] = {}
    alerts = _Alerts()
    topics: Any = SimpleNamespace(alerts=alerts)
    baseline = None
    for i, (count, negative) in enumerate([(20, 2)] * 30 + [(20, 14)] * 3 + [(20, 2)] * 4):
        w = window(topic, i, count, negative, baseline=baseline)
        await _evaluate(states, topics, [w], [subscription()])  # type: ignore[arg-type]
        baseline = update_baseline(baseline, w, DEFAULT_BASELINE, TUMBLING)
    assert [a.state for a in alerts.sent] == ["fired", "resolved"]
    assert list(states) == [f"topic:{topic}".encode()]


async def test_states_kept_under_the_escaped_key_of_earlier_versions_are_read() -> None:
    key = state_key("desk", "topic", "Energy | Oil", "tumbling")
    firing = DetectorState(status="firing", fired_alert_id="a1", fired_baseline=0.1)
    states = {_escaped("topic", "Energy | Oil"): json.dumps({key: firing.model_dump_json()}).encode()}
    alerts = _Alerts()
    calm = [window("Energy | Oil", i, 20, 1) for i in range(3)]
    for w in calm:
        await _evaluate(states, SimpleNamespace(alerts=alerts), [w], [subscription()])  # type: ignore[arg-type]
    assert [(a.state, a.fired_alert_id) for a in alerts.sent] == [("resolved", "a1")]
    assert b"topic:Energy | Oil" in states
