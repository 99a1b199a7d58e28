"""The worker's classifier: lanes in process; child processes score as in process, restart after a crash,
die with their parent."""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from finpulse.schema import NewsItem
from finpulse.settings import ModelSettings
from model.engine import Classifier
from model.errors import ModelNotFound
from stream.inference import ClassifierCrashed, ClassifierProcess
from stream.services import ClassifierService

HEADLINES = [
    "Apple shares plunge after weak iPhone sales https://t.co/abc",
    "Fed holds rates steady, signals cuts later this year",
    "$TSLA jumps 8% as deliveries beat estimates",
    "",
]


def _model_children(pid: int) -> list[int]:
    """Processes `pid` spawned through multiprocessing (not its resource tracker or others)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout
    return [int(c) for c in out.split() if b"spawn_main" in _cmdline(int(c))]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for its (new) parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _items() -> list[NewsItem]:
    when = datetime(2026, 3, 2, 9, tzinfo=UTC)
    return [
        NewsItem(story_id=f"s{i}", source="test", title=t or "-", published_at=when, fetched_at=when)
        for i, t in enumerate(HEADLINES)
    ]


@pytest.fixture
def model_settings(quick_model_dir: Path) -> ModelSettings:
    return ModelSettings(model_dir=quick_model_dir, device="cpu", threads=1)


async def test_children_score_like_the_classifier_in_process(model_settings: ModelSettings) -> None:
    items = _items()
    # The same batches as the children get: bf16 sums depend on a batch's padded length.
    classifier = Classifier.load(model_settings.model_dir, device="cpu", threads=1)
    local = classifier.score(items[:2]) + classifier.score(items[2:])
    children = ClassifierProcess(model_settings, processes=2)
    try:
        await children.start()
        assert children.version == local[0].model_version
        assert len(_model_children(os.getpid())) == 2
        # Two batches side by side, one per child: each comes back to its own caller.
        first, second = await asyncio.gather(children.score(items[:2]), children.score(items[2:]))
    finally:
        await children.stop()
    remote = first + second
    assert [(r.item.story_id, r.topic, r.sentiment, r.model_version) for r in remote] == [
        (r.item.story_id, r.topic, r.sentiment, r.model_version) for r in local
    ]
    for a, b in zip(remote, local, strict=True):
        assert a.sentiment_probs == pytest.approx(b.sentiment_probs, abs=1e-5)
    assert not _model_children(os.getpid())


async def test_lanes_score_batches_side_by_side_like_one_classifier(model_settings: ModelSettings) -> None:
    items = _items() * 8
    # Four batches for two lanes: each lane takes one, the next waits for a free lane.
    batches = [items[i : i + 8] for i in range(0, len(items), 8)]
    classifier = Classifier.load(model_settings.model_dir, device="cpu", threads=1)
    local = [s for batch in batches for s in classifier.score(batch)]
    service = ClassifierService(model_settings, processes=0, lanes=2)
    assert service.parallel == 2
    try:
        scored = await asyncio.gather(*(service.score(b) for b in batches))
        # Every lane came back: a second round does not wait forever.
        again = await asyncio.wait_for(asyncio.gather(*(service.score(b) for b in batches)), timeout=120)
    finally:
        await service.stop()  # unfreezes the collector (frozen by the load) for the rest of the session
    assert not gc.get_freeze_count()
    assert [[(x.item.story_id, x.topic) for x in b] for b in again] == [
        [(x.item.story_id, x.topic) for x in b] for b in scored
    ]
    lanes = [s for batch in scored for s in batch]
    assert [(s.item.story_id, s.topic, s.sentiment) for s in lanes] == [
        (s.item.story_id, s.topic, s.sentiment) for s in local
    ]
    for a, b in zip(lanes, local, strict=True):
        assert a.topic_probs == pytest.approx(b.topic_probs, abs=1e-5)
    assert not _model_children(os.getpid())  # in this process


async def test_a_killed_child_fails_one_call_and_is_restarted(model_settings: ModelSettings) -> None:
    child = ClassifierProcess(model_settings)
    try:
        await child.start()
        (pid,) = _model_children(os.getpid())
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ClassifierCrashed, match="restarts on the next batch"):
            await child.score(_items())
        scored = await child.score(_items())  # a new child
        assert len(scored) == len(HEADLINES)
        assert pid not in _model_children(os.getpid())
    finally:
        await child.stop()
    assert not _model_children(os.getpid())


def test_child_dies_with_a_sigkilled_parent(model_settings: ModelSettings, tmp_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from finpulse.settings import ModelSettings\n"
        "from stream.inference import ClassifierProcess\n"
        "async def main():\n"
        f"    settings = ModelSettings(model_dir={str(model_settings.model_dir)!r}, threads=1)\n"
        "    child = ClassifierProcess(settings)\n"
        "    await child.start()\n"
        "    print('ready', flush=True)\n"
        "    await asyncio.sleep(600)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        model_child = _model_children(parent.pid)
        assert model_child
        parent.kill()
        parent.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in model_child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in model_child), "the classifier outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()


async def test_a_missing_model_fails_start_with_what_to_do_and_the_next_start_loads_again(
    tmp_path: Path, quick_model_dir: Path
) -> None:
    """Then the model appears (a retrained one swapped in at that moment): the next batch loads it."""
    child = ClassifierProcess(ModelSettings(model_dir=tmp_path / "model", threads=1))
    try:
        with pytest.raises(ModelNotFound, match="finpulse model train"):
            await child.start()
        shutil.copytree(quick_model_dir, tmp_path / "model")
        await child.start()
        assert child.version is not None
    finally:
        await child.stop()
