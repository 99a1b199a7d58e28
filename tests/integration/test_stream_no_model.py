"""A worker that cannot load its model: it exits 2 (a config error) and leaves news.raw as it was.

Real broker, real worker process, a model folder that does not exist or holds a damaged file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from finpulse.errors import ERROR_EXIT
from finpulse.processes import CliProcess
from finpulse.settings import Settings
from finpulse.topics import dead_letter_topic
from tests.fixtures.stream import calm_replay_until_exit
from tests.kafka_io import committed, read_topic


@pytest.fixture(params=["missing", "damaged"])
def problem(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stream_settings(stream_settings: Settings, tmp_path: Path, problem: str) -> Settings:
    """No model folder, or one whose lexical.json is damaged (loaded in the classifier's child
    processes: its error has to come back from one whole)."""
    folder = tmp_path / "model"
    if problem == "damaged":
        folder.mkdir()
        for file in stream_settings.model.model_dir.iterdir():
            (folder / file.name).symlink_to(file)
        (folder / "lexical.json").unlink()
        (folder / "lexical.json").write_text("{")
    model = stream_settings.model.model_copy(update={"model_dir": folder})
    return stream_settings.model_copy(update={"model": model})


async def test_a_worker_without_its_model_exits_2_and_commits_nothing(
    stream_settings: Settings, worker: CliProcess, tmp_path: Path, problem: str
) -> None:
    assert stream_settings.stream.classifier_processes > 0
    kafka = stream_settings.kafka
    await calm_replay_until_exit(stream_settings, worker, tmp_path)
    assert worker.returncode == ERROR_EXIT, worker.tail()
    said = "no trained model" if problem == "missing" else "lexical.json is unusable"
    assert said in worker.log.read_text(errors="replace"), worker.tail()
    # The stories wait on news.raw for the model: none dead-lettered, no offset committed.
    dead = dead_letter_topic(kafka.topics.raw, kafka.topics)
    assert await read_topic(kafka, dead, expect=1, timeout_s=2) == []
    raw = await committed(kafka, stream_settings.stream.app_id, kafka.topics.raw)
    assert all(offset <= 0 for offset in raw.values()), raw
