"""Which URLs ingestion may fetch: http(s) only, public addresses only.

A feed URL added by a user could point the ingestor at the machine itself or
the internal network (server-side request forgery). `check_url` rejects
other schemes and literal private addresses; `check_resolved` resolves the
host and rejects it if any address is not a public one (loopback, private,
link-local, multicast, reserved, unspecified, shared, or such an IPv4 address
inside IPv6); a host that does not resolve is not fetched either (a retry
later). The fetch resolves the name again, so `check_peer` judges the address it
connected to before the response is read: a DNS server that answers the check and
the fetch differently (rebinding) gets the request but not its answer.
`allow_private=True` (setting
`ingest.allow_private_hosts`) lifts the address rule, for tests and for
feeds served inside a trusted network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.request
from urllib.parse import urlsplit

from ingest.errors import FetchError, UnsafeUrl

_ALLOWED_SCHEMES = ("http", "https")


def _forbidden(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):  # an IPv4 address inside: judged as itself
        address = address.ipv4_mapped or address.sixtofour or address
    for label, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        # The rest that is no one's public address: shared 100.64.0.0/10 (carrier NAT, a
        # cloud's metadata service), benchmarking, documentation ranges.
        ("non-public", not address.is_global),
    ):
        if flag:
            return label
    return None


def check_url(url: str, *, allow_private: bool = False) -> str:
    """Return `url` if its scheme and (literal) host are acceptable; raise UnsafeUrl otherwise."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 -- raises ValueError on a bad port
    except ValueError as exc:
        raise UnsafeUrl(f"feed URL {url!r} is malformed: {exc}") from exc
    if parts.scheme.lower() not in _ALLOWED_SCHEMES:
        raise UnsafeUrl(f"feed URL {url!r} must use http or https, not {parts.scheme or 'no scheme'!r}")
    host = parts.hostname
    if not host:
        raise UnsafeUrl(f"feed URL {url!r} has no host")
    if parts.username or parts.password:
        raise UnsafeUrl(f"feed URL {url!r} embeds credentials; use an auth header from the environment")
    if allow_private:
        return url
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(".localhost"):
        raise UnsafeUrl(
            f"feed URL {url!r} targets loopback; set FINPULSE_INGEST_ALLOW_PRIVATE_HOSTS=true to allow it"
        )
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: checked after resolution
    reason = _forbidden(address)
    if reason:
        raise UnsafeUrl(
            f"feed URL {url!r} targets a {reason} address; "
            "set FINPULSE_INGEST_ALLOW_PRIVATE_HOSTS=true to allow it"
        )
    return url


async def check_resolved(url: str, *, allow_private: bool = False, timeout_s: float = 5.0) -> None:
    """Resolve the URL's host and raise UnsafeUrl if any address it maps to is not public."""
    check_url(url, allow_private=allow_private)
    if allow_private:
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        if _proxied(url):
            return  # the proxy resolves the name (a network that resolves nothing itself)
        # Not fetched unchecked: the fetch would resolve the name again, perhaps elsewhere.
        raise FetchError(
            "unreachable", f"{url}: cannot resolve {host} ({exc or type(exc).__name__})"
        ) from exc
    for info in infos:
        reason = _forbidden(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        if reason:
            raise UnsafeUrl(
                f"feed URL {url!r}: host {host} resolves to a {reason} address; "
                "set FINPULSE_INGEST_ALLOW_PRIVATE_HOSTS=true to allow it"
            )


def _proxied(url: str) -> bool:
    """Whether a proxy from the environment (HTTPS_PROXY, ..., as httpx reads them) fetches `url`."""
    parts = urlsplit(url)
    return parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(
        parts.hostname or ""
    )


def check_peer(url: str, peer: object) -> None:
    """Raise UnsafeUrl when the fetch of `url` connected to an address that is not public (the
    name resolved elsewhere than when checked); `peer`: the socket's (address, port, ...), or
    None where the transport does not say. Through a proxy the peer is the proxy: not judged."""
    if not isinstance(peer, tuple) or not peer or _proxied(url):
        return
    try:
        address = ipaddress.ip_address(str(peer[0]).split("%", 1)[0])
    except ValueError:
        return  # not an IP socket (a Unix socket's path)
    reason = _forbidden(address)
    if reason:
        raise UnsafeUrl(
            f"feed URL {url!r}: host {urlsplit(url).hostname} was resolved again to a {reason} address "
            f"({address}) when fetched; set FINPULSE_INGEST_ALLOW_PRIVATE_HOSTS=true to allow it"
        )
