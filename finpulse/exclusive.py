"""One process at a time: an exclusive lock on a file beside what it guards (fcntl.flock, so
the system releases it when the process ends, however it ends)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from finpulse.errors import ConfigError


class ExclusiveLock:
    """Held between `acquire` (ConfigError `refused` while another process holds it) and `release`."""

    def __init__(self, path: Path, refused: str) -> None:
        self.path, self.refused = path, refused
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConfigError(self.refused) from None
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock
