"""The planted-spike replay files: the burst is bearish, and `plain` makes it plainly so."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from finpulse.settings import ModelSettings
from ingest.sample import _PLAIN_BEARISH, BEARISH, write_planted_spike

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _spike_rows(path: Path, start: datetime, end: datetime) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [
        r
        for r in rows
        if r["tickers"] == ["ACME"] and start <= datetime.fromisoformat(str(r["published_at"])) < end
    ]


def test_the_spike_is_bearish_and_plain_when_asked(tmp_path: Path) -> None:
    data = ModelSettings().train_data_dir
    usual = write_planted_spike(data, tmp_path / "usual.jsonl", start=T0, seed=3)
    plain = write_planted_spike(data, tmp_path / "plain.jsonl", start=T0, seed=3, plain=True)
    assert usual.items == plain.items  # the same shape of file, the same truth
    assert (usual.spike_start, usual.spike_end) == (plain.spike_start, plain.spike_end)
    for truth, only_plain in ((usual, False), (plain, True)):
        spike = _spike_rows(truth.path, truth.spike_start, truth.spike_end)
        assert len(spike) == 2 * 16  # two 5-minute blocks of 16
        assert {r["label"] for r in spike} == {BEARISH}
        held = [bool(_PLAIN_BEARISH.search(str(r["title"]))) for r in spike]
        assert all(held) if only_plain else not all(held)
