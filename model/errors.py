"""Errors of the model package, in the finpulse error tree.

FinpulseError
├── ConfigError
│   ├── ModelNotFound       no trained model at the path: train one first
│   └── TrainingDataError   the training directory is missing files or has bad rows
└── PermanentError
    └── InvalidInput        predict() got something that is not a list of str
"""

from __future__ import annotations

from finpulse.errors import ConfigError, PermanentError


class ModelNotFound(ConfigError):
    """No trained model where one was expected."""


class TrainingDataError(ConfigError):
    """Training data missing or malformed; the message names the file and row."""


class InvalidInput(PermanentError, TypeError):
    """Input to `Classifier.predict` that is not text (None, bytes, numbers...)."""
