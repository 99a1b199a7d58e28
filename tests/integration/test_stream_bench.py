"""`finpulse stream bench` end to end, small: a real worker on the test broker, the quick model."""

from __future__ import annotations

import asyncio
from pathlib import Path

from finpulse.settings import Settings
from finpulse.topics import topics_starting
from stream.bench import BENCH_PREFIX, run_bench


def test_bench_measures_classifier_pipeline_and_latency_in_one_run(
    stream_settings: Settings, tmp_path: Path
) -> None:
    work = tmp_path / "bench"
    work.mkdir()
    result = run_bench(stream_settings, work, items=96, rates=[20.0], duration_s=3, rounds=2)
    assert result.warmup_items_s > 0
    assert len(result.rounds) == 2
    for r in result.rounds:
        assert min(r.classifier_docs_s, r.worker_docs_s, r.pipeline_items_s) > 0
        assert r.ratio == r.pipeline_items_s / max(r.classifier_docs_s, r.worker_docs_s)
    assert result.ratio == min(r.ratio for r in result.rounds)  # the lower middle of two
    [load] = result.loads
    assert load.items == 60
    p50, p95, p99 = load.score_latency_s
    assert 0 < p50 <= p95 <= p99 < 30  # a NaN fails the comparisons too
    # The run's topics (pipeline, dead letters, the worker's changelogs) are gone.
    assert asyncio.run(topics_starting(stream_settings.kafka, BENCH_PREFIX)) == []
