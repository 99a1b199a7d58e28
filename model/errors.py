"""Errors of the model package, in the finpulse error tree.

FinpulseError
├── ConfigError
│   ├── ModelNotFound       no trained model at the path: train one first
│   │   └── InvalidModel    a model file is damaged, stale or does not fit the others
│   └── TrainingDataError   the training directory is missing files or has bad rows
└── PermanentError
    └── InvalidInput        predict() got something that is not a list of str
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from finpulse.errors import ConfigError, PermanentError

# What to do about a damaged model file, by what wrote it.
RETRAIN = "train the model again (`finpulse model train`)"
REEXPORT = "run `finpulse model export` (or `finpulse model eval`)"
REEVALUATE = "run `finpulse model eval` to write it again"


class ModelNotFound(ConfigError):
    """No trained model where one was expected."""


class InvalidModel(ModelNotFound):
    """A model file that cannot be read, or that does not fit the rest of the model. A ModelNotFound:
    callers that handle a missing model handle an unusable one alike."""

    def __init__(self, path: Path, problem: str, remedy: str) -> None:
        super().__init__(f"{path} {problem}: {remedy}")

    def __reduce__(self) -> tuple[type[ModelNotFound], tuple[str, ...]]:
        # Pickled back from a classifier process as its message: rebuilt with this __init__'s three
        # arguments it broke the pool instead, a crash to retry where the worker should stop (exit 2).
        return ModelNotFound, (str(self),)

    @classmethod
    def unreadable(cls, path: Path, exc: Exception, remedy: str) -> InvalidModel:
        """A file missing, or that its reader (json, pydantic, safetensors...) cannot make sense of."""
        if isinstance(exc, ValidationError):  # its own text opens with a count and spans many lines
            why = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'file'}: {e['msg']}" for e in exc.errors()[:3])
        elif isinstance(exc, FileNotFoundError):
            why = "missing"
        else:
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return cls(path, f"is unusable ({why})", remedy)


class TrainingDataError(ConfigError):
    """Training data missing or malformed; the message names the file and row."""


class InvalidInput(PermanentError, TypeError):
    """Input to `Classifier.predict` that is not text (None, bytes, numbers...)."""
