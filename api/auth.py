"""Token auth for the API: `Authorization: Bearer <token>` (or `X-API-Token`).

With `api.token` unset the API is open to loopback clients only: meant for
local use, and the app says so in its log at start-up. (`finpulse api` refuses
to bind elsewhere without a token; an app served by uvicorn itself on 0.0.0.0
answers others 401.) Nor does it answer a request addressed to another name
(LocalHostsOnly), and the alert links' forms refuse posts from other sites
(cross_site).
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from alerts.links import check_link_token
from finpulse.settings import ApiSettings

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


class LocalHostsOnly:
    """Without a token, refuse (400) a request whose Host is not this machine's: loopback, or the
    API's own host or public_url's. A page on attacker.example whose name the attacker then points
    at 127.0.0.1 (DNS rebinding) is same-origin to the browser and comes from a loopback client,
    so it could read the history and change subscriptions; its Host still says attacker.example."""

    def __init__(self, app: ASGIApp, api: ApiSettings) -> None:
        self.app = app
        self.names = {api.host.lower()} | ({_host(api.public_url)} if api.public_url else set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        name = _host(f"//{host}")
        if not (loopback(name) or name in self.names):
            response = JSONResponse(
                {
                    "detail": f"Host {host!r} is not this machine: without an API token (FINPULSE_API_TOKEN) "
                    "the API answers requests to localhost, 127.0.0.1, [::1] or its own host "
                    "(FINPULSE_API_HOST, FINPULSE_API_PUBLIC_URL) only"
                },
                status_code=status.HTTP_400_BAD_REQUEST,
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def cross_site(request: Request) -> bool:
    """Whether a form post comes from another page than this site's own: Sec-Fetch-Site says so
    where the browser sends it, else its Origin is neither this request's own nor public_url's.
    (A page elsewhere may post a form here with the operator's browser: on loopback without a
    token, or with a link's token it was given.)"""
    fetched_from = request.headers.get("sec-fetch-site")
    if fetched_from is not None:
        # Decided on alone: behind `Referrer-Policy: no-referrer` a browser sends `Origin: null`
        # with the form's own page's post, and "same-origin" here.
        return fetched_from not in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser's cross-origin post: they all send it
    public_url = request.app.state.settings.api.public_url
    own = {_origin(str(request.base_url))} | ({_origin(public_url)} if public_url else set())
    return _origin(origin) not in own


def _host(url: str) -> str:
    """A URL's host name, lower case, without brackets or port; "" when it has none or is no URL."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # "[::1" and the like
        return ""


def _origin(url: str) -> tuple[str, str, int | None]:
    """scheme, host and port, the scheme's default port filled in: `http://a` is `http://a:80`."""
    try:
        parts = urlsplit(url)
        return parts.scheme, parts.hostname or "", parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port out of range, a bracket unclosed: no origin of ours
        return "", "", None
