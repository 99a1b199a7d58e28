"""Token auth for the API: `Authorization: Bearer <token>` (or `X-API-Token`).

With `api.token` unset the API is open to loopback clients only: meant for
local use, and the app says so in its log at start-up. (`finpulse api` refuses
to bind elsewhere without a token; an app served by uvicorn itself on 0.0.0.0
answers others 401.)
"""

from __future__ import annotations

import hmac
import ipaddress
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
    given = credentials.credentials if credentials is not None else x_api_token
    if authorized(request, given):
        return
    if request.app.state.settings.api.token is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="the API has no token (FINPULSE_API_TOKEN), so it answers loopback clients only",
        )
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        detail="missing or wrong API token: send 'Authorization: Bearer <FINPULSE_API_TOKEN>'",
        headers={"WWW-Authenticate": "Bearer"},
    )


def authorized(request: Request, given: str | None) -> bool:
    """Whether `given` is the API's token; without one set, whether the client is on loopback."""
    secret = request.app.state.settings.api.token
    if secret is None:
        return request.client is None or loopback(request.client.host)
    return bool(given) and hmac.compare_digest(given.encode(), secret.get_secret_value().encode())  # type: ignore[union-attr]


def given_token(request: Request) -> str | None:
    """The token a request carries, as `require_token` reads it, where a route takes it optionally."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-token")


def loopback(host: str) -> bool:
    """Whether a host name or address is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
