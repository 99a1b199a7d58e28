"""HTTP fetching for feeds and APIs: polite, bounded and explicit about failures.

Every request has a timeout (per operation and for the whole exchange), a
body-size cap counted on decoded bytes, a redirect limit with loop detection
(each hop re-checked against the URL policy), conditional GET validators, and
per-host limits. 429 and 503 honour Retry-After; transient failures are
retried with exponential backoff and jitter, waits longer than
`max_retry_wait_s` are left to the next poll (`FetchError.retry_after_s`), and
the URL is not asked again before a Retry-After ends.
Credentials stay with their origin: once a redirect leaves the first URL's
scheme, host and port (an upgrade to https on the same host aside), the
Authorization header and the caller's `auth_headers` are no longer sent (as
requests does).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl, quote, urljoin, urlsplit

import httpx

from finpulse.lifecycle import AsyncResource
from finpulse.redact import redacted, secret_param
from finpulse.settings import IngestSettings
from ingest.errors import FeedError, FetchError
from ingest.limits import HostLimiter
from ingest.urls import check_peer, check_resolved

logger = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# First retry waits about this long; each further one doubles it (plus jitter).
_BASE_BACKOFF_S = 0.5
# What an error message quotes of a response: an API's `{"error": ...}` or a page's first line
# whole; the bytes read of an error response to find them (UTF-8 takes up to 4 a character).
_QUOTED_CHARS = 200
_QUOTED_BYTES = 4 * _QUOTED_CHARS
# A credential's start this long, where a quote ends (cut mid-echo), is hidden too: with fewer of
# its characters shown, none of the rest is given away.
_SECRET_START_CHARS = 4
# A header value shorter than this ("2", "en", "v1") is a setting, not a key (keys run 16 characters
# and more), whatever the header's name; standard headers that carry no credential are never one.
_KEY_MIN_CHARS = 8
_PLAIN_HEADERS = frozenset({"accept", "accept-language", "cache-control", "content-type", "user-agent"})


@dataclass(frozen=True)
class FetchResult:
    """A 200 (with body) or 304 (without) response, after redirects (inside the fetcher also a
    refusal, with the start of its body)."""

    url: str
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("last-modified")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


def parse_retry_after(value: str | None, cap_s: float, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta seconds or HTTP date), None if absent/bad.
    At most `cap_s`: a server's "99999999999999" (or 400 digits, an infinite float) would put the
    next poll past the year 9999, which a datetime cannot hold."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²" is a digit to isdigit, not to float
        return min(float(value), cap_s)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), cap_s)


def printable(text: str) -> str:
    """`text` as one line of printable characters: what a server sends reaches terminals and logs,
    where a control (ESC, a C1 such as NEL), a line separator or a bidi override would rewrite the
    screen, forge a log line or reverse the text; each becomes a space, each run of them one."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def clip(text: str, hide: Collection[str] = ()) -> str:
    """`text` for an error message: quoted, `printable`, at most _QUOTED_CHARS characters, each
    of `hide` (credentials an API may echo) as ***."""
    for secret in hide:  # where it stands alone: a header's "en" inside "Token" is no echo of it
        text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    text = printable(text)
    return f'"{text[:_QUOTED_CHARS]}{"..." if len(text) > _QUOTED_CHARS else ""}"'


def quote_type(content_type: str) -> str:
    """A response's content type, for an error message."""
    return printable(content_type)[:_QUOTED_CHARS] or "no content type"


def quote_body(content_type: str, body: bytes, hide: Collection[str] = ()) -> str:
    """What a response said, for an error message: its content type and first characters."""
    # Read a credential's length past the bytes quoted, so one astride the cut is found whole
    # (whitespace collapsed, the cut can fall inside the characters shown).
    longest = max((len(secret.encode()) for secret in hide), default=0)
    text = _without_secret_start(body[: _QUOTED_BYTES + longest].decode("utf-8", "replace"), hide)
    return f"{quote_type(content_type)}: {clip(text, hide)}" if text.strip() else "no body"


def _without_secret_start(text: str, hide: Collection[str]) -> str:
    """`text`, the start of a longer one, with the start of a credential it ends in as ***."""
    starts = {secret[:n] for secret in hide for n in range(_SECRET_START_CHARS, len(secret))}
    if not starts:
        return text
    return re.sub(rf"(?<!\w)(?:{'|'.join(map(re.escape, starts))})\Z", "***", text)


def secret_query(url: str, params: Mapping[str, str] | None) -> dict[str, str]:
    """The query parameters of a request, in `url` and `params`, that carry credentials (by the
    names `finpulse.redact` hides the values of: apiKey, token, ...)."""
    query = [*parse_qsl(urlsplit(url).query), *(params or {}).items()]
    return {name: value for name, value in query if secret_param(name) and value}


def credentials(
    url: str, headers: Mapping[str, str], params: Mapping[str, str] | None, auth_headers: Collection[str]
) -> list[str]:
    """What a message must not quote, should a server echo it: the value of Authorization, of each
    of `auth_headers`, of each header named like a credential (X-Api-Key: `secret_param`'s names)
    and of any other header the caller sets that may be a key (its header may have any name); the
    token each ends in (after its scheme, "Bearer "); the values of the secret query parameters.
    Each also as JSON escapes it ("a\\/b") and percent-encoded, longest first (a header's value
    before its token)."""
    named = _credential_names(auth_headers)
    values = [
        v
        for name, value in headers.items()
        for v in (value, value.rpartition(" ")[2])
        if name.lower() in named or secret_param(name) or _may_be_key(name, v)
    ]
    values += secret_query(url, params).values()
    forms = {form for v in values if v for form in (v, v.replace("/", "\\/"), quote(v, safe=""))}
    return sorted(forms, key=len, reverse=True)


def _may_be_key(header: str, value: str) -> bool:
    """Whether a header's value may be a key though its name does not say so."""
    return len(value) >= _KEY_MIN_CHARS and header.lower() not in _PLAIN_HEADERS


def backoff_s(attempt: int, cap_s: float) -> float:
    """Exponential backoff with full jitter for retry number `attempt` (0-based)."""
    return random.uniform(0, min(cap_s, _BASE_BACKOFF_S * 2**attempt))


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of `url`, the default port filled in, for same-origin checks."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _keeps_credentials(first: str, current: str) -> bool:
    """Same origin, or the same host's http upgraded to https on the default ports (as requests)."""
    a, b = _origin(first), _origin(current)
    return a == b or (a == ("http", b[1], 80) and b == ("https", a[1], 443))


def _peer(response: httpx.Response) -> object:
    """The address the response came from (httpcore's socket), or None (a mock transport)."""
    stream = response.extensions.get("network_stream")
    return stream.get_extra_info("server_addr") if stream is not None else None


def _credential_names(auth_headers: Collection[str]) -> set[str]:
    return {"authorization"} | {name.lower() for name in auth_headers}


def _without(headers: dict[str, str], names: Collection[str]) -> dict[str, str]:
    drop = _credential_names(names)
    return {k: v for k, v in headers.items() if k.lower() not in drop}


class HttpFetcher(AsyncResource):
    """Fetches URLs under the ingest settings' limits; `start()`/`stop()` own the client."""

    def __init__(self, settings: IngestSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.limiter = HostLimiter(settings.per_host_concurrency, settings.per_host_min_interval_s)
        # URL -> (monotonic end, kind) of a Retry-After left to the next poll: a poll that read some
        # pages before it came is a success, which the ingestor does not hold back.
        self._held: dict[str, tuple[float, str]] = {}

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.settings.request_timeout_s),
                follow_redirects=False,  # followed by hand: each hop is checked
                headers={"User-Agent": self.settings.user_agent},
                transport=self._transport,
                limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
            )

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        auth_headers: Collection[str] = (),
        credentials_from: str | None = None,
    ) -> FetchResult:
        """GET `url` with retries; raises FetchError (transient) or FeedError / UnsafeUrl (permanent).

        `auth_headers`: names of headers in `headers` that hold credentials; like Authorization,
        they are not sent on after a redirect to another origin. `credentials_from`: where they
        come from ("$ACME_TOKEN"), named when a 401 or 403 refuses them (else a secret query
        parameter sent, if any). A refusal's message quotes its body without `credentials`."""
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        conditional = bool(etag or last_modified)
        attempt = 0
        while True:
            try:
                self._check_held(url)
                result = await self._follow(url, request_headers, params, conditional, auth_headers)
            except FetchError as exc:
                wait = exc.retry_after_s if exc.retry_after_s is not None else backoff_s(attempt, 30.0)
                if attempt >= self.settings.max_retries or wait > self.settings.max_retry_wait_s:
                    if exc.retry_after_s is not None:
                        self._held[url] = (time.monotonic() + exc.retry_after_s, exc.kind)
                    raise
                attempt += 1
                logger.info(
                    "retry url=%s kind=%s attempt=%d wait_s=%.2f", redacted(url), exc.kind, attempt, wait
                )
                await asyncio.sleep(wait)
            else:
                if result.status in (200, 304):
                    return result
                if not credentials_from and (names := list(secret_query(url, params))):
                    credentials_from = f"the query parameter {', '.join(names)}"
                raise _refused(
                    result, credentials_from, credentials(url, headers or {}, params, auth_headers)
                )

    def _check_held(self, url: str) -> None:
        """Raises FetchError while a Retry-After an earlier fetch of `url` got has not ended."""
        end, kind = self._held.get(url, (0.0, ""))
        if (left := end - time.monotonic()) > 0:
            raise FetchError(
                kind, f"{url}: not asked before its Retry-After ends in {left:.0f}s", retry_after_s=left
            )

    async def _follow(
        self,
        url: str,
        headers: dict[str, str],
        params: dict[str, str] | None,
        conditional: bool,
        auth_headers: Collection[str],
    ) -> FetchResult:
        visited: set[str] = set()
        current = url
        for _ in range(self.settings.max_redirects + 1):
            visited.add(current)
            await check_resolved(current, allow_private=self.settings.allow_private_hosts)
            if not _keeps_credentials(url, current):  # and stay dropped, should a later hop come back
                headers = _without(headers, auth_headers)
            result = await self._get(current, headers, params, conditional)
            if isinstance(result, FetchResult):
                return result
            params = None  # the Location already carries the query it wants
            current = result
            if current in visited:
                raise FeedError("redirect_loop", f"redirect loop at {current} (from {url}); fix the feed URL")
        raise FeedError("too_many_redirects", f"more than {self.settings.max_redirects} redirects from {url}")

    async def _get(
        self, url: str, headers: dict[str, str], params: dict[str, str] | None, conditional: bool
    ) -> FetchResult | str:
        """One request: a result, or the URL a redirect points to."""
        assert self._client is not None, "HttpFetcher.start() was not called"
        host = urlsplit(url).hostname or ""
        try:
            async with self.limiter.slot(host), asyncio.timeout(self.settings.request_timeout_s):
                request = self._client.build_request("GET", url, headers=headers, params=params)
                response = await self._client.send(request, stream=True)
                try:
                    if not self.settings.allow_private_hosts:
                        check_peer(url, _peer(response))
                    return await self._handle(url, response, conditional)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise FetchError(
                "timeout", f"{url}: no complete response in {self.settings.request_timeout_s}s"
            ) from exc
        except httpx.TimeoutException as exc:
            raise FetchError("timeout", f"{url}: timed out ({type(exc).__name__})") from exc
        except httpx.ConnectError as exc:
            raise FetchError("unreachable", f"{url}: cannot connect ({exc or type(exc).__name__})") from exc
        except httpx.RemoteProtocolError as exc:
            raise FetchError("truncated", f"{url}: connection broke mid-response ({exc})") from exc
        except httpx.LocalProtocolError as exc:  # its text quotes the header it refused: a token
            raise FeedError(
                "invalid_header", f"{url}: a request header holds a character HTTP does not allow; check them"
            ) from exc
        except httpx.HTTPError as exc:
            raise FetchError("http_error", f"{url}: {type(exc).__name__}: {exc}") from exc

    async def _handle(self, url: str, response: httpx.Response, conditional: bool) -> FetchResult | str:
        status = response.status_code
        headers = {k.lower(): v for k, v in response.headers.items()}
        if status in _REDIRECTS and "location" in headers:
            # percent-encoded as httpx sends it: messages name the URL, the server's bytes unquoted
            return str(httpx.URL(urljoin(url, headers["location"])))
        if status == 304:
            if not conditional:
                raise FeedError("unexpected_304", f"{url}: 304 Not Modified to an unconditional request")
            return FetchResult(url=url, status=304, headers=headers)
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"), self.settings.backoff_max_s)
            kind = "rate_limited" if status == 429 else "unavailable"
            raise FetchError(
                kind, f"{url}: HTTP {status}, retry after {retry_after}s", retry_after_s=retry_after
            )
        if status >= 500:
            raise FetchError("server_error", f"{url}: HTTP {status}")
        if status != 200:  # a refusal: fetch() says why, knowing where the credentials come from
            return FetchResult(url=url, status=status, body=await self._read_start(response), headers=headers)
        return FetchResult(url=url, status=200, body=await self._read_body(url, response), headers=headers)

    async def _read_body(self, url: str, response: httpx.Response) -> bytes:
        limit = self.settings.max_body_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FeedError("too_large", f"{url}: body of {declared} bytes exceeds max_body_bytes={limit}")
        # httpx decodes each network chunk whole, layer by layer: one gzip layer makes at most ~1000x
        # a chunk before the cap below can act, a second one ~1000x that (a few KB -> GBs of memory).
        codings = [c.strip() for c in response.headers.get("content-encoding", "").lower().split(",")]
        codings = [c for c in codings if c not in ("", "identity")]
        if len(codings) > 1:
            raise FeedError(
                "stacked_encoding",
                f"{url}: body compressed {len(codings)} times over ({', '.join(codings)});"
                " a feed is served with one Content-Encoding at most",
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise FeedError("too_large", f"{url}: body exceeds max_body_bytes={limit}")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _read_start(self, response: httpx.Response) -> bytes:
        """The first bytes of an error response's body, to quote: as many as came, should it break
        off; none where it is compressed twice over (see `_read_body`)."""
        if "," in response.headers.get("content-encoding", ""):
            return b""
        start = b""
        with contextlib.suppress(httpx.HTTPError):
            async for chunk in response.aiter_bytes():
                start += chunk
                if len(start) >= _QUOTED_BYTES:
                    break
        return start


def _refused(result: FetchResult, credentials_from: str | None, hide: Collection[str]) -> FeedError:
    """A 4xx as an error that says where to look, and what the server said."""
    status = result.status
    if credentials_from and status in (401, 403):
        advice = f"credentials refused; check {credentials_from}"
    else:
        advice = "check the URL"
    said = quote_body(result.content_type, result.body, hide)
    return FeedError(f"http_{status}", f"{result.url}: HTTP {status}; {advice} ({said})")
