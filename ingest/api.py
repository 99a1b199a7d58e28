"""JSON news APIs: items at a dotted path, fields mapped by the source's `fields` table.

The auth header's value is read from an environment variable at fetch time,
never logged, and not sent on after a redirect to another origin. Pagination
follows a cursor the response names (see `ApiPagination` for the "pages" and
"resume" modes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Collection
from typing import Any

from finpulse.schema import utcnow
from ingest.abc import Poller, PollOutcome, Rejected
from ingest.errors import FeedError, FetchError
from ingest.fetch import HttpFetcher, clip, credentials, quote_body, quote_type
from ingest.normalize import RawEntry, article_link, normalize_entries
from ingest.sources import ApiPagination, ApiSource, header_safe
from ingest.state import SourceState

logger = logging.getLogger(__name__)

# What a JSON value that is no object is, in JSON's words (a dead letter's reason says it).
_JSON_KINDS = {str: "a string", int: "a number", float: "a number", bool: "true or false", list: "an array"}
# Names listed in one string: "earnings, guidance"; tickers also "GBX MSFT" (symbols hold no space).
_TAG_SEPARATORS = re.compile(r"\s*[,;]\s*")
_TICKER_SEPARATORS = re.compile(r"[\s,;]+")


def dig(data: Any, path: str | None, *, each: bool = False) -> Any:
    """The value at a dotted path ("data.items", "meta.0.next"); None where it is missing. With
    `each`, a name that meets a list applies to each element: "stocks.name" over
    `[{"name": "ACME"}, ...]` is the list of the names."""
    if path is None:
        return None
    parts = path.split(".") if path else []
    for n, part in enumerate(parts):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit():
            data = data[int(part)] if int(part) < len(data) else None
        elif isinstance(data, list) and each:
            rest = ".".join(parts[n:])
            return [found for element in data if (found := dig(element, rest, each=True)) is not None]
        else:
            return None
    return data


def _gist(data: Any, hide: Collection[str]) -> str:
    """A JSON document in short, for an error message: an object's keys and its message or error."""
    if not isinstance(data, dict):
        return _JSON_KINDS.get(type(data), "null")
    error = data.get("error")
    said = next((t for t in (data.get("message"), error, dig(error, "message")) if isinstance(t, str)), None)
    return f"keys {clip(', '.join(map(str, data)), hide)}" + (f", message {clip(said, hide)}" if said else "")


def _strings(value: Any, separators: re.Pattern[str]) -> tuple[str, ...]:
    """The names in a string split at `separators`, a number, or a list of them (nested too)."""
    if isinstance(value, str):
        return tuple(v for v in separators.split(value.strip()) if v)
    if isinstance(value, int) and not isinstance(value, bool):
        return (str(value),)
    if isinstance(value, list):
        return tuple(name for v in value for name in _strings(v, separators))
    return ()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def map_item(item: dict[str, Any], source: ApiSource) -> RawEntry:
    """One API item as a RawEntry, using the source's field map."""
    fields = source.fields
    item_id = dig(item, fields.id)
    return RawEntry(
        source=source.name,
        title=_text(dig(item, fields.title)),
        summary=_text(dig(item, fields.summary)),
        link=article_link(_text(dig(item, fields.url)), source.url),
        guid=_text(item_id) or None,
        published=_text(dig(item, fields.published_at)) or None,  # type: ignore[arg-type]
        language=source.language or _text(dig(item, fields.language)) or None,
        tags=source.tags + _strings(dig(item, fields.tags, each=True), _TAG_SEPARATORS),
        tickers=source.tickers + _strings(dig(item, fields.tickers, each=True), _TICKER_SEPARATORS),
    )


class JsonApiSource(Poller):
    """Polls one JSON news API, following its pagination cursor."""

    def __init__(self, source: ApiSource) -> None:
        self.source = source
        self.name = source.name

    def _headers(self) -> dict[str, str]:
        headers = dict(self.source.headers)
        if self.source.auth_env:
            # A secret made from a file (kubectl create secret --from-file) ends in a newline.
            token = os.environ.get(self.source.auth_env, "").strip()
            if not token:
                raise FeedError("auth_missing", f"source={self.name}: set the env var {self.source.auth_env}")
            if not header_safe(token):  # the value itself is never shown
                raise FeedError(
                    "auth_invalid",
                    f"source={self.name}: ${self.source.auth_env} holds a character a header cannot carry",
                )
            headers[self.source.auth_header] = f"{self.source.auth_prefix}{token}"
        return headers

    async def _page(self, fetcher: HttpFetcher, params: dict[str, str], state: SourceState | None) -> Any:
        """The page's fetch result, its JSON and the list at items_path; a 304's result alone."""
        headers, auth_env = self._headers(), self.source.auth_env
        result = await fetcher.fetch(
            self.source.url,
            headers=headers,
            params=params,
            auth_headers=(self.source.auth_header,),
            credentials_from=f"${auth_env}" if auth_env else None,
            etag=state.etag if state else None,
            last_modified=state.last_modified if state else None,
        )
        if result.not_modified:
            return result
        hide = credentials(self.source.url, headers, params, (self.source.auth_header,))
        try:
            data = await asyncio.to_thread(json.loads, result.body)
        except ValueError as exc:  # an HTML maintenance page, say: the message quotes its start
            said = quote_body(result.content_type, result.body, hide)
            raise FeedError(
                "malformed", f"source={self.name}: response is not JSON ({exc}; got {said})"
            ) from exc
        items = dig(data, self.source.items_path)
        if not isinstance(items, list):  # often an error sent with 200: its keys and message say which
            said = f"{quote_type(result.content_type)}: {_gist(data, hide)}"
            raise FeedError(
                "unexpected_shape",
                f"source={self.name}: no list at items_path={self.source.items_path!r}; got {said}",
            )
        return result, data, items

    def _entries(self, items: list[Any]) -> tuple[list[RawEntry], list[Rejected]]:
        """The page's items as entries, and those that are no JSON object (dead-lettered)."""
        entries = [map_item(i, self.source) for i in items if isinstance(i, dict)]
        rejected = [
            Rejected.of(self.name, item, f"item {n} is {_JSON_KINDS.get(type(item), 'null')}, not an object")
            for n, item in enumerate(items)
            if not isinstance(item, dict)
        ]
        return entries, rejected

    async def poll(self, state: SourceState, fetcher: HttpFetcher) -> PollOutcome:
        paging = self.source.pagination
        if paging is None:  # one document: conditional GET applies
            fetched = await self._page(fetcher, dict(self.source.params), state)
            if not isinstance(fetched, tuple):
                return PollOutcome(not_modified=True, etag=state.etag, last_modified=state.last_modified)
            result, _, items = fetched
            entries, rejected = self._entries(items)
            return PollOutcome(
                entries=tuple(entries),
                etag=result.etag,
                last_modified=result.last_modified,
                rejected=tuple(rejected),
            )
        return await self._follow(paging, state, fetcher)

    async def _follow(self, paging: ApiPagination, state: SourceState, fetcher: HttpFetcher) -> PollOutcome:
        """Pages from the cursor on; one after the first that fails ends the poll with those read."""
        cursor = state.cursor if paging.mode == "resume" else None
        entries, rejected, warnings = [], [], []
        known = 0  # of the last page read, the entries an earlier poll took
        visited = {cursor}
        for number in range(paging.max_pages):
            params = dict(self.source.params)
            if cursor:
                params[paging.cursor_param] = cursor
            try:
                _, data, items = await self._page(fetcher, params, None)
                page, junk = self._entries(items)
            except (FetchError, FeedError) as exc:
                if not number:
                    raise
                # A quota that ends mid-poll must not cost the pages read; "resume" asks for this
                # page first at the next poll (the fetcher keeps a Retry-After until then).
                warnings.append("page_failed")
                logger.warning(
                    "source=%s: page %d failed, the %d before it are published: %s", self.name, number + 1,
                    number, exc,
                )  # fmt: skip
                break
            entries += page
            rejected += junk
            following = dig(data, paging.cursor_path)
            if not (page or junk) or following in (None, "") or str(following) == cursor:
                break
            if str(following) in visited:  # A -> B -> A: the pages would only come round again
                warnings.append("cursor_loop")
                logger.warning(
                    "source=%s: cursor loop: page %d points back to one read before, the pages after it "
                    "are not read: check pagination.cursor_path", self.name, number + 1,
                )  # fmt: skip
                break
            visited.add(str(following))
            if paging.mode == "pages":
                known = await asyncio.to_thread(_seen_before, page, junk, state)  # normalises: CPU work
                if known == len(page) + len(junk):
                    break  # newest first: the pages after it were read by earlier polls
            cursor = str(following)
        else:
            # Unread pages may hold new items only where the last one read held none seen before
            # ("resume" goes on from the cursor at the next poll).
            if paging.mode == "pages" and not known:
                warnings.append("more_pages")
                logger.warning(
                    "source=%s: all %d pages held new items, the rest is not read: raise "
                    "pagination.max_pages or poll more often", self.name, paging.max_pages,
                )  # fmt: skip
        return PollOutcome(
            entries=tuple(entries),
            cursor=cursor if paging.mode == "resume" else None,
            warnings=tuple(warnings),
            rejected=tuple(rejected),
        )


def _seen_before(page: list[RawEntry], junk: list[Rejected], state: SourceState) -> int:
    """How many entries of a page an earlier poll of the source took (by story id)."""
    items, invalid = normalize_entries(page, utcnow())
    ids = [item.story_id for item, _ in items] + [i for i, _, _ in invalid] + [r.id for r in junk]
    return sum(i in state.seen for i in ids)
