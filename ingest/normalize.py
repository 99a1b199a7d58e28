"""Normalisation of one raw feed / API / replay entry into a NewsItem.

Text: HTML stripped with the standard library's parser (script, style and
similar elements dropped with their content), entities decoded, repeated until
stable so double-escaped markup is removed too, whitespace collapsed; wire
symbols written like tags ("Nvidia Corp <NVDA.O>") kept as cashtags ("$NVDA"),
and the footers some feeds add to every summary dropped (`_FEED_FOOTERS`).
Links: canonical form with tracking parameters removed. Times: UTC, from
ISO-8601, RFC 2822 or Unix time (seconds or milliseconds), falling back to the
fetch time with `published_estimated=True` (RFC 2822 only as written: day, month
name, year, time, zone). Tickers: cashtags (not "$US", "$NZ", "$HK": currencies),
exchange-prefixed symbols, the source's configured tickers and the companies the
title names (ingest/companies.py). Language: a confident guess from the text
(ingest/language.py), else the one declared for the entry, else the language of
most of the poll's confident guesses (`poll_language`), else what the feed
declares (channel-wide and sometimes wrong: a sample feed says Kannada for
English posts). Lone UTF-16 surrogates (JSON's unpaired "\\ud83d" escapes) become
U+FFFD first: UTF-8 cannot encode them, so ids, the schema and Kafka would reject
the entry.
"""

from __future__ import annotations

import email.utils
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urldefrag, urlencode, urljoin, urlsplit, urlunsplit

from pydantic import ValidationError

from finpulse.errors import InvalidRecord
from finpulse.schema import (
    MAX_SUMMARY_CHARS,
    MAX_TITLE_CHARS,
    TICKER,
    NewsItem,
    describe_validation_error,
    story_id_for,
)
from finpulse.unicode import without_surrogates
from ingest.companies import CompanyNames
from ingest.language import detect_language, poll_language

# Elements whose content is never text a reader sees.
_DROP_CONTENT = frozenset({"script", "style", "noscript", "template", "iframe", "object", "svg", "head"})
# Elements that separate words when removed.
_BLOCK = frozenset({"p", "br", "div", "li", "tr", "td", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})
# Anything still shaped like a tag after parsing (e.g. an unterminated "<script").
# (Browsers open a tag or a bogus comment only when a letter, "/", "!" or "?" follows "<".)
_TAG_SHAPED = re.compile(r"<!--.*?(?:-->|$)|<[/!?A-Za-z][^<>]*(?:>|(?=<)|$)", re.S)
_SPACE = re.compile(r"\s+")
# A Reuters-style instrument code in angle brackets ("Nvidia Corp <NVDA.O>": NVDA on Nasdaq),
# which an HTML parser takes for a tag: its symbol becomes a cashtag the ticker extraction reads.
_WIRE_SYMBOL = re.compile(r"<([A-Z]{1,5})\.[A-Z]{1,2}>")
# Footers feeds append to every summary, no part of the story (the classifier would score them):
# Reddit's "submitted by /u/X to /r/Y [link] [N comments]" (its Atom feed loses the spaces:
# "submitted byXtoY [link][N comments]") and the Guardian's "Continue reading...".
_FEED_FOOTERS = re.compile(
    r"\s*(?:submitted by\s*\S+(?:\s+to\s+\S+)?\s*\[link\]\s*\[(?:\d+\s+)?comments?\]"  # Reddit
    r"|Continue reading(?:\.\.\.|…))$"  # the Guardian
)
_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\t\n\r")

# Query parameters that identify a campaign or click, not the document
# (utm_* from Google Analytics; the rest from common ad / social / mail tools).
_TRACKING_PREFIXES = ("utm_", "mc_", "pk_", "hsa_", "_hs", "vero_")
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "ref", "ref_src", "referrer", "cmpid",
     "cmp", "ito", "ocid", "spm", "s_kwcid", "_ga", "_gl", "ncid", "soc_src", "soc_trk", "sr_share",
     "smid", "taid", "guccounter", "guce_referrer", "guce_referrer_sig", "xtor", "wt.mc_id", "wt_mc",
     "wt_zmc", "at_medium", "at_campaign", "feature"}
)  # fmt: skip

_CASHTAG = re.compile(rf"(?<![\w$])\$({TICKER.pattern})(?![\w])")
# Currencies written like a cashtag: "against the $US", "the $NZ slid". ("$US1.5bn" is no cashtag
# anyway: a digit follows.) "$A", "$C" and "$S" stay tickers (Agilent, Citigroup, SentinelOne).
_CURRENCY_SIGNS = frozenset({"US", "NZ", "HK"})
# "(NYSE: IBM)", "(Nasdaq:AAPL)": how press releases name listed companies.
_EXCHANGE_SYMBOL = re.compile(
    r"\((?:NYSE|NASDAQ|Nasdaq|NYSE American|NYSE Arca|AMEX|LSE|TSX|ASX)\s*:\s*([A-Z]{1,5}(?:\.[A-Z]{1,2})?)\)"
)
_MAX_TAGS = 20
# A feed date more than this far in the future is a feed bug: use the fetch time.
_FUTURE_SLACK = timedelta(hours=1)
_EPOCH_FLOOR = datetime(1990, 1, 1, tzinfo=UTC)
# Unix time: seconds below this (10**11 s is the year 5138), milliseconds from it (10**11 ms is
# 1973) up to _UNIX_MS_LIMIT (the year 5138 again); anything larger is no time.
_UNIX_S_LIMIT = 10**11
_UNIX_MS_LIMIT = 10**14
_UNIX_TIME = re.compile(r"\d+(?:\.\d+)?")
# RFC 2822 (5322) date-time, its day name, seconds and a comment after the zone optional, with a zone
# email.utils knows (an offset, UT/UTC/GMT/Z or a North American one: EST, PDT...). email.utils also
# reads looser text, wrongly: in "June 10, 2024 9:00 PM EDT" it takes "PM" for an unknown zone, 09:00 UTC.
_RFC_2822 = re.compile(
    r"(?:[a-z]{3,9},\s*)?\d{1,2}\s+[a-z]{3,9}\s+\d{2}(?:\d{2})?\s+\d{1,2}:\d{2}(?::\d{2})?"
    r"\s+(?:[+-]\d{4}|UTC?|GMT|Z|[ACEMP][SD]T)(?:\s+\([^()]*\))?",
    re.IGNORECASE,  # "mon, 10 JUN 2024 ... gmt", "Monday, 10 June 2024" are read as email.utils reads them
)


@dataclass(frozen=True)
class RawEntry:
    """One entry as a source found it, before normalisation (fields may hold HTML)."""

    source: str
    title: str = ""
    summary: str = ""
    link: str | None = None
    guid: str | None = None
    published: datetime | None = None
    # Declared for this entry (an API item's field, a replay row's, the source's setting), and for
    # the whole feed (its <language> or xml:lang: channel-wide, often missing or wrong). A story
    # whose text gives no confident guess takes the first, else its poll's, else the second.
    language: str | None = None
    channel_language: str | None = None
    tags: tuple[str, ...] = ()
    tickers: tuple[str, ...] = ()
    story_id: str | None = None


# A script or style element, up to its end tag or the end of the text.
_SCRIPT_BLOCK = re.compile(r"<(script|style)\b.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP_CONTENT:
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP_CONTENT and self._skip:
            self._skip -= 1
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _strip_once(text: str) -> str:
    # The parser hands unterminated constructs ("<!--...") back as text, where a
    # later pass may read them differently: drop script and style blocks by
    # pattern too, whatever state the parser would be in.
    text = _SCRIPT_BLOCK.sub(" ", text)
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def strip_html(text: str | None) -> str:
    """Visible text of an HTML fragment: no tags, no script, entities decoded."""
    if not text:
        return ""
    out = text
    for _ in range(4):  # double- or triple-escaped markup decodes into markup again
        stripped = _strip_once(_WIRE_SYMBOL.sub(r" $\1", out))  # (a space: "Corp<NVDA.O>" too)
        if stripped == out:
            break
        out = stripped
    out = unicodedata.normalize("NFC", out.translate(_CONTROL))
    while _TAG_SHAPED.search(out):  # removing one can join "<" and a letter into another
        out = _TAG_SHAPED.sub("", out)
    return _SPACE.sub(" ", out).strip()


def _encodable(raw: RawEntry) -> RawEntry:
    """`raw` with every text field free of lone surrogates."""
    fix = without_surrogates
    return replace(
        raw,
        title=fix(raw.title),
        summary=fix(raw.summary),
        link=fix(raw.link) if raw.link else raw.link,
        guid=fix(raw.guid) if raw.guid else raw.guid,
        language=fix(raw.language) if raw.language else raw.language,
        channel_language=fix(raw.channel_language) if raw.channel_language else raw.channel_language,
        tags=tuple(fix(t) for t in raw.tags),
        tickers=tuple(fix(t) for t in raw.tickers),
        story_id=fix(raw.story_id) if raw.story_id else raw.story_id,
    )


def truncate(text: str, limit: int) -> str:
    """Cut at a word boundary to at most `limit` characters, marking the cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def article_link(link: str | None, page: str) -> str | None:
    """An entry's link as written on the feed or API page at `page`, resolved against it ("/news/1"
    is a page of that site); None where there is none or it names the page itself ("", "#"): the
    feed's own address, with any key in its query, is no story's, and every such entry would
    share it (one story id, or all marked copies of the first)."""
    if not link or not link.strip():
        return None
    try:
        resolved = urljoin(page, link.strip())
    except ValueError:  # no URL at all ("http://[x"): canonical_url drops it, not the whole poll
        return link
    return None if urldefrag(resolved).url == urldefrag(page).url else resolved


def canonical_url(url: str | None) -> str | None:
    """http(s) URL in canonical form (tracking parameters and fragment removed), else None."""
    if not url or any(ord(c) < 32 or ord(c) == 127 for c in url.strip()):  # a link has no controls
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    if ":" in host:
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    query = [
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in _TRACKING_PARAMS and not k.lower().startswith(_TRACKING_PREFIXES)
    ]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(sorted(query)), ""))


def extract_tickers(text: str) -> tuple[str, ...]:
    """Cashtags ($AAPL) and exchange-prefixed symbols ((NYSE: IBM)) in order of appearance."""
    found = [m.group(1) for m in _CASHTAG.finditer(text) if m.group(1) not in _CURRENCY_SIGNS]
    found += [m.group(1) for m in _EXCHANGE_SYMBOL.finditer(text)]
    return tuple(dict.fromkeys(found))


def _cashtag_tag(tag: str) -> bool:
    """Whether a tag is one cashtag ("$AAPL"; not "$US", a currency)."""
    match = _CASHTAG.fullmatch(tag)
    return match is not None and match.group(1) not in _CURRENCY_SIGNS


def normalize_language(value: str | None) -> str | None:
    """Primary language subtag in lower case ("en-GB" -> "en"), or None."""
    if not value:
        return None
    primary = re.split(r"[-_\s]", value.strip().lower(), maxsplit=1)[0]
    return primary if re.fullmatch(r"[a-z]{2,8}", primary) else None


def to_utc(value: datetime | time.struct_time | str | None) -> datetime | None:
    """A timezone-aware UTC datetime from feedparser's struct_time (UTC), ISO-8601 text or datetime."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, time.struct_time):
            result = datetime(*value[:6], tzinfo=UTC)
        elif isinstance(value, str):
            result = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        else:
            result = value
        if result.tzinfo is None:
            result = result.replace(tzinfo=UTC)  # feeds without an offset mean UTC more often than not
        return result.astimezone(UTC)
    except (ValueError, TypeError, OverflowError):  # also "0001-01-01T00:00:00+01:00" in UTC
        return None


def _from_unix(value: float) -> datetime | None:
    """Unix time in seconds or milliseconds (by magnitude); None where it is out of range."""
    if not 0 <= value < _UNIX_MS_LIMIT:  # also NaN
        return None
    try:
        return datetime.fromtimestamp(value / 1000 if value >= _UNIX_S_LIMIT else value, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def published_time(value: object) -> datetime | None:
    """A published time as feeds and APIs write it, in UTC: feedparser's struct_time, a datetime,
    ISO-8601 text, Unix time in seconds or milliseconds (a number, or its digits: an API item's
    number arrives as text), or RFC 2822 text ("Mon, 10 Jun 2024 09:00:00 GMT"). None where it is
    none of these, or RFC 2822 only in part ("June 10, 2024 9:00 PM EDT"). (Replays take ISO-8601
    only: `to_utc`.)"""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_unix(value)
    if not isinstance(value, str):
        return to_utc(value)  # type: ignore[arg-type]
    text = value.strip()
    # Eight digits are ISO-8601's basic date ("20240610"), other numbers Unix time.
    if _UNIX_TIME.fullmatch(text) and len(text) != 8:
        return _from_unix(float(text))
    found = to_utc(text)
    if found is not None or not _RFC_2822.fullmatch(text):
        return found
    try:
        result = email.utils.parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if result.tzinfo is None:  # "-0000": UTC, the source's zone unknown
        result = result.replace(tzinfo=UTC)
    return result.astimezone(UTC)


def _published(raw: RawEntry, fetched_at: datetime) -> tuple[datetime, bool]:
    published = published_time(raw.published)
    if published is None or published - fetched_at > _FUTURE_SLACK or published < _EPOCH_FLOOR:
        return fetched_at, True
    return published, False


def story_identity(raw: RawEntry, url: str | None, published: datetime, estimated: bool) -> str:
    """What makes two sightings of an entry the same story within one source."""
    if raw.guid and raw.guid.strip():
        return f"guid:{raw.guid.strip()}"
    if url:
        return f"url:{url}"
    when = "" if estimated else published.isoformat()
    return f"text:{strip_html(raw.title).lower()}|{when}"


def normalize_entry(
    raw: RawEntry, fetched_at: datetime, names: CompanyNames | None = None, *, guess_language: bool = True
) -> NewsItem:
    """Build the NewsItem for one entry; raises InvalidRecord when nothing usable is left.

    `names`: the companies whose names in the title stand for their tickers (after the source's
    tickers, tags and cashtags). Only the title: a summary names more bystanders.
    `guess_language` False: the declared language alone (`ingest bench`: what the guess costs)."""
    raw = _encodable(raw)
    return _with_language(_item(raw, fetched_at, names, guess_language), raw, poll=None)


def _with_language(item: NewsItem, raw: RawEntry, poll: str | None) -> NewsItem:
    """`item`, where its text gave no confident guess, in the language declared for the entry, else
    in the poll's, else in the one the feed declares."""
    if item.language:
        return item
    language = normalize_language(raw.language) or poll or normalize_language(raw.channel_language)
    return item.model_copy(update={"language": language})


def _item(
    raw: RawEntry, fetched_at: datetime, names: CompanyNames | None, guess_language: bool = True
) -> NewsItem:
    """`normalize_entry` of an entry already free of lone surrogates, its language only a confident
    guess (see `_with_language`)."""
    title = strip_html(raw.title)
    summary = _FEED_FOOTERS.sub("", strip_html(raw.summary))
    if not title:
        if not summary:
            raise InvalidRecord("NewsItem", f"entry from {raw.source} has neither title nor summary")
        title = truncate(summary, 200)
    url = canonical_url(raw.link)
    published, estimated = _published(raw, fetched_at)
    story_id = raw.story_id or story_id_for(raw.source, story_identity(raw, url, published, estimated))
    text_tickers = extract_tickers(f"{title} {summary}")
    name_tickers = names.tickers(title) if names is not None else ()
    tag_tickers = tuple(t[1:] for t in (x.strip() for x in raw.tags) if _cashtag_tag(t))
    tags = tuple(dict.fromkeys(t for t in (strip_html(x)[:100] for x in raw.tags) if t))[:_MAX_TAGS]
    try:
        return NewsItem(
            story_id=story_id,
            source=raw.source,
            title=truncate(title, MAX_TITLE_CHARS),
            summary=truncate(summary, MAX_SUMMARY_CHARS),
            url=url,
            published_at=published,
            fetched_at=fetched_at,
            published_estimated=estimated,
            language=detect_language(f"{title}\n{summary}") if guess_language else None,
            tickers=raw.tickers + tag_tickers + text_tickers + name_tickers,
            tags=tags,
        )
    except ValidationError as exc:
        raise InvalidRecord("NewsItem", f"entry from {raw.source}: {describe_validation_error(exc)}") from exc


def normalize_entries(
    entries: Iterable[RawEntry], fetched_at: datetime, names: CompanyNames | None = None
) -> tuple[list[tuple[NewsItem, RawEntry]], list[tuple[str, InvalidRecord, RawEntry]]]:
    """One poll's entries: (item, entry) for each that normalises, (an id for its dead letter, why,
    entry) for each that does not. A story whose language is not confidently guessed and not
    declared for it takes the language of most of the poll's stories (`poll_language`), else the
    one its feed declares."""
    items: list[tuple[NewsItem, RawEntry]] = []
    invalid: list[tuple[str, InvalidRecord, RawEntry]] = []
    for entry in entries:
        raw = _encodable(entry)  # the entry goes on to dedup and dead letters too
        try:
            items.append((_item(raw, fetched_at, names), raw))
        except InvalidRecord as exc:
            identity = story_id_for(raw.source, "invalid", raw.guid or raw.link or repr(raw))
            invalid.append((identity, exc, raw))
    language = poll_language(item.language for item, _ in items)
    return [(_with_language(item, raw, language), raw) for item, raw in items], invalid
