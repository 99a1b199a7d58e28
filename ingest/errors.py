"""Errors raised by ingestion, placed in the core tree by what the caller does.

    FinpulseError
    ├── ConfigError
    │   ├── SourcesFileError      sources.toml is missing or invalid: fix the file
    │   └── UnsafeUrl             a feed URL is not http(s) or targets a private host
    ├── TransientError
    │   └── FetchError            timeout, refused connection, 5xx, 429: retry later
    └── PermanentError
        └── FeedError             the body is not a usable feed (HTML page, garbage,
                                  too large, redirect loop): fix the source's URL

Every one carries `kind`, a short metrics label such as "timeout" or "not_a_feed". A fetch
error's message names the URL with its secret query values hidden (an API key in the query
string went into logs, the sources topic and the API's sources list).
"""

from __future__ import annotations

from finpulse.errors import ConfigError, PermanentError, TransientError
from finpulse.redact import redacted


class SourcesFileError(ConfigError):
    """The sources file cannot be read or validated; the message names the entry."""


class UnsafeUrl(ConfigError):
    """A URL that ingestion refuses to fetch (scheme or target address)."""

    kind = "unsafe_url"


class FetchError(TransientError):
    """A request failed in a way that may succeed later."""

    def __init__(self, kind: str, message: str, *, retry_after_s: float | None = None) -> None:
        self.kind = kind
        self.retry_after_s = retry_after_s
        super().__init__(redacted(message))


class FeedError(PermanentError):
    """A response that is not a usable feed; retrying the same URL will not help."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        super().__init__(redacted(message))
