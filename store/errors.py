"""Errors of the history store, placed in the finpulse error tree.

FinpulseError
├── ConfigError
│   └── StoreConfigError    bad store URL, or a schema newer than this code
├── TransientError
│   └── StoreUnavailable    the database cannot be reached now: retry later
│       └── StoreLocked     another process holds the DuckDB file
└── PermanentError
    └── StoreError          a write or query the store cannot do (read-only...)
        ├── NotFound        the row an operation refers to does not exist
        └── Changed         a row changed since the caller read it (a lost update refused)
"""

from __future__ import annotations

from pathlib import Path

from finpulse.errors import ConfigError, PermanentError, TransientError


class StoreConfigError(ConfigError):
    """The store URL is malformed or the database schema is newer than this code."""


class StoreError(PermanentError):
    """An operation the store cannot do as asked; the message says why."""


class StoreUnavailable(TransientError):
    """The database cannot serve the operation now (a server down, a conflict with another writer)."""


class StoreLocked(StoreUnavailable):
    """Another process holds the DuckDB file's lock (DuckDB allows one writer process)."""

    def __init__(self, path: Path, waited_s: float, detail: str) -> None:
        self.path = path
        self.waited_s = waited_s
        self.detail = detail
        super().__init__(
            f"history store {path} is locked by another process (waited {waited_s:.1f} s): {detail}. "
            "DuckDB allows one writer process at a time: stop the other process, give this one "
            "another file (FINPULSE_STORE_URL), or set FINPULSE_STORE_KEEP_OPEN=false in every "
            "process so they take turns opening the file."
        )


class NotFound(StoreError):
    """The row an operation refers to does not exist (e.g. feedback on an unknown alert)."""


class Changed(StoreError):
    """A row changed since the caller read it: writing the caller's copy would undo that change."""
