"""Options of the service commands are checked before anything starts: a bad value is a usage
error (exit 2) naming the option, not a traceback after topics were created or a store opened."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("worker", "--loglevel", "bogus"), "Invalid value for '--loglevel': 'bogus': give one of crit,"),
        (("stream", "bench", "--items", "-5"), "Invalid value for '--items'"),
        (("stream", "bench", "--rates", "abc"), "Invalid value for '--rates': 'abc': give items/s above 0"),
        (("stream", "bench", "--rates", "25,0"), "Invalid value for '--rates'"),
        (("stream", "bench", "--duration-s", "-1"), "Invalid value for '--duration-s'"),
        (("api", "--port", "99999"), "Invalid value for '--port'"),
        (("feedback", "export", "--out", "x.csv", "--exclude", "/nonexistent.csv"), "'--exclude'"),
    ],
)
def test_bad_options_are_usage_errors(args: tuple[str, ...], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "finpulse.cli", *args],
        capture_output=True, text=True, timeout=120,
        env={"COLUMNS": "300", "PATH": "", "FINPULSE_KAFKA_BOOTSTRAP": "127.0.0.1:1"},
    )  # fmt: skip
    said = " ".join(done.stderr.replace("│", " ").split())
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in said, said
    assert "Traceback" not in done.stderr
