"""Secrets in URLs kept out of what is logged or shown: the values of credential query parameters
(a news API's `apiKey=`, the dashboard's `token=`) become ***."""

from __future__ import annotations

import logging
import re

# Query parameters that carry credentials: any name ending in key, token, secret, password,
# auth, sig or signature (apiKey, api_token, client_secret, access_key, ...).
_SECRET_PARAM = re.compile(
    r"([?&][\w.-]*?(?:key|token|secret|password|passwd|auth|sig|signature)=)[^&#\s\"'<>]+",
    re.IGNORECASE,
)


def redacted(text: str) -> str:
    """`text` with the values of secret query parameters in its URLs replaced by ***."""
    return _SECRET_PARAM.sub(r"\1***", text)


class RedactedArgs(logging.Filter):
    """Hides secret query values in a record's string arguments (uvicorn's access log passes the
    request's path, query and all, as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redacted(a) if isinstance(a, str) else a for a in record.args)
        return True
