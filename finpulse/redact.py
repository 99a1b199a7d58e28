"""Secrets in URLs kept out of what is logged or shown: the password of `scheme://user:password@`
and the values of credential query parameters (a news API's `apiKey=`, the dashboard's `token=`)
become ***."""

from __future__ import annotations

import logging
import re

# Query parameters that carry credentials: any name ending in key, token, secret, password,
# auth, sig or signature (apiKey, api_token, client_secret, access_key, ...).
_SECRET_PARAM = re.compile(
    r"([?&][\w.-]*?(?:key|token|secret|password|passwd|auth|sig|signature)=)[^&#\s\"'<>]+",
    re.IGNORECASE,
)

# A URL's password runs to the last `@` before the URL ends: libpq reads `#`, `?` and `/` as part
# of it (generated passwords often hold `/`), so neither those nor the host can mark its end.
_USERINFO_PASSWORD = re.compile(r"(\b[a-z][\w+.-]*://[^:/?#@\s]*:)\S*@", re.IGNORECASE)


def redacted(text: str) -> str:
    """`text` with the passwords and the values of secret query parameters in its URLs replaced
    by ***."""
    return _SECRET_PARAM.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", text))


class RedactedArgs(logging.Filter):
    """Hides secret query values in a record's string arguments (uvicorn's access log passes the
    request's path, query and all, as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(a) if isinstance(a, str) else a for a in record.args)
        return True
