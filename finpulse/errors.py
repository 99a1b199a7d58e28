"""The finpulse error hierarchy: one root, split by what the caller should do.

    FinpulseError                 root: everything finpulse raises on purpose
    ├── ConfigError               bad settings or config file; fix and restart
    ├── TransientError            may succeed later: retry with backoff
    │   └── BrokerUnavailable     Kafka did not answer in time
    └── PermanentError            this input will never succeed: dead-letter it
        ├── InvalidRecord         a record failed schema validation (has .reason)
        └── UnsupportedLanguage   a story in a language the model does not read

Messages say what to do next.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class FinpulseError(Exception):
    """Root of every error finpulse raises on purpose."""


class ConfigError(FinpulseError):
    """Settings or a config file are invalid; the message names the field."""


class TransientError(FinpulseError):
    """A failure that may go away: retry with backoff."""


class BrokerUnavailable(TransientError):
    """The Kafka broker could not be reached."""


# The CLI's exit status for a FinpulseError (finpulse.cli.main): 1 where trying again may work (a
# broker or store not answering yet), 2 (as for a usage error) where it cannot as things are;
# `finpulse up` gives up on a process whose first start exits 2.
TRANSIENT_EXIT, ERROR_EXIT = 1, 2


def exit_status(exc: FinpulseError) -> int:
    return TRANSIENT_EXIT if isinstance(exc, TransientError) else ERROR_EXIT


async def retry_transient(
    call: Callable[[], Awaitable[T]],
    *,
    attempts: int,
    pause_s: float,
    on_retry: Callable[[int, float, TransientError], None],
) -> T:
    """`call()`, tried `attempts` times in all while it raises TransientError, pausing 1x, 2x, ...
    `pause_s` in between; `on_retry(attempt, pause, error)` hears of each failure but the last,
    which is raised."""
    for attempt in range(1, attempts):
        try:
            return await call()
        except TransientError as exc:
            on_retry(attempt, pause_s * attempt, exc)
            await asyncio.sleep(pause_s * attempt)
    return await call()


class PermanentError(FinpulseError):
    """A failure that retrying cannot fix: route the input to a dead-letter topic."""


class InvalidRecord(PermanentError):
    """A record that failed validation; `reason` is what goes on the dead letter."""

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason
        super().__init__(f"invalid {kind}: {reason}")


class UnsupportedLanguage(PermanentError):
    """A story in a language the model was not trained on: its scores would be noise."""

    def __init__(self, language: str, languages: tuple[str, ...]) -> None:
        self.language = language
        super().__init__(
            f"language {language!r} is not one the model reads ({', '.join(languages)}); "
            "add it to FINPULSE_MODEL_LANGUAGES to score such stories anyway"
        )
