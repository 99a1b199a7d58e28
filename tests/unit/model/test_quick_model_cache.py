"""The quick model cache (tests/fixtures/model.py) drops entries nobody used for a while."""

import os
import time
from pathlib import Path

from tests.fixtures.model import prune_stale


def test_prune_removes_only_entries_unused_past_the_limit(tmp_path: Path) -> None:
    old, recent, current = (tmp_path / name for name in ("old", "recent", "current"))
    for entry in (old, recent, current):
        entry.mkdir()
        (entry / "model.safetensors").write_bytes(b"weights")
    week_ago = time.time() - 7 * 24 * 3600
    os.utime(old, (week_ago, week_ago))
    os.utime(current, (week_ago, week_ago))  # just built or used, whatever its age
    assert prune_stale(tmp_path, keep=current, stale_after_s=24 * 3600) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current", "recent"]
