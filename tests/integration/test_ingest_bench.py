"""`finpulse ingest bench`'s figures, over one real feed: normalisation with the language guess and
without it, measured in the same run (the README quotes both): printed, not compared (a timed
test would be flaky; the bench is the measure)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from finpulse.settings import IngestSettings


def test_bench_prints_normalisation_with_and_without_the_language_guess(tmp_path: Path) -> None:
    shutil.copy(IngestSettings().feeds_dir / "real-world/guardian.rss", tmp_path)
    # Its own process: the bench pins the process it runs in to one core.
    args = ("ingest", "bench", "--rounds", "1", "--feeds-dir", str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "finpulse.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with_guess = re.search(r"items normalised/s: +([\d.]+) +\(with the language guess\)", done.stdout)
    without = re.search(r"without the guess: +([\d.]+)", done.stdout)
    assert with_guess, done.stdout
    assert without, done.stdout
    assert float(without[1]) > 0, done.stdout
    assert float(with_guess[1]) > 0, done.stdout
