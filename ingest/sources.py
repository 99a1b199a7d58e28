"""The sources file (TOML): feeds, JSON news APIs and replay files to ingest.

[[feeds]]                      # RSS 0.9x/1.0/2.0, Atom, RDF
name = "guardian-business"     # becomes NewsItem.source; [A-Za-z0-9._-]
url = "https://www.theguardian.com/uk/business/rss"
interval_s = 600               # optional, default ingest.default_interval_s
tags = ["markets"]             # topic hints copied onto every item
tickers = ["GBP"]              # tickers copied onto every item

[[apis]]                       # a JSON news API
name = "acme-news"
url = "https://api.example.com/v1/news"
auth_env = "ACME_NEWS_TOKEN"   # header value read from this env var at fetch time
auth_header = "Authorization"
auth_prefix = "Bearer "
items_path = "data.articles"   # dotted path to the list of items
params = { lang = "en" }
fields = { id = "uuid", title = "headline", summary = "teaser", url = "link",
           published_at = "published", tickers = "symbols" }
pagination = { cursor_path = "meta.next", cursor_param = "cursor", mode = "pages", max_pages = 3 }

[[replays]]                    # a JSONL/CSV file, published once (resumes after restart)
name = "backtest-2024"
path = "data/news.jsonl"
speed = 0                      # 0 = as fast as possible, 1 = real time, 60 = a minute per second
"""

from __future__ import annotations

import tomllib
from functools import partial
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from finpulse.schema import describe_validation_error, ticker_symbol
from ingest.errors import SourcesFileError, UnsafeUrl
from ingest.urls import check_url

_NAME = r"^[A-Za-z0-9._-]{1,100}$"


def _listed(value: object) -> object:
    """`tickers = "ACME"` as `["ACME"]`: one name written without the list's brackets."""
    return (value,) if isinstance(value, str) else value


def _symbols(tickers: tuple[str, ...]) -> tuple[str, ...]:
    """The tickers as symbols; one that is none ("Apple Inc", "$5") refused, by name."""
    read = [(t, ticker_symbol(t)) for t in tickers]
    wrong = [t for t, symbol in read if symbol is None]
    if wrong:
        raise ValueError(
            f"{', '.join(map(repr, wrong))} is no ticker symbol (1-5 letters, a class after a dot: AAPL, "
            "BRK.B); each is copied onto every item as a ticker"
        )
    return tuple(symbol for _, symbol in read if symbol)


Names = Annotated[tuple[str, ...], BeforeValidator(_listed)]
Symbols = Annotated[tuple[str, ...], BeforeValidator(_listed), AfterValidator(_symbols)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Source(_Model):
    name: str = Field(pattern=_NAME)
    enabled: bool = True
    interval_s: float | None = Field(default=None, gt=0)
    tags: Names = ()
    tickers: Symbols = ()
    # Overrides the language the feed declares (many declare none).
    language: str | None = None


class FeedSource(_Source):
    """An RSS / Atom / RDF feed polled over HTTP."""

    kind: Literal["feed"] = "feed"
    url: str


class ApiFields(_Model):
    """Where each NewsItem field sits in one API item (dotted paths)."""

    id: str | None = None
    title: str = "title"
    summary: str | None = "summary"
    url: str | None = "url"
    published_at: str | None = "published_at"
    tickers: str | None = None
    tags: str | None = None
    language: str | None = None


class ApiPagination(_Model):
    """Cursor pagination: the response names the next cursor, the request sends it back.

    mode "pages": each poll starts at the first page and follows cursors up to
    `max_pages` or until a page holds only items already seen.
    mode "resume": the last cursor is kept in the source's state and the next
    poll continues from it (APIs whose cursor means "newer than").
    """

    cursor_path: str
    cursor_param: str = "cursor"
    mode: Literal["pages", "resume"] = "pages"
    max_pages: int = Field(default=5, ge=1, le=100)


def header_safe(text: str) -> bool:
    """Whether an HTTP header can carry `text` (printable ASCII): httpx fails on anything else
    with the value in its message, a secret's too."""
    return text.isascii() and text.isprintable()


def _header_values(headers: dict[str, str]) -> dict[str, str]:
    bad = sorted(name for name, value in headers.items() if not (header_safe(name) and header_safe(value)))
    if bad:  # the values are not shown: a header may hold a key
        raise ValueError(f"header {', '.join(bad)}: a header carries printable ASCII only")
    return headers


class ApiSource(_Source):
    """A JSON news API polled over HTTP."""

    kind: Literal["api"] = "api"
    url: str
    items_path: str = ""
    params: dict[str, str] = {}
    headers: Annotated[dict[str, str], AfterValidator(_header_values)] = {}
    auth_header: str = "Authorization"
    auth_env: str | None = None
    auth_prefix: str = ""
    fields: ApiFields = ApiFields()
    pagination: ApiPagination | None = None


class ReplaySource(_Source):
    """A JSONL or CSV news file published once, in timestamp order."""

    kind: Literal["replay"] = "replay"
    path: Path
    speed: float = Field(default=0.0, ge=0)


Source = FeedSource | ApiSource | ReplaySource


class SourcesConfig(_Model):
    """Every configured source; names are unique."""

    feeds: tuple[FeedSource, ...] = ()
    apis: tuple[ApiSource, ...] = ()
    replays: tuple[ReplaySource, ...] = ()

    @model_validator(mode="after")
    def _unique_names(self) -> SourcesConfig:
        names = [s.name for s in self.all(include_disabled=True)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique: {', '.join(dupes)}")
        return self

    def all(self, *, include_disabled: bool = False) -> list[Source]:
        found: list[Source] = [*self.feeds, *self.apis, *self.replays]
        return [s for s in found if include_disabled or s.enabled]


def parse_sources(data: dict[str, object], *, base_dir: Path, allow_private: bool) -> SourcesConfig:
    """Validate a parsed sources document; relative replay paths resolve against `base_dir`."""
    try:
        config = SourcesConfig.model_validate(data)
    except ValidationError as exc:
        where = partial(_named, data)
        raise SourcesFileError(f"sources: {describe_validation_error(exc, limit=5, where=where)}") from exc
    for source in config.all(include_disabled=True):
        if isinstance(source, FeedSource | ApiSource):
            try:
                check_url(source.url, allow_private=allow_private)
            except UnsafeUrl as exc:
                raise SourcesFileError(f"source {source.name!r}: {exc}") from exc
    replays = tuple(
        r if r.path.is_absolute() else r.model_copy(update={"path": base_dir / r.path})
        for r in config.replays
    )
    return config.model_copy(update={"replays": replays})


def _named(data: dict[str, object], loc: tuple[int | str, ...]) -> str:
    """A field's place with its source named as the file names it: `feed 'cnbc': tags`, not
    `feeds.2.tags` (an index to count out); `feeds entry 3` for an entry without a name."""
    entries = data.get(str(loc[0])) if loc else None
    if len(loc) < 2 or not isinstance(loc[1], int) or not isinstance(entries, list) or loc[1] >= len(entries):
        return ".".join(str(p) for p in loc)
    entry = entries[loc[1]]
    name = entry.get("name") if isinstance(entry, dict) else None
    label = f"{str(loc[0]).removesuffix('s')} {name!r}" if name else f"{loc[0]} entry {loc[1] + 1}"
    field = ".".join(str(p) for p in loc[2:])
    return f"{label}: {field}" if field else label


def load_sources(path: Path, *, allow_private: bool = False) -> SourcesConfig:
    """Read and validate the sources file; raises SourcesFileError naming the problem."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SourcesFileError(
            f"sources file {path} not found: create it (see config/sources.toml) "
            "or set FINPULSE_INGEST_SOURCES_FILE"
        ) from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SourcesFileError(f"sources file {path} cannot be read: {exc}") from exc
    try:
        return parse_sources(data, base_dir=path.parent, allow_private=allow_private)
    except SourcesFileError as exc:
        raise SourcesFileError(f"{path}: {exc}") from exc
