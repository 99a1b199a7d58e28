"""Per-source state persisted between polls and across restarts.

One JSON file per source in `ingest.state_dir`, written atomically (temp file,
fsync, rename) after the items of a poll were acknowledged by Kafka, so a
restart neither re-publishes what was sent nor skips what was not: the HTTP
validators (ETag / Last-Modified) are only saved together with the ids of the
items they covered. One ingestor process owns a state dir.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

logger = logging.getLogger(__name__)


class SourceState(BaseModel):
    """What the ingestor remembers about one source."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    source: str
    etag: str | None = None
    last_modified: str | None = None
    # item identity -> time of the last successful poll that listed it
    seen: dict[str, datetime] = {}
    cursor: str | None = None
    replay_digest: str | None = None
    replay_done: int = 0
    next_poll_at: datetime | None = None
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    consecutive_errors: int = 0
    errors_total: int = 0
    last_error: str | None = None
    items_published: int = 0
    # The last poll that published a new item; the last poll's entries, and those dead-lettered.
    last_new_at: datetime | None = None
    last_entries: int = 0
    last_invalid: int = 0
    # A digest of what the source fetched when this was saved (ingestor.at_address).
    address: str | None = None
    # A digest of how an API's response was read when this was saved (ingestor.at_address).
    field_map: str | None = None

    def remember(self, ids: list[str], now: datetime, ttl: timedelta) -> dict[str, datetime]:
        """`seen` updated with `ids` at `now`, minus ids not listed for `ttl`."""
        seen = {k: v for k, v in self.seen.items() if now - v <= ttl}
        seen.update(dict.fromkeys(ids, now))
        return seen


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace `path` with `data` as JSON; readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"), default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any | None:
    """The JSON in `path`, None if absent; a corrupt file is set aside and reported."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        aside = path.with_suffix(path.suffix + ".corrupt")
        logger.error("state file unreadable path=%s error=%s; moved to %s, starting fresh", path, exc, aside)
        path.replace(aside)
        return None


class StateStore:
    """Loads and saves SourceState files under one directory."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._files = state_dir / "sources"  # one <source>.json each

    def load(self, source: str) -> SourceState:
        """A source's saved state; a fresh one when it has none (or an invalid one, logged)."""
        data = read_json(self._path(source))
        try:
            return SourceState.model_validate(data) if data is not None else SourceState(source=source)
        except ValidationError as exc:
            logger.error("state of source=%s invalid (%s); starting fresh", source, exc.error_count())
            return SourceState(source=source)

    def save(self, state: SourceState) -> None:
        write_json_atomic(self._path(state.source), state.model_dump(mode="json"))

    def names(self) -> list[str]:
        """The sources this directory holds state for."""
        return sorted(p.stem for p in self._files.glob("*.json"))

    def _path(self, source: str) -> Path:
        return self._files / f"{source}.json"
