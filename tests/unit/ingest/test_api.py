"""JSON news APIs: item mapping into entries that normalise, auth across redirects."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from finpulse.settings import IngestSettings
from ingest.api import JsonApiSource, map_item
from ingest.errors import FeedError, FetchError
from ingest.fetch import HttpFetcher
from ingest.normalize import normalize_entries, normalize_entry
from ingest.sources import ApiFields, ApiPagination, ApiSource
from ingest.state import SourceState

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SOURCE = ApiSource(
    name="acme-news",
    url="https://api.example/v1/news",
    items_path="data",
    fields={"id": "id", "tags": "tags"},  # type: ignore[arg-type]
)


def test_a_lone_surrogate_in_json_text_becomes_a_replacement_character() -> None:
    # json.loads keeps an unpaired "\ud83d" escape as a lone surrogate, which UTF-8 cannot encode.
    item = json.loads('{"title": "Acme \\ud83d sinks", "summary": "s\\udc00", "tags": ["x\\ud800"]}')
    raw = map_item(item, SOURCE)  # no id, no url: the story id hashes the title
    normalized = normalize_entry(raw, fetched_at=NOW)
    assert normalized.title == "Acme \ufffd sinks"
    assert normalized.summary == "s\ufffd"
    assert normalized.tags == ("x\ufffd",)
    assert (
        normalized.story_id == normalize_entry(map_item({"title": "Acme \ufffd sinks"}, SOURCE), NOW).story_id
    )


def test_a_lone_surrogate_in_a_guid_or_link_neither_raises_nor_changes_normal_ids() -> None:
    items, invalid = normalize_entries(
        [
            map_item({"id": "a\ud83d", "title": "t", "url": "https://e.com/?q=\ud83d"}, SOURCE),
            map_item({"id": "b\ud83d"}, SOURCE),  # no text at all: dead-lettered, not raised
            map_item({"id": "plain", "title": "t"}, SOURCE),
        ],
        NOW,
    )
    assert [raw.guid for _, raw in items] == ["a\ufffd", "plain"]
    assert items[0][0].url == "https://e.com/?q=%EF%BF%BD"
    assert [raw.guid for _, _, raw in invalid] == ["b\ufffd"]
    assert (
        items[1][0].story_id == normalize_entry(map_item({"id": "plain", "title": "u"}, SOURCE), NOW).story_id
    )


def test_relative_item_links_resolve_against_the_api_url() -> None:
    def url(link: str) -> str | None:
        return normalize_entry(map_item({"title": "t", "url": link}, SOURCE), NOW).url

    assert url("/markets/nvidia-slump") == "https://api.example/markets/nvidia-slump"
    assert url("story/1") == "https://api.example/v1/story/1"
    assert url("https://other.example/a") == "https://other.example/a"
    assert map_item({"title": "t"}, SOURCE).link is None  # no link: none, not the API's URL
    assert url("http://[broken") is None  # no URL: the item stays, without one


async def test_the_configured_auth_header_is_not_sent_to_another_host(
    ingest_settings: IngestSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_TOKEN", "S3CRET")
    source = SOURCE.model_copy(
        update={
            "auth_env": "ACME_TOKEN",
            "auth_header": "X-Api-Key",
            "headers": {"Accept": "application/json"},
        }
    )
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "api.example":
            return httpx.Response(302, headers={"Location": "https://cdn.example/x"})
        return httpx.Response(200, json={"data": [{"title": "Acme beats"}]})

    async with HttpFetcher(ingest_settings, transport=httpx.MockTransport(handler)) as fetcher:
        outcome = await JsonApiSource(source).poll(SourceState(source=source.name), fetcher)
    assert [e.title for e in outcome.entries] == ["Acme beats"]
    assert seen[0].headers["X-Api-Key"] == "S3CRET"
    assert "X-Api-Key" not in seen[1].headers
    assert seen[1].headers["Accept"] == "application/json"


@pytest.mark.parametrize("token", ["S3CRET\n", " S3CRET\r\n"])
async def test_a_token_read_from_a_file_loses_its_line_break(
    ingest_settings: IngestSettings, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("ACME_TOKEN", token)  # kubectl create secret --from-file keeps the newline
    source = SOURCE.model_copy(update={"auth_env": "ACME_TOKEN", "auth_prefix": "Bearer "})
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [{"title": "Acme beats"}]})

    async with HttpFetcher(ingest_settings, transport=httpx.MockTransport(handler)) as fetcher:
        await JsonApiSource(source).poll(SourceState(source=source.name), fetcher)
    assert seen[0].headers["Authorization"] == "Bearer S3CRET"


@pytest.mark.parametrize("token", ["S3CRET\x01x", "S3CRET\nX-Other: 1", "S3CRÉT"])
async def test_a_token_a_header_cannot_carry_is_refused_without_showing_it(
    ingest_settings: IngestSettings, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("ACME_TOKEN", token)
    source = SOURCE.model_copy(update={"auth_env": "ACME_TOKEN"})
    sent: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200))
    async with HttpFetcher(ingest_settings, transport=transport) as fetcher:
        with pytest.raises(FeedError) as info:
            await JsonApiSource(source).poll(SourceState(source=source.name), fetcher)
    assert info.value.kind == "auth_invalid"
    assert str(info.value) == "source=acme-news: $ACME_TOKEN holds a character a header cannot carry"
    assert sent == []


async def test_a_quota_that_ends_mid_poll_keeps_the_pages_read_and_its_retry_after(
    ingest_settings: IngestSettings,
) -> None:
    source = SOURCE.model_copy(
        update={"pagination": ApiPagination(cursor_path="next", mode="resume", max_pages=5)}
    )
    asked: list[str | None] = []

    def quota(request: httpx.Request) -> httpx.Response:  # three requests a minute, pages of two
        asked.append(request.url.params.get("cursor"))
        if len(asked) > 3:
            return httpx.Response(429, headers={"Retry-After": "60"}, json={"error": "quota"})
        at = int(request.url.params.get("cursor", "0"))
        return httpx.Response(200, json={"data": [{"id": f"n{at}"}, {"id": f"n{at + 1}"}], "next": at + 2})

    async with HttpFetcher(ingest_settings, transport=httpx.MockTransport(quota)) as fetcher:
        outcome = await JsonApiSource(source).poll(SourceState(source=source.name), fetcher)
        assert [e.guid for e in outcome.entries] == ["n0", "n1", "n2", "n3", "n4", "n5"]
        assert outcome.warnings == ("page_failed",)
        assert outcome.cursor == "6"  # the next poll asks for the page refused first
        with pytest.raises(FetchError) as info:  # before the Retry-After ends: not asked at all
            await JsonApiSource(source).poll(SourceState(source=source.name, cursor="6"), fetcher)
    assert info.value.kind == "rate_limited"
    assert 58 < (info.value.retry_after_s or 0) <= 60
    assert asked == [None, "2", "4", "6"]


@pytest.mark.parametrize(
    ("response", "kind", "message"),
    [
        (
            httpx.Response(401, json={"error": "invalid key S3CRET"}),
            "http_401",
            "HTTP 401; credentials refused; check $ACME_TOKEN"
            ' (application/json: "{"error":"invalid key ***"}")',  # what it echoes of the token hidden
        ),
        (
            httpx.Response(
                200,
                text="<html>\x1b[31m<body>\n Maintenance</body></html>",
                headers={"Content-Type": "text/html"},
            ),
            "malformed",
            'got text/html: "<html> [31m<body> Maintenance</body></html>")',
        ),
        (  # an error sent with 200
            httpx.Response(
                200, json={"status": "error", "message": "You have made too many requests recently."}
            ),
            "unexpected_shape",
            "no list at items_path='data'; got application/json: keys \"status, message\","
            ' message "You have made too many requests recently."',
        ),
        (httpx.Response(200, json=[]), "unexpected_shape", "got application/json: an array"),
        (  # the content type is the server's too: no ESC, NEL or bidi override reaches a terminal
            httpx.Response(
                200,
                headers=[(b"Content-Type", "application/json\x1b[2J\u0085\u202e".encode())],
                content=b"{}",
            ),
            "unexpected_shape",
            'got application/json [2J: keys ""',
        ),
    ],
)
async def test_errors_say_where_to_look_and_what_the_api_said(
    ingest_settings: IngestSettings,
    monkeypatch: pytest.MonkeyPatch,
    response: httpx.Response,
    kind: str,
    message: str,
) -> None:
    monkeypatch.setenv("ACME_TOKEN", "S3CRET")
    source = SOURCE.model_copy(update={"auth_env": "ACME_TOKEN", "auth_prefix": "Bearer "})
    settings = ingest_settings.model_copy(update={"max_retries": 0})
    async with HttpFetcher(settings, transport=httpx.MockTransport(lambda _: response)) as fetcher:
        with pytest.raises(FeedError) as info:
            await JsonApiSource(source).poll(SourceState(source=source.name), fetcher)
    assert info.value.kind == kind
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("update", "response", "message"),
    [
        (
            {"params": {"apiKey": "S3CRETKEY"}},
            httpx.Response(401, json={"message": "Invalid apiKey: S3CRETKEY"}),
            'HTTP 401; credentials refused; check the query parameter apiKey (application/json: "{"message"'
            ':"Invalid apiKey: ***"}")',
        ),
        (
            {"url": "https://api.example/v1/news?api_token=S3CRETKEY"},
            httpx.Response(200, json={"status": "error", "message": "API key S3CRETKEY has no access"}),
            'message "API key *** has no access"',
        ),
        (  # a key's header may have any name; a short header value inside a word stays
            {"headers": {"X-Partner": "S3CRETKEY", "Accept-Language": "en"}},
            httpx.Response(403, json={"error": "Token S3CRETKEY is disabled"}),
            'HTTP 403; check the URL (application/json: "{"error":"Token *** is disabled"}")',
        ),
        (  # but a setting is no key: shown; a header named like a key is hidden however short
            {"headers": {"Accept": "application/json", "X-Api-Version": "2", "X-Api-Key": "K3Y"}},
            httpx.Response(400, json={"error": "Version 2 needs key K3Y; send Accept: application/json"}),
            '(application/json: "{"error":"Version 2 needs key ***; send Accept: application/json"}")',
        ),
        (  # and so is the auth header, whatever its name
            {"auth_env": "ACME_TOKEN", "auth_header": "X-Client"},
            httpx.Response(200, json={"message": "client T0K3N has no plan"}),
            'message "client *** has no plan"',
        ),
    ],
)
async def test_errors_hide_a_key_the_api_echoes_from_a_parameter_or_header(
    ingest_settings: IngestSettings,
    monkeypatch: pytest.MonkeyPatch,
    update: dict[str, object],
    response: httpx.Response,
    message: str,
) -> None:
    monkeypatch.setenv("ACME_TOKEN", "T0K3N")
    source = SOURCE.model_copy(update=update)
    settings = ingest_settings.model_copy(update={"max_retries": 0})
    async with HttpFetcher(settings, transport=httpx.MockTransport(lambda _: response)) as fetcher:
        with pytest.raises(FeedError) as info:
            await JsonApiSource(source).poll(SourceState(source=source.name), fetcher)
    assert message in str(info.value)
    assert "S3CRETKEY" not in str(info.value)


async def test_pages_mode_finds_the_ids_seen_before_off_the_event_loop(
    ingest_settings: IngestSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Normalising a page guesses each story's language: seconds for a page of thousands.
    threads: list[int] = []

    def normalize(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return normalize_entries(*args, **kwargs)

    monkeypatch.setattr("ingest.api.normalize_entries", normalize)
    source = SOURCE.model_copy(update={"pagination": ApiPagination(cursor_path="next", max_pages=2)})
    transport = httpx.MockTransport(lambda _: httpx.Response(200, json={"data": [{"id": "n1"}], "next": "2"}))
    async with HttpFetcher(ingest_settings, transport=transport) as fetcher:
        await JsonApiSource(source).poll(SourceState(source=source.name), fetcher)
    assert threads
    assert threading.get_ident() not in threads


async def test_a_cursor_that_comes_round_again_stops_the_poll_as_a_loop(
    ingest_settings: IngestSettings,
) -> None:
    source = SOURCE.model_copy(update={"pagination": ApiPagination(cursor_path="next", max_pages=5)})
    asked: list[str | None] = []

    def cycle(request: httpx.Request) -> httpx.Response:  # A -> B -> A -> ...
        cursor = request.url.params.get("cursor", "A")
        asked.append(cursor)
        following = {"A": "B", "B": "A"}[cursor]
        return httpx.Response(200, json={"data": [{"id": f"{cursor}{len(asked)}"}], "next": following})

    async with HttpFetcher(ingest_settings, transport=httpx.MockTransport(cycle)) as fetcher:
        outcome = await JsonApiSource(source).poll(SourceState(source=source.name), fetcher)
    assert asked == ["A", "B", "A"]  # the first page asked without a cursor is A
    assert outcome.warnings == ("cursor_loop",)  # not "more_pages": raising max_pages would not help


@pytest.mark.parametrize(
    ("path", "item", "tickers"),
    [
        (
            "stocks.name",
            {"stocks": [{"name": "ACME"}, {"name": "MSFT"}, {"id": 7}]},
            ("ACME", "MSFT"),
        ),  # Benzinga
        ("entities.symbol", {"entities": [{"symbol": "TSLA"}]}, ("TSLA",)),  # marketaux
        ("stocks", {"stocks": "GBX MSFT"}, ("GBX", "MSFT")),
        ("stocks", {"stocks": " AAPL,MSFT; NVDA "}, ("AAPL", "MSFT", "NVDA")),
        ("stocks", {"stocks": ["INTC", "AMD AVGO"]}, ("INTC", "AMD", "AVGO")),
        ("stocks.0.name", {"stocks": [{"name": "ACME"}, {"name": "MSFT"}]}, ("ACME",)),
        ("stocks.name", {"stocks": "ACME"}, ()),
    ],
)
def test_tickers_from_a_list_of_objects_or_a_spaced_string(
    path: str, item: dict[str, object], tickers: tuple[str, ...]
) -> None:
    source = SOURCE.model_copy(update={"fields": ApiFields(tickers=path)})
    assert map_item({"title": "t", **item}, source).tickers == tickers


def test_tags_split_at_commas_only() -> None:
    source = SOURCE.model_copy(update={"fields": ApiFields(tags="topics.label")})
    item = {"title": "t", "topics": [{"label": "Federal Reserve, rates"}, {"label": "earnings"}]}
    assert map_item(item, source).tags == ("Federal Reserve", "rates", "earnings")
