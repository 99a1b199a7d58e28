"""The classifier's threads follow the cores the worker may use, not the host's."""

from __future__ import annotations

from pathlib import Path

import pytest

import stream.inference
from finpulse.settings import ModelSettings
from stream.inference import threads_each, usable_cpus


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [("max 100000\n", 8), ("200000 100000\n", 2), ("50000 100000\n", 1), (None, 8), ("garbage", 8)],
)
def test_a_containers_cpu_quota_bounds_the_cores(
    cpu_max: str | None, cpus: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(8)))
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_text(cpu_max)
    monkeypatch.setattr(stream.inference, "CPU_MAX", path)
    assert usable_cpus() == cpus
    assert threads_each(ModelSettings(), 2) == max(1, cpus // 2)
    assert threads_each(ModelSettings(threads=3), 2) == 3  # set: as set
