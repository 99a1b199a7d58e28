"""Sources file, URL policy and state persistence."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from finpulse.settings import IngestSettings
from ingest.errors import FetchError, SourcesFileError, UnsafeUrl
from ingest.ingestor import failure_backoff_s
from ingest.sources import ApiSource, FeedSource, load_sources
from ingest.state import SourceState, StateStore
from ingest.urls import check_resolved, check_url


def test_example_sources_file_is_valid() -> None:
    config = load_sources(IngestSettings().sources_file)
    names = [s.name for s in config.all()]
    assert names
    assert all(isinstance(s, FeedSource) for s in config.all())
    api = [s for s in config.all(include_disabled=True) if isinstance(s, ApiSource)]
    assert api[0].pagination is not None
    assert api[0].auth_env == "EXAMPLE_NEWS_API_TOKEN"


def test_relative_replay_paths_resolve_against_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text('[[replays]]\nname = "r"\npath = "data/news.jsonl"\nspeed = 2\n')
    config = load_sources(path)
    assert config.replays[0].path == tmp_path / "data/news.jsonl"


def test_one_ticker_or_tag_may_be_written_without_a_list(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text('[[feeds]]\nname = "a"\nurl = "https://x.com/f"\ntickers = "ACME"\ntags = "wire"\n')
    [feed] = load_sources(path).all()
    assert (feed.tickers, feed.tags) == (("ACME",), ("wire",))


def test_a_sources_tickers_are_symbols_and_one_that_is_none_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text('[[feeds]]\nname = "a"\nurl = "https://x.com/f"\ntickers = ["nasdaq:aapl", "BRK-B"]\n')
    [feed] = load_sources(path).all()
    assert feed.tickers == ("AAPL", "BRK.B")
    path.write_text('[[feeds]]\nname = "a"\nurl = "https://x.com/f"\ntickers = ["Apple Inc", "$5", "MSFT"]\n')
    with pytest.raises(SourcesFileError, match=r"'Apple Inc', '\$5' is no ticker symbol"):
        load_sources(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[feeds]]\nname = "a"\n', "url"),
        ('[[feeds]]\nname = "bad name!"\nurl = "https://x.com/f"\n', "name"),
        ('[[feeds]]\nname = "a"\nurl = "https://x.com/f"\nspeed = 1\n', "speed"),
        (
            '[[feeds]]\nname = "a"\nurl = "https://x.com/f"\n[[feeds]]\nname = "a"\nurl = "https://y.com/f"\n',
            "unique",
        ),
        ("[[feeds]\n", "cannot be read"),
        (  # the value is not shown: a header may hold a key
            '[[apis]]\nname = "a"\nurl = "https://x.com/f"\nheaders = { X-Key = "k\u00e9y-secret" }\n',
            r"header X-Key: a header carries printable ASCII only(?!.*secret)",
        ),
    ],
)
def test_bad_sources_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    with pytest.raises(SourcesFileError, match=message):
        load_sources(path)


def test_missing_sources_file(tmp_path: Path) -> None:
    with pytest.raises(SourcesFileError, match="FINPULSE_INGEST_SOURCES_FILE"):
        load_sources(tmp_path / "nope.toml")


def test_unsafe_feed_url_in_file(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text('[[feeds]]\nname = "a"\nurl = "http://127.0.0.1:8080/feed"\n')
    # the file, the source and the variable that allows it named
    with pytest.raises(
        SourcesFileError, match=f"{path}: source 'a': feed URL .* targets a loopback"
    ) as raised:
        load_sources(path)
    assert "FINPULSE_INGEST_ALLOW_PRIVATE_HOSTS=true" in str(raised.value)
    assert load_sources(path, allow_private=True).feeds[0].url.startswith("http://127.0.0.1")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "http or https"),
        ("gopher://example.com/", "http or https"),
        ("https://", "no host"),
        ("http://localhost/feed", "loopback"),
        ("http://127.0.0.1/feed", "loopback"),
        ("http://[::1]/feed", "loopback"),
        ("http://10.1.2.3/feed", "private"),
        ("http://192.168.0.1/feed", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::ffff:10.0.0.1]/", "private"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://100.100.100.200/latest/meta-data/", "non-public"),  # shared 100.64/10: a cloud's metadata
        ("http://[2002:a9fe:a9fe::]/", "link-local"),  # 6to4 around 169.254.169.254
        ("https://user:pw@example.com/feed", "credentials"),
        ("http://example.com:99999/", "malformed"),
    ],
)
def test_unsafe_urls(url: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        check_url(url)


def test_public_urls_pass() -> None:
    assert check_url("https://www.theguardian.com/uk/business/rss")
    assert check_url("http://93.184.216.34/feed")
    assert check_url("http://127.0.0.1:8000/feed", allow_private=True)


async def test_names_resolving_to_private_addresses_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    answers = {"intranet.example": "10.0.0.7", "rebind.example": "127.0.0.1", "news.example": "93.184.216.34"}

    async def resolve(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(loop, "getaddrinfo", resolve)
    with pytest.raises(UnsafeUrl, match="resolves to a private"):
        await check_resolved("https://intranet.example/feed")
    with pytest.raises(UnsafeUrl, match="resolves to a loopback"):
        await check_resolved("https://rebind.example/feed")
    await check_resolved("https://news.example/feed")
    await check_resolved("https://intranet.example/feed", allow_private=True)


async def test_a_name_that_does_not_resolve_is_not_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fetch would resolve it again: a DNS server that fails the check may answer it otherwise."""

    async def fail(host: str, port: int, **_: object) -> list[tuple[object, ...]]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):  # a CI machine's own
        monkeypatch.delenv(name, raising=False)

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fail)
    with pytest.raises(FetchError, match=r"cannot resolve evil\.example") as info:
        await check_resolved("https://evil.example/feed")
    assert info.value.kind == "unreachable"  # retried later, as a host that does not answer
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    await check_resolved("https://evil.example/feed")  # the proxy resolves it (nothing here may)


def test_state_round_trip_and_corrupt_file(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    now = datetime(2024, 1, 1, tzinfo=UTC)
    state = SourceState(source="s", etag='"abc"', seen={"id1": now}, next_poll_at=now)
    store.save(state)
    assert store.load("s") == state
    (tmp_path / "sources" / "s.json").write_text("{not json")
    assert store.load("s") == SourceState(source="s")
    assert (tmp_path / "sources" / "s.json.corrupt").exists()
    (tmp_path / "sources" / "t.json").write_text(json.dumps({"source": "t", "seen": "wrong"}))
    assert store.load("t") == SourceState(source="t")


def test_seen_ids_expire_only_after_the_ttl() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    state = SourceState(source="s", seen={"old": t0, "kept": t0 + timedelta(days=5)})
    seen = state.remember(["new", "kept"], t0 + timedelta(days=31), ttl=timedelta(days=30))
    assert set(seen) == {"kept", "new"}


def test_errors_name_the_source_not_its_index(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        '[[feeds]]\nname = "ok"\nurl = "https://a.example/f"\n'
        '[[feeds]]\nname = "cnbc"\nurl = "https://b.example/f"\ntags = 3\n'
        '[[feeds]]\nurl = "https://c.example/f"\n'
    )
    with pytest.raises(SourcesFileError) as raised:
        load_sources(path)
    said = str(raised.value)
    assert 'feed \'cnbc\': tags: give a list, e.g. ["A", "B"]' in said
    assert "feeds entry 3: name: Field required" in said  # no name to give: its place, counted from 1
    assert "feeds.1" not in said


def test_a_source_failing_for_months_waits_the_cap_and_its_backoff_does_not_overflow() -> None:
    assert failure_backoff_s(300, 1, 3600) == 300
    assert failure_backoff_s(300, 3, 3600) == 1200
    assert failure_backoff_s(300, 1025, 3600) == 3600  # 300 * 2 ** 1024 is past a float
    assert failure_backoff_s(300, 10**6, 3600) == 3600
