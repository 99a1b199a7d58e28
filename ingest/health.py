"""Each source's health, read from the ingestor's state files (for `finpulse status`).

The ingestor saves a state file per source after every poll (ingest/state.py);
this only reads them. A source is `ok`, `failing` (its last poll failed: how many
times in a row, the last error), `late` (no successful poll for three of its
intervals although nothing failed: the ingestor is probably not running),
`waiting` (never polled yet) or `disabled`. Replay files are polled once, so
they are never late.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from finpulse.settings import IngestSettings

from .sources import ReplaySource, SourcesConfig, load_sources
from .state import SourceState, peek_state

# No successful poll for this many intervals: late.
LATE_INTERVALS = 3
Health = Literal["ok", "failing", "late", "waiting", "disabled"]


@dataclass(frozen=True)
class SourceHealth:
    name: str
    kind: str
    interval_s: float
    health: Health
    state: SourceState

    def detail(self) -> str:
        """What to look at: the last error of a failing source, what a late one lacks."""
        if self.health == "failing":
            return f"{self.state.consecutive_errors} failed poll(s) in a row: {self.state.last_error}"
        if self.health == "late":
            return f"no poll for over {LATE_INTERVALS} x {self.interval_s:g} s: is `finpulse ingest` running?"
        return ""


def judge(state: SourceState | None, *, interval_s: float, once: bool, now: datetime) -> Health:
    """One source's health from its saved state."""
    if state is None or state.last_poll_at is None:
        return "waiting"
    if state.consecutive_errors:
        return "failing"
    if not once and now - state.last_poll_at > timedelta(seconds=LATE_INTERVALS * interval_s):
        return "late"
    return "ok"


def source_health(
    config: SourcesConfig, state_dir: Path, default_interval_s: float, now: datetime
) -> list[SourceHealth]:
    """Every configured source (disabled ones too), in the file's order."""
    out = []
    for source in config.all(include_disabled=True):
        interval = source.interval_s or default_interval_s
        state = peek_state(state_dir, source.name)
        once = isinstance(source, ReplaySource)
        health = judge(state, interval_s=interval, once=once, now=now) if source.enabled else "disabled"
        out.append(
            SourceHealth(source.name, source.kind, interval, health, state or SourceState(source=source.name))
        )
    return out


def configured_health(ingest: IngestSettings, now: datetime) -> list[SourceHealth]:
    """The health of the sources in the settings' sources file; raises SourcesFileError."""
    config = load_sources(ingest.sources_file, allow_private=ingest.allow_private_hosts)
    return source_health(config, ingest.state_dir, ingest.default_interval_s, now)
