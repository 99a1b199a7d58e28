"""Checks of the stream's end-to-end tests: expected window counts straight from the replay file
(through the same window bounds), and that every window counted exactly its stories."""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

from alerts.windows import window_specs, window_starts
from finpulse.processes import CliProcess
from finpulse.schema import ScoredItem, WindowAggregate
from finpulse.settings import Settings
from ingest.sample import PlantedSpike, write_planted_spike
from tests.fixtures.stream import REPLAY_START
from tests.kafka_io import read_topic

ALERT_WAIT_S = 150


def expected_counts(path: Path, settings: Settings) -> Counter[tuple[str, str, datetime]]:
    """Stories per (entity key, window kind, window start) straight from the replay file,
    for the windows that can close: those ending by the last story's time (event time
    never passes the others' end)."""
    specs = window_specs(settings.alerts)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    last = max(datetime.fromisoformat(row["published_at"]) for row in rows)
    counts: Counter[tuple[str, str, datetime]] = Counter()
    for row in rows:
        when = datetime.fromisoformat(row["published_at"])
        entities = [f"ticker:{t}" for t in row["tickers"]] + [f"source:{row['source']}"]
        for entity in entities:
            for spec in specs.values():
                for start in window_starts(spec, when):
                    if start + spec.size <= last:
                        counts[(entity, spec.kind, start)] += 1
    return counts


def final_counts(windows: list[WindowAggregate]) -> Counter[tuple[str, str, datetime]]:
    """Each window's count at its latest revision (late items re-emit a window)."""
    latest: dict[tuple[str, str, datetime], WindowAggregate] = {}
    for w in windows:
        key = (f"{w.entity_kind}:{w.entity}", w.window_kind, w.window_start)
        if key not in latest or w.revision >= latest[key].revision:
            latest[key] = w
    return Counter({k: w.count for k, w in latest.items() if not k[0].startswith("topic:")})


async def read_until(settings: Settings, topic: str, expect: int, timeout_s: float) -> list[bytes]:
    return [r.value for r in await read_topic(settings.kafka, topic, expect=expect, timeout_s=timeout_s)]


def replay(settings: Settings, tmp_path: Path, *, spike: bool) -> PlantedSpike:
    return write_planted_spike(
        settings.model.train_data_dir, tmp_path / "replay.jsonl", start=REPLAY_START, spike=spike
    )


async def assert_every_window_counts_its_input(
    settings: Settings, truth: PlantedSpike, worker: CliProcess
) -> None:
    """Every window that can close reports exactly its stories, and every story was scored."""
    expected = expected_counts(truth.path, settings)
    deadline = asyncio.get_running_loop().time() + ALERT_WAIT_S
    missing: dict[tuple[str, str, datetime], tuple[int, int | None]] = {}
    while asyncio.get_running_loop().time() < deadline:
        raw = await read_until(settings, settings.kafka.topics.windows, len(expected), 20)
        got = final_counts([WindowAggregate.from_bytes(v) for v in raw])
        missing = {k: (v, got.get(k)) for k, v in expected.items() if got.get(k) != v}
        if not missing:
            break
    some = dict(list(missing.items())[:5])
    assert not missing, f"windows differing from the input (expected, got): {some}\n{worker.tail()}"
    stories = {ScoredItem.from_bytes(v).story_id for v in await read_until(
        settings, settings.kafka.topics.scored, truth.items, 30)}  # fmt: skip
    assert len(stories) == truth.items
    per_window = defaultdict(set)
    for key in got:
        per_window[key[0]].add(key[2])
    assert per_window["ticker:ACME"], worker.tail()
