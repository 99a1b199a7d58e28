"""`finpulse ingest` follows edits of its sources and companies files without a restart.

Every `ingest.config_refresh_s` seconds, and at once on SIGHUP, both files are hashed;
when either changed, both are read again and the ingestor takes them (`Ingestor.apply`):
sources added start polling now, removed ones stop and leave the sources topic, changed
ones poll with their new settings (a source is its name: it keeps its state, so a feed
keeps its seen ids and ETag), and titles are matched against the new company names from
the next poll on. A file that no longer loads is logged with its error and changes
nothing; it is read again when it next changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from finpulse.errors import ConfigError
from ingest.companies import CompanyNames
from ingest.replay import file_digest
from ingest.sources import SourcesConfig, load_sources

logger = logging.getLogger(__name__)


def _digest(path: Path) -> str | None:
    try:
        return file_digest(path)
    except OSError:  # missing or unreadable: loading it says why
        return None


@dataclass(frozen=True)
class ConfigFiles:
    """The two files an ingestor runs from."""

    sources: Path
    companies: Path
    allow_private: bool = False

    def fingerprint(self) -> tuple[str | None, str | None]:
        return _digest(self.sources), _digest(self.companies)

    def load(self) -> tuple[SourcesConfig, CompanyNames]:
        """Both files, validated; raises ConfigError naming the file and the problem."""
        return load_sources(self.sources, allow_private=self.allow_private), CompanyNames.load(self.companies)


class ConfigWatch:
    """Tells the ingestor's run loop when its files changed, with their new contents."""

    def __init__(self, files: ConfigFiles, refresh_s: float) -> None:
        self.files = files
        self.refresh_s = refresh_s
        self._seen = files.fingerprint()  # what the ingestor was started with
        self._wake = asyncio.Event()

    def request(self) -> None:
        """Check now (SIGHUP) rather than at the next period."""
        self._wake.set()

    async def next_change(self) -> tuple[SourcesConfig, CompanyNames]:
        """Wait until the files change and load; a broken edit is logged and waited past."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh_s)
            self._wake.clear()
            seen = await asyncio.to_thread(self.files.fingerprint)
            if seen == self._seen:
                continue
            self._seen = seen
            try:
                return await asyncio.to_thread(self.files.load)
            except ConfigError as exc:
                logger.error("ingest config not reloaded (the running one stays): %s", exc)
