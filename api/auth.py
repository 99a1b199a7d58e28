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

from alerts.links import check_link_token

bearer = HTTPBearer(auto_error=False, description="settings.api.token (FINPULSE_API_TOKEN)")


def require_token(
    request: Request,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    _header: Annotated[str | None, Header(alias="x-api-token", include_in_schema=False)] = None,
) -> None:
    """Reject the request with 401 unless it carries the configured token. (The parameters declare
    the two ways to send it, for OpenAPI; `given_token` reads them.)"""
    if authorized(request, given_token(request)):
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


def link_allowed(request: Request, alert_id: str, purpose: str, token: str | None) -> bool:
    """Whether a signed link's `token` allows `purpose` on `alert_id`; without an API token (no
    links are signed), whether the client is on loopback, as for the API."""
    if request.app.state.settings.api.token is None:
        return authorized(request, None)
    return check_link_token(request.app.state.settings.api.token, alert_id, purpose, token)


def given_token(request: Request) -> str | None:
    """The token a request carries: `Authorization: Bearer <token>`, else `X-API-Token`."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-token")


def loopback(host: str) -> bool:
    """Whether a host name or address is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # an IPv4 client of a server on "::"
    return address.is_loopback
