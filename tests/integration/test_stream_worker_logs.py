"""The worker's log: FINPULSE_LOG_LEVEL's level and finpulse's format, once Faust's worker started too.

Real broker, real worker process (started without --loglevel), the quick-trained model.
"""

from __future__ import annotations

import re
from pathlib import Path

from finpulse.processes import CliProcess, settings_env
from finpulse.settings import Settings
from tests.conftest import wait_for_log

STARTED = "classifier processes started"


async def test_the_worker_logs_at_the_settings_level_in_finpulse_s_format(
    stream_settings: Settings, tmp_path: Path
) -> None:
    # It handed Faust "--loglevel warn", and Faust set logging up again: INFO lines stopped after
    # the banner (this one, naming the model that serves, among them), and the rest read
    # "[2026-12-07 23:10:07,093] [15401] [WARNING] ...", no zone, no logger, terminal colours.
    assert stream_settings.log_level == "INFO"
    worker = CliProcess(["worker"], settings_env(stream_settings), tmp_path / "worker.log").start()
    try:
        await wait_for_log(worker, STARTED, timeout_s=60)
    finally:
        worker.stop()
    lines = worker.log.read_text(errors="replace").splitlines()
    date = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4}"
    assert any(re.fullmatch(rf"{date} INFO stream\.inference: {STARTED} n=.*", line) for line in lines)
    assert not [line for line in lines if re.match(r"\[\d{4}-|.*\x1b\[", line)], worker.tail()
