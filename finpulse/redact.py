"""Secrets in URLs kept out of what is logged or shown: the password of `scheme://user:password@`
and the values of credential query parameters (a news API's `apiKey=`, the dashboard's `token=`)
become ***."""

from __future__ import annotations

import logging
import re

# Query parameters that carry credentials: any name ending in key, token, secret, password,
# auth, sig or signature (apiKey, api_token, client_secret, access_key, ...).
_SECRET_NAME = re.compile(r"[\w.-]*?(?:key|token|secret|password|passwd|auth|sig|signature)", re.IGNORECASE)
_SECRET_PARAM = re.compile(rf"([?&]{_SECRET_NAME.pattern}=)[^&#\s\"'<>]+", re.IGNORECASE)

# A URL's password: up to its `@`, which comes before any `/`, `?` or `#` ("host:443/@user" has
# none). libpq reads those three as part of a PostgreSQL URL's password (generated passwords often
# hold `/`), so there it runs to the last `@` of the URL.
_USERINFO_PASSWORD = re.compile(r"(\b[a-z][\w+.-]*://[^:/?#@\s]*:)[^/?#@\s]*@", re.IGNORECASE)
_POSTGRES_PASSWORD = re.compile(r"(\bpostgres(?:ql)?://[^:/?#@\s]*:)\S*@", re.IGNORECASE)


def redacted(text: str) -> str:
    """`text` with the passwords and the values of secret query parameters in its URLs replaced
    by ***."""
    text = _USERINFO_PASSWORD.sub(r"\1***@", _POSTGRES_PASSWORD.sub(r"\1***@", text))
    return _SECRET_PARAM.sub(r"\1***", text)


def secret_param(name: str) -> bool:
    """Whether a query parameter of this name carries a credential (its value `redacted` hides)."""
    return _SECRET_NAME.fullmatch(name) is not None


class RedactedArgs(logging.Filter):
    """Hides secret query values in a record's string arguments (uvicorn's access log passes the
    request's path, query and all, as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(a) if isinstance(a, str) else a for a in record.args)
        return True
