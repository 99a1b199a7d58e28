"""Logging set-up, called only by entry points (the CLI)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.logging import RichHandler

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Logs on stderr (`log_handler`), at `level`; noisy libraries held at WARNING."""
    logging.basicConfig(level=level, handlers=[log_handler()], force=True)
    # APScheduler logs every run of a job at INFO (the digests' each minute); the jobs log what matters.
    for noisy in ("aiokafka", "kafka", "faust", "mode", "httpx", "urllib3", "filelock", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    coordinator = logging.getLogger("aiokafka.consumer.group_coordinator")
    if not any(isinstance(f, RetriedAsWarning) for f in coordinator.filters):
        coordinator.addFilter(RetriedAsWarning())


def log_handler() -> logging.Handler:
    """Logs on stderr: rich's columns on a terminal; elsewhere (a service's log file, a container
    collector) one dated line per record, never wrapped (rich wrapped them at 80 columns, a line
    per fragment, with no date)."""
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(rich_tracebacks=False, show_path=False)
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s", "%H:%M:%S"))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(PLAIN_FORMAT, "%Y-%m-%dT%H:%M:%S%z"))
    return handler


def logging_config(level: str) -> dict[str, Any]:
    """configure_logging's handler and level as a `logging.config.dictConfig` dictionary, for a
    library that sets the root logger up itself (Faust's worker: its own format, on stdout)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"finpulse": {"()": log_handler, "level": level}},
        "root": {"level": level, "handlers": ["finpulse"]},
    }


class RetriedAsWarning(logging.Filter):
    """aiokafka logs a failed coordinator lookup at ERROR even where it retries it (a broker just
    started has elected none yet: every consumer group's first start on it): a warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        if record.levelno == logging.ERROR and any(getattr(a, "retriable", False) for a in args):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = f"{record.msg} (retrying)"
        return True


class RepeatFilter(logging.Filter):
    """Lets each message template through at most once per `every_s`, then says how many
    it held back: a client retrying a lost broker logs thousands of lines a second."""

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.every_s, self.clock = every_s, clock
        self._seen: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = (record.name, str(record.msg)), self.clock()
        last, held = self._seen.get(key, (None, 0))
        if last is not None and now - last < self.every_s:
            self._seen[key] = (last, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {now - last:.0f}s]"  # type: ignore[operator]
        return True


def quiet_repeats(prefix: str, every_s: float = 10.0) -> None:
    """Attach a RepeatFilter to every logger named `prefix` or `prefix.*` created so far."""
    names = [n for n in logging.Logger.manager.loggerDict if n == prefix or n.startswith(prefix + ".")]
    repeat = RepeatFilter(every_s)
    for name in names:
        logging.getLogger(name).addFilter(repeat)


def quiet_store(*also: str) -> None:
    """Keep the INFO lines of the store ("store started") and of the loggers `also` out of a
    command's printed report."""
    for name in ("store", *also):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
