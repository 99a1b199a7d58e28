"""HttpFetcher against the local feed server: validators, limits, misbehaving servers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import quote

import httpx
import pytest

from finpulse.settings import IngestSettings
from ingest.errors import FeedError, FetchError, UnsafeUrl
from ingest.fetch import HttpFetcher, parse_retry_after
from ingest.limits import HostLimiter
from tests.fixtures.feeds import FeedServer

GUARDIAN = "real-world/guardian.rss"


async def test_conditional_get_gives_304(feed_server: FeedServer, ingest_settings: IngestSettings) -> None:
    async with HttpFetcher(ingest_settings) as fetcher:
        first = await fetcher.fetch(feed_server.url(f"f/{GUARDIAN}"))
        assert first.status == 200
        assert len(first.body) == (ingest_settings.feeds_dir / GUARDIAN).stat().st_size
        assert first.etag
        assert first.last_modified
        again = await fetcher.fetch(feed_server.url(f"f/{GUARDIAN}"), etag=first.etag)
        assert again.not_modified
        by_date = await fetcher.fetch(feed_server.url(f"f/{GUARDIAN}"), last_modified=first.last_modified)
        assert by_date.not_modified
    sent = [h for _, path, h in feed_server.requests if path.endswith(GUARDIAN)]
    assert sent[1]["If-None-Match"] == first.etag
    assert sent[0]["User-Agent"].startswith("finpulse-ingest")


async def test_429_retry_after_is_honoured(feed_server: FeedServer, ingest_settings: IngestSettings) -> None:
    async with HttpFetcher(ingest_settings) as fetcher:
        result = await fetcher.fetch(feed_server.url(f"429/1/f/{GUARDIAN}"))
    assert result.status == 200
    times = [t for t, path, _ in feed_server.requests]
    assert len(times) == 2
    assert times[1] - times[0] >= 0.95  # Retry-After: 1


async def test_503_beyond_retries_raises_with_retry_after(
    feed_server: FeedServer, ingest_settings: IngestSettings
) -> None:
    settings = ingest_settings.model_copy(update={"max_retries": 1})
    async with HttpFetcher(settings) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(feed_server.url(f"503/5/f/{GUARDIAN}"))
    assert info.value.kind == "unavailable"
    assert info.value.retry_after_s == 1.0
    assert feed_server.hits[f"503/5/f/{GUARDIAN}"] == 2


async def test_long_retry_after_is_left_to_the_next_poll(
    feed_server: FeedServer, ingest_settings: IngestSettings
) -> None:
    settings = ingest_settings.model_copy(update={"max_retry_wait_s": 0.5})
    async with HttpFetcher(settings) as fetcher:
        with pytest.raises(FetchError, match="429"):
            await fetcher.fetch(feed_server.url(f"429/3/f/{GUARDIAN}"))
    assert feed_server.hits[f"429/3/f/{GUARDIAN}"] == 1


async def test_a_header_http_cannot_carry_is_refused_without_quoting_it(
    feed_server: FeedServer, ingest_settings: IngestSettings
) -> None:
    async with HttpFetcher(ingest_settings) as fetcher:
        with pytest.raises(FeedError) as info:  # h11's own error quotes the whole header value
            await fetcher.fetch(feed_server.url(f"f/{GUARDIAN}"), headers={"X-Api-Key": "S3CRET\n"})
    assert info.value.kind == "invalid_header"
    assert "S3CRET" not in str(info.value)


@pytest.mark.parametrize(
    ("path", "error", "kind"),
    [
        ("loop/a", FeedError, "redirect_loop"),
        ("redirect/9/f/real-world/guardian.rss", FeedError, "too_many_redirects"),
        ("truncated/f/real-world/guardian.rss", FetchError, "truncated"),
        ("always-304", FeedError, "unexpected_304"),
        ("status/404", FeedError, "http_404"),
        ("status/500", FetchError, "server_error"),
        ("huge/20", FeedError, "too_large"),
        ("f/real-world/giantbomb-podcast.rss", FeedError, "too_large"),
        # each layer decodes a whole chunk at once: two make a few KB into GBs before any cap
        (f"gzip/2/f/{GUARDIAN}", FeedError, "stacked_encoding"),
    ],
)
async def test_bad_responses_raise_clear_errors(
    feed_server: FeedServer, ingest_settings: IngestSettings, path: str, error: type[Exception], kind: str
) -> None:
    settings = ingest_settings.model_copy(update={"max_body_bytes": 1_000_000, "max_retries": 0})
    async with HttpFetcher(settings) as fetcher:
        with pytest.raises(error) as info:  # type: ignore[call-overload]
            await fetcher.fetch(feed_server.url(path))
    assert info.value.kind == kind


async def test_a_gzipped_body_is_decoded(feed_server: FeedServer, ingest_settings: IngestSettings) -> None:
    async with HttpFetcher(ingest_settings) as fetcher:
        result = await fetcher.fetch(feed_server.url(f"gzip/1/f/{GUARDIAN}"))
    assert result.body == (ingest_settings.feeds_dir / GUARDIAN).read_bytes()


async def test_redirects_within_limit_are_followed(
    feed_server: FeedServer, ingest_settings: IngestSettings
) -> None:
    async with HttpFetcher(ingest_settings) as fetcher:
        result = await fetcher.fetch(feed_server.url(f"redirect/3/f/{GUARDIAN}"))
    assert result.status == 200
    assert result.url.endswith(f"/f/{GUARDIAN}")


async def test_slow_server_times_out(feed_server: FeedServer, ingest_settings: IngestSettings) -> None:
    settings = ingest_settings.model_copy(update={"request_timeout_s": 0.5, "max_retries": 0})
    async with HttpFetcher(settings) as fetcher:
        started = time.monotonic()
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(feed_server.url("slow/2/empty-feed"))
        assert info.value.kind == "timeout"
        with pytest.raises(FetchError, match="no complete response"):
            await fetcher.fetch(feed_server.url("drip/empty-feed"))  # bytes keep coming, too slowly
    assert time.monotonic() - started < 2.5


async def test_unreachable_host(ingest_settings: IngestSettings) -> None:
    from tests.conftest import free_port

    settings = ingest_settings.model_copy(update={"max_retries": 0})
    async with HttpFetcher(settings) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(f"http://127.0.0.1:{free_port()}/feed")
    assert info.value.kind == "unreachable"


async def test_an_api_key_in_the_url_is_hidden_in_errors(
    feed_server: FeedServer, ingest_settings: IngestSettings
) -> None:
    # News APIs that take their key in the query string: errors go to logs, the sources topic
    # and the API's sources list.
    settings = ingest_settings.model_copy(update={"max_retries": 0})
    async with HttpFetcher(settings) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(feed_server.url("status/500") + "?q=acme&apiKey=S3CRET-KEY&page=2")
    said = str(info.value)
    assert "S3CRET-KEY" not in said
    assert "?q=acme&apiKey=***&page=2" in said


async def test_private_targets_refused_unless_allowed(
    feed_server: FeedServer, ingest_settings: IngestSettings
) -> None:
    strict = ingest_settings.model_copy(update={"allow_private_hosts": False})
    async with HttpFetcher(strict) as fetcher:
        with pytest.raises(UnsafeUrl, match="loopback"):
            await fetcher.fetch(feed_server.url(f"f/{GUARDIAN}"))
    assert feed_server.hits == {}


async def test_a_name_resolved_elsewhere_when_fetched_is_refused_before_its_answer_is_read(
    feed_server: FeedServer, ingest_settings: IngestSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def said_public(url: str, **kwargs: object) -> None:
        """A DNS server that answered the check with a public address (rebinding)."""

    monkeypatch.setattr("ingest.fetch.check_resolved", said_public)
    strict = ingest_settings.model_copy(update={"allow_private_hosts": False})
    async with HttpFetcher(strict) as fetcher:
        with pytest.raises(UnsafeUrl, match=r"resolved again to a loopback address \(127\.0\.0\.1\)"):
            await fetcher.fetch(feed_server.url(f"f/{GUARDIAN}"))
        async with HttpFetcher(ingest_settings) as trusting:  # allowed: the same fetch works
            assert (await trusting.fetch(feed_server.url(f"f/{GUARDIAN}"))).status == 200


async def test_host_limiter_spaces_request_starts() -> None:
    limiter = HostLimiter(concurrency=2, min_interval_s=0.2)
    starts: list[float] = []

    async def one() -> None:
        async with limiter.slot("example.com"):
            starts.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(4)))
    # Each start is reserved 0.2 s after the one before: none comes earlier than its reservation.
    # (A start woken late on a loaded machine may be followed closely by the next, on time: the
    # gaps between starts are not each 0.2 s, seen in a CI run.)
    first = starts[0]
    assert all(start - first >= 0.2 * i - 0.01 for i, start in enumerate(sorted(starts)))


def test_parse_retry_after() -> None:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_retry_after("120", 3600) == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), 3600, now=now) == 30.0
    assert parse_retry_after("soon", 3600) is None
    assert parse_retry_after(None, 3600) is None
    # no further than the cap, where the next poll's time would be past a datetime's (or a float's)
    assert parse_retry_after("99999999999999", 3600) == 3600.0
    assert parse_retry_after("9" * 400, 3600) == 3600.0
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", 3600, now=now) == 3600.0
    assert parse_retry_after("²", 3600) is None
    assert parse_retry_after("inf", 3600) is None


async def test_a_retry_after_past_the_backoff_maximum_waits_that_long(
    ingest_settings: IngestSettings,
) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(429, headers={"Retry-After": "99999999999999"}))
    settings = ingest_settings.model_copy(update={"max_retries": 0, "backoff_max_s": 600.0})
    async with HttpFetcher(settings, transport=transport) as fetcher:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch("https://api.example/news")
    assert info.value.retry_after_s == 600.0


async def test_what_a_server_sends_reaches_an_error_printable(ingest_settings: IngestSettings) -> None:
    # ESC sequences clear a terminal or draw a fake link; NEL and U+2028 start a forged log line;
    # U+202E shows what follows reversed. (httpx itself refuses a Location with an ASCII control.)
    hostile = "\u0085FAKE INFO ok\u2028\u202eevil"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/news":
            return httpx.Response(302, headers=[(b"Location", f"/moved{hostile}".encode())])
        content_type = f"application/json\x1b[2J\x1b]8;;https://evil.example/\x1b\\{hostile}".encode()
        return httpx.Response(404, headers=[(b"Content-Type", content_type)], content=hostile.encode())

    settings = ingest_settings.model_copy(update={"max_retries": 0})
    async with HttpFetcher(settings, transport=httpx.MockTransport(handler)) as fetcher:
        with pytest.raises(FeedError) as info:
            await fetcher.fetch("https://api.example/news")
    assert str(info.value).isprintable()
    assert str(info.value).startswith(
        "https://api.example/moved%C2%85FAKE%20INFO%20ok%E2%80%A8%E2%80%AEevil:"
    )


TOKEN = "s3cr3t/TOKEN+value0123456789abcdef=="


@pytest.mark.parametrize(
    ("body", "said"),
    [  # the echo astride the bytes read: whitespace collapsed, it falls inside the characters shown
        (b"<html>\n" + b" " * 750 + b"<p>Invalid token: " + TOKEN.encode() + b"</p>", "token: ***</p>"),
        (b"Invalid token: " + TOKEN[:12].encode(), 'token: ***"'),  # the body itself cut mid-token
        # JSON as PHP writes it, each / escaped
        (b'{"error": "token ' + TOKEN.replace("/", "\\/").encode() + b' revoked"}', "token *** revoked"),
        (f"no access for {quote(TOKEN, safe='')} today".encode(), "no access for *** today"),
    ],
)
async def test_a_token_the_api_echoes_is_hidden_whole(
    ingest_settings: IngestSettings, body: bytes, said: str
) -> None:
    transport = httpx.MockTransport(lambda _: httpx.Response(401, content=body))
    async with HttpFetcher(ingest_settings, transport=transport) as fetcher:
        with pytest.raises(FeedError) as info:
            await fetcher.fetch("https://api.example/news", headers={"Authorization": f"Bearer {TOKEN}"})
    assert said in str(info.value)
    assert "s3cr" not in str(info.value)


def _redirecting(location: str, seen: list[httpx.Request]) -> httpx.MockTransport:
    """api.example answers 302 to `location`; everything else 200."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.example" and request.url.path == "/news":
            return httpx.Response(302, headers={"Location": location})
        return httpx.Response(200, content=b"ok")

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    ("start", "location", "kept"),
    [
        ("https://api.example/news", "https://cdn.example/x", False),
        ("https://api.example/news", "https://api.example:8443/x", False),  # another port: another origin
        ("https://api.example/news", "http://api.example/x", False),  # and so is another scheme
        ("https://api.example/news", "/x", True),
        ("https://api.example/news", "https://API.example:443/x", True),  # the same, spelled otherwise
        ("http://api.example/news", "https://api.example/x", True),  # upgraded to https: kept
    ],
)
async def test_authorization_is_dropped_on_a_cross_origin_redirect(
    ingest_settings: IngestSettings, start: str, location: str, kept: bool
) -> None:
    seen: list[httpx.Request] = []
    async with HttpFetcher(ingest_settings, transport=_redirecting(location, seen)) as fetcher:
        result = await fetcher.fetch(start, headers={"Authorization": "Bearer S3CRET", "Accept": "*/*"})
    assert result.body == b"ok"
    assert seen[0].headers["Authorization"] == "Bearer S3CRET"
    assert ("Authorization" in seen[1].headers) is kept
    assert seen[1].headers["Accept"] == "*/*"
