"""What a running ingestor reloads (ingest/live_config.py), and `finpulse ingest check`, which
validates the same files before an edit goes live."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from ingest.live_config import ConfigFiles, ConfigWatch
from tests.conftest import FINPULSE

FEED = '[[feeds]]\nname = "{}"\nurl = "https://news.example.com/{}.rss"\n'


def _files(tmp_path: Path) -> ConfigFiles:
    sources, companies = tmp_path / "sources.toml", tmp_path / "companies.toml"
    sources.write_text(FEED.format("a", "a"))
    companies.write_text('[tickers]\nTSLA = ["Tesla"]\n')
    return ConfigFiles(sources, companies)


async def test_an_edit_is_loaded_a_broken_one_waited_past_and_the_next_good_one_loaded(
    tmp_path: Path,
) -> None:
    files = _files(tmp_path)
    watch = ConfigWatch(files, refresh_s=0.05)
    with_timeout = asyncio.wait_for(watch.next_change(), 0.3)
    try:  # unchanged files: nothing to load
        await with_timeout
        raise AssertionError("no change was made")
    except TimeoutError:
        pass
    files.sources.write_text(FEED.format("a", "a") + FEED.format("b", "b"))
    config, names = await asyncio.wait_for(watch.next_change(), 2)
    assert [s.name for s in config.all()] == ["a", "b"]
    assert names.tickers("Tesla recalls cars") == ("TSLA",)
    files.companies.write_text("[tickers]\nTSLA = [")  # broken: logged, not returned
    pending = asyncio.ensure_future(watch.next_change())
    await asyncio.sleep(0.3)
    assert not pending.done()
    files.companies.write_text('[tickers]\nTSLA = ["Tesla"]\nF = ["Ford"]\n')
    _, names = await asyncio.wait_for(pending, 2)
    assert names.tickers("Ford cuts jobs") == ("F",)


def test_check_says_what_the_files_hold_or_what_is_wrong(tmp_path: Path) -> None:
    files = _files(tmp_path)
    env = {**os.environ, "FINPULSE_INGEST_COMPANIES_FILE": str(files.companies), "COLUMNS": "300"}

    def check() -> subprocess.CompletedProcess[str]:
        args = [FINPULSE, "ingest", "check", "--sources", str(files.sources)]
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)

    ok = check()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "sources.toml: sources 1 enabled (1 feed), 0 disabled" in ok.stdout
    assert "companies.toml: company names 1, for tickers 1" in ok.stdout
    files.sources.write_text(FEED.format("a", "a") * 2)
    bad = check()
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "source names must be unique: a" in bad.stdout + bad.stderr
    # A replay whose file is not there: the ingestor's poll of it would fail.
    files.sources.write_text('[[replays]]\nname = "r"\npath = "missing.jsonl"\n')
    gone = check()
    assert gone.returncode == 2, gone.stdout + gone.stderr
    assert f"error: replay 'r': no file {files.sources.parent / 'missing.jsonl'}" in gone.stdout
    # Minutes written as seconds: valid, but said.
    files.sources.write_text(FEED.format("a", "a") + "interval_s = 5\n")
    fast = check()
    assert fast.returncode == 0, fast.stdout + fast.stderr
    assert "warning: 'a' polls every 5 s (interval_s is in seconds: 600 is 10 min)" in fast.stdout
