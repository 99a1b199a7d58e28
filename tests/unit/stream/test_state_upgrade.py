"""Table state written by a newer worker is read by an older one (a rolling upgrade): fields it
does not know are read past, not a ValidationError that dead-letters the entity's records."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pydantic import BaseModel

from alerts.aggregate import open_window
from alerts.baseline import Baseline
from alerts.detector import DetectorState
from alerts.windows import WindowSpec
from stream.windowing import WindowSlot

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _with_a_later_field(state: BaseModel) -> bytes:
    data = json.loads(state.model_dump_json())
    data["added_by_a_later_version"] = {"n": 1}
    return json.dumps(data).encode()


def test_every_table_states_model_reads_past_a_newer_versions_fields() -> None:
    acc = open_window("ticker", "ACME", WindowSpec(kind="tumbling", size_s=300, step_s=300), START)
    baseline = Baseline(count_sum=40.0, negative_sum=6.0, weight=0.4)
    states: list[BaseModel] = [
        acc,
        baseline,
        DetectorState(status="firing", fired_alert_id="a1", last_window_end=START),
        WindowSlot(partition=3, acc=acc, offset=17, baseline=baseline),
    ]
    for state in states:
        assert type(state).model_validate_json(_with_a_later_field(state)) == state
