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


class FinpulseError(Exception):
    """Root of every error finpulse raises on purpose."""


class ConfigError(FinpulseError):
    """Settings or a config file are invalid; the message names the field."""


class TransientError(FinpulseError):
    """A failure that may go away: retry with backoff."""


class BrokerUnavailable(TransientError):
    """The Kafka broker could not be reached."""


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
