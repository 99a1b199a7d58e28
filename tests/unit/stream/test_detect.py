"""The detect agent's batch of windows (stream/detect.py): windows the consumer skipped come first,
in each partition's order, also when reading them back fails for a while."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from alerts import DetectorState
from finpulse.errors import TransientError
from finpulse.schema import WindowAggregate
from stream.detect import _readable, _windows_of
from stream.skipped import Record
from tests.unit.alerts.synth import window
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
        "old|topic:Earnings|tumbling": '{"x": 1}',
    }
    assert _readable(stored) == {"desk|topic:Earnings|tumbling": firing}
