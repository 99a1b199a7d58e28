"""Token auth for the API: `Authorization: Bearer <token>` (or `X-API-Token`).

With `api.token` unset the API is open: meant for local use on loopback, and
the app says so in its log at start-up.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

bearer = HTTPBearer(auto_error=False, description="settings.api.token (FINPULSE_API_TOKEN)")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    x_api_token: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """Reject the request with 401 unless it carries the configured token."""
    secret = request.app.state.settings.api.token
    if secret is None:
        return
    given = credentials.credentials if credentials is not None else x_api_token
    if not given or not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong API token: send 'Authorization: Bearer <FINPULSE_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
