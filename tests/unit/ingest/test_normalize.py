"""Normalisation: text, links, times, tickers, story ids (table-driven + hypothesis)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from finpulse.errors import InvalidRecord
from ingest.api import map_item
from ingest.companies import CompaniesFile, CompanyNames
from ingest.normalize import (
    RawEntry,
    article_link,
    canonical_url,
    extract_tickers,
    normalize_entry,
    normalize_language,
    published_time,
    strip_html,
    to_utc,
    truncate,
)
from ingest.sources import ApiSource

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
# What a browser would open as a tag or comment.
MARKUP = re.compile(r"<[/!?]?[A-Za-z]|<!--")


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Shares <b>fell</b> 5%</p>", "Shares fell 5%"),
        ("AT&amp;T &lt;3 &#8220;deal&#8221;", "AT&T <3 \u201cdeal\u201d"),
        ("<script>alert('x')</script>Profit warning", "Profit warning"),
        ("<style>p{color:red}</style><div>a</div><div>b</div>", "a b"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;Safe", "Safe"),
        ("&amp;lt;b&amp;gt;double&amp;lt;/b&amp;gt;", "double"),
        ("Revenue <img src=x onerror=alert(1)> up", "Revenue up"),
        ("unterminated <script src=//evil", "unterminated"),
        ("a < b and c > d", "a < b and c > d"),
        ("  lots \n\t of   space ", "lots of space"),
        ("<!-- hidden -->visible", "visible"),
        # Reuters' instrument codes look like tags: their symbols stay, as cashtags.
        ("Nvidia Corp &lt;NVDA.O&gt; and Ford<F.N> rise", "Nvidia Corp $NVDA and Ford $F rise"),
        ("", ""),
    ],
)
def test_strip_html(html: str, text: str) -> None:
    assert strip_html(html) == text


@given(st.text(alphabet=st.sampled_from(list("<>/&;#!?-=\"' abcsriptSCRIPT1x")), max_size=80))
@settings(max_examples=300, deadline=None)
def test_no_markup_survives_tag_soup(text: str) -> None:
    out = strip_html(text)
    assert not MARKUP.search(out)


@given(
    st.lists(
        st.one_of(
            st.text(alphabet=st.characters(blacklist_characters="<&"), max_size=20),
            st.sampled_from(
                ["<script>", "</script>", "<b>", "&lt;", "&gt;", "&amp;", "<!--", "-->", "<img x>"]
            ),
        ),
        max_size=12,
    )
)
@settings(max_examples=300, deadline=None)
def test_no_script_survives_mixed_input(parts: list[str]) -> None:
    out = strip_html("".join(parts) + "<script>steal()</script>")
    assert "steal()" not in out
    assert not MARKUP.search(out)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://Example.com/a?utm_source=x&utm_medium=rss&id=7", "https://example.com/a?id=7"),
        ("HTTP://example.com:80/path#section", "http://example.com/path"),
        ("https://example.com:8443/x?b=2&a=1", "https://example.com:8443/x?a=1&b=2"),
        ("https://example.com?fbclid=abc&gclid=def", "https://example.com/"),
        ("ftp://example.com/file", None),
        ("javascript:alert(1)", None),
        ("not a url", None),
        ("https://example.com/a\x00b", None),  # control characters: no link (PostgreSQL refuses NUL)
        ("https://example.com/a\nb", None),
        (None, None),
    ],
)
def test_canonical_url(url: str | None, canonical: str | None) -> None:
    assert canonical_url(url) == canonical


@given(
    st.from_regex(
        r"https?://[a-z]{1,8}\.com(/[a-z0-9]{0,6}){0,3}(\?([a-z_]{1,6}=[a-z0-9]{0,4}&?){0,4})?",
        fullmatch=True,
    )
)
@settings(max_examples=200, deadline=None)
def test_canonical_url_is_idempotent_and_drops_tracking(url: str) -> None:
    once = canonical_url(url)
    assert once is not None
    assert canonical_url(once) == once
    assert "utm_" not in once
    assert "fbclid" not in once


@pytest.mark.parametrize(
    ("text", "tickers"),
    [
        ("$AAPL and $msft rally; $5 coffee", ("AAPL",)),
        ("Acme Corp (NYSE: ACME) and Beta (Nasdaq:BETA) report", ("ACME", "BETA")),
        ("$BRK.B up, $TSLA down, $TSLA again", ("BRK.B", "TSLA")),
        ("US$100 price, no tickers", ()),
        # Currencies written like cashtags: "$US", "$NZ", "$HK" on their own, any of them before a number.
        ("Deal values firm at $US1.5bn against the $US", ()),
        ("The $NZ and the $HK slip; $US weakens.", ()),
        ("$A2bn raised, $C5 a share, $S3m", ()),
        # ... while $A (Agilent), $C (Citigroup) and $S (SentinelOne) stay tickers.
        ("$A shares rise, $C beats, $S jumps; $USB and $HKD", ("A", "C", "S", "USB", "HKD")),
    ],
)
def test_extract_tickers(text: str, tickers: tuple[str, ...]) -> None:
    assert extract_tickers(text) == tickers


@pytest.mark.parametrize(
    ("summary", "kept"),
    [
        ("Ask me anything. submitted by /u/someone to /r/IAmA [link] [2836 comments]", "Ask me anything."),
        ("submitted by JCFC23 to gifs [link] [87 comments]", ""),
        ("submitted byeskimiotopics [link][533 comments]", ""),  # Reddit's Atom feed, spaces lost
        ("submitted by /u/someone to /r/news [link] [comments]", ""),
        ("The FBI's statement was unusual. Continue reading...", "The FBI's statement was unusual."),
        ("Continue reading…", ""),
        # Only as a footer: the same words inside the story stay.
        ("Continue reading... analysts said", "Continue reading... analysts said"),
        ("Posts submitted by readers [link] follow", "Posts submitted by readers [link] follow"),
    ],
)
def test_feed_footers_are_dropped_from_summaries(summary: str, kept: str) -> None:
    item = normalize_entry(RawEntry(source="s", title="Story", summary=summary), fetched_at=NOW)
    assert item.summary == kept


def test_an_entry_whose_summary_is_only_a_footer_has_no_text() -> None:
    with pytest.raises(InvalidRecord, match="neither title nor summary"):
        normalize_entry(RawEntry(source="s", summary="submitted by /u/x to /r/y [link] [3 comments]"), NOW)


@pytest.mark.parametrize(
    ("link", "resolved"),
    [
        ("/news/1", "https://news.example/news/1"),
        ("https://other.example/a", "https://other.example/a"),
        # The page itself is no story's link: every such entry would share it, and its key.
        ("", None),
        ("#", None),
        ("#top", None),
        ("https://news.example/v2/feed?key=S3CRET", None),
        ("?page=2", "https://news.example/v2/feed?page=2"),
        (None, None),
    ],
)
def test_article_link(link: str | None, resolved: str | None) -> None:
    assert article_link(link, "https://news.example/v2/feed?key=S3CRET") == resolved


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01 10:00:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        (time.struct_time((2024, 5, 1, 10, 0, 0, 2, 122, 0)), datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("yesterday", None),
        ("0001-01-01T00:00:00+01:00", None),  # before year 1 in UTC: no date, not OverflowError
        ("9999-12-31T23:00:00-02:00", None),
        (None, None),
    ],
)
def test_to_utc(value: object, expected: datetime | None) -> None:
    assert to_utc(value) == expected  # type: ignore[arg-type]


JUNE_10_9AM = datetime(2024, 6, 10, 9, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # Unix time: seconds or milliseconds (by magnitude), a number or its digits.
        (1718010000, JUNE_10_9AM),
        ("1718010000", JUNE_10_9AM),
        (" 1718010000 ", JUNE_10_9AM),
        (1718010000.5, JUNE_10_9AM + timedelta(milliseconds=500)),
        ("1718010000.5", JUNE_10_9AM + timedelta(milliseconds=500)),
        (1718010000000, JUNE_10_9AM),
        ("1718010000250", JUNE_10_9AM + timedelta(milliseconds=250)),
        # RFC 2822, as RSS and HTTP write times.
        ("Mon, 10 Jun 2024 09:00:00 GMT", JUNE_10_9AM),
        ("Mon, 10 Jun 2024 11:00:00 +0200", JUNE_10_9AM),
        ("10 Jun 2024 09:00:00 -0000", JUNE_10_9AM),
        ("Mon, 10 Jun 2024 05:00 EDT", JUNE_10_9AM),
        ("Mon, 10 Jun 2024 09:00:00 +0000 (UTC)", JUNE_10_9AM),
        # ISO-8601 as before, its basic date too (digits that are no Unix time).
        ("2024-06-10T09:00:00Z", JUNE_10_9AM),
        ("20240610", datetime(2024, 6, 10, tzinfo=UTC)),
        (JUNE_10_9AM, JUNE_10_9AM),
        (time.struct_time((2024, 6, 10, 9, 0, 0, 0, 162, 0)), JUNE_10_9AM),
        # Absurd numbers and other text: no time.
        (10**20, None),
        ("99999999999999999999", None),
        ("1e12", None),
        (float("nan"), None),
        (True, None),
        ("-1718010000", None),
        ("yesterday", None),
        ("Mon, 99 Foo 2024", None),
        # RFC 2822 only in part: email.utils would read "PM" as an unknown zone, i.e. 09:00 UTC.
        ("June 10, 2024 9:00 PM EDT", None),
        # RFC 5322's names in any case, and whole
        ("mon, 10 JUN 2024 09:00:00 gmt", datetime(2024, 6, 10, 9, tzinfo=UTC)),
        ("Monday, 10 June 2024 09:00:00 GMT", datetime(2024, 6, 10, 9, tzinfo=UTC)),
        ("Mon, 10 Jun 2024 09:00 PM", None),
        ("Mon, 10 Jun 2024 09:00:00", None),  # no zone: RFC 2822 requires one
        ("", None),
        (None, None),
    ],
)
def test_published_time_reads_unix_time_and_rfc_2822(value: object, expected: datetime | None) -> None:
    assert published_time(value) == expected


@pytest.mark.parametrize(
    "published", [1718010000, "1718010000", 1718010000000, "Mon, 10 Jun 2024 09:00:00 GMT"]
)
def test_an_api_time_as_unix_time_or_rfc_2822_is_kept(published: object) -> None:
    source = ApiSource(name="api", url="https://api.example.com/news")
    raw = map_item({"title": "Tesla recalls cars", "published_at": published}, source)
    assert isinstance(raw.published, str)  # the API's number arrives as text
    item = normalize_entry(raw, fetched_at=JUNE_10_9AM + timedelta(hours=3))
    assert item.published_at == JUNE_10_9AM
    assert not item.published_estimated


def test_an_api_time_in_other_words_is_the_fetch_time_estimated() -> None:
    source = ApiSource(name="api", url="https://api.example.com/news")
    raw = map_item({"title": "Tesla recalls cars", "published_at": "June 10, 2024 9:00 PM EDT"}, source)
    fetched_at = datetime(2024, 6, 11, 2, tzinfo=UTC)
    item = normalize_entry(raw, fetched_at=fetched_at)
    assert item.published_at == fetched_at
    assert item.published_estimated


def test_language_and_truncate() -> None:
    assert normalize_language("en-GB") == "en"
    assert normalize_language("pt_BR") == "pt"
    assert normalize_language("!!") is None
    cut = truncate("word " * 100, 50)
    assert len(cut) <= 50
    assert cut.endswith("…")


def test_normalize_entry_builds_a_clean_item() -> None:
    raw = RawEntry(
        source="wire",
        title="<b>$ACME</b> shares &amp; bonds tumble",
        summary="<p>Acme (NYSE: ACME) cut guidance.<script>track()</script></p>",
        link="https://news.example.com/acme?utm_campaign=rss",
        guid="acme-1",
        published=time.struct_time((2024, 5, 1, 9, 30, 0, 2, 122, 0)),
        language="en-US",
        tags=("Markets", "$BETA"),
        tickers=("GAMMA",),
    )
    item = normalize_entry(raw, fetched_at=NOW)
    assert item.title == "$ACME shares & bonds tumble"
    assert item.summary == "Acme (NYSE: ACME) cut guidance."
    assert item.url == "https://news.example.com/acme"
    assert item.published_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    assert not item.published_estimated
    assert item.language == "en"
    assert item.tickers == ("GAMMA", "BETA", "ACME")
    assert item.tags == ("Markets", "$BETA")
    # stable: the same entry later gives the same id; another guid another id
    assert normalize_entry(raw, fetched_at=NOW + timedelta(hours=1)).story_id == item.story_id
    other = RawEntry(source="wire", title="x", guid="acme-2")
    assert normalize_entry(other, fetched_at=NOW).story_id != item.story_id


def test_a_currency_tag_is_no_ticker() -> None:
    raw = RawEntry(source="s", title="Aussie dollar slides against the $US", tags=("$US", " $AAPL", "$NZ"))
    assert normalize_entry(raw, fetched_at=NOW).tickers == ("AAPL",)


def test_companies_the_title_names_add_their_tickers_after_the_others() -> None:
    names = CompanyNames.of(CompaniesFile(tickers={"TSLA": ["Tesla"], "AAPL": ["Apple"], "F": ["Ford"]}))
    raw = RawEntry(
        source="s", title="$F: Ford and Tesla recall cars", summary="Apple is a bystander", tickers=("GM",)
    )
    assert normalize_entry(raw, fetched_at=NOW, names=names).tickers == ("GM", "F", "TSLA")
    assert normalize_entry(raw, fetched_at=NOW).tickers == ("GM", "F")  # without names: as before


@pytest.mark.parametrize(
    "published",
    [
        None,
        "not a date",
        datetime(2099, 1, 1, tzinfo=UTC),
        datetime(1970, 1, 2, tzinfo=UTC),
        "0",
        "12",
        10**13 * 9,  # milliseconds in the year 4821
        "4102444800",  # seconds: 2100
        10**15,  # no unit
    ],
)
def test_missing_or_absurd_dates_fall_back_to_fetch_time(published: object) -> None:
    item = normalize_entry(RawEntry(source="s", title="t", published=published), fetched_at=NOW)  # type: ignore[arg-type]
    assert item.published_at == NOW
    assert item.published_estimated


def test_entry_without_text_is_invalid_and_title_falls_back_to_summary() -> None:
    with pytest.raises(InvalidRecord, match="neither title nor summary"):
        normalize_entry(RawEntry(source="s", title="<script>x</script>", summary="  "), fetched_at=NOW)
    item = normalize_entry(RawEntry(source="s", summary="Only a summary here"), fetched_at=NOW)
    assert item.title == "Only a summary here"


@given(title=st.text(max_size=300), summary=st.text(max_size=2000))
@settings(max_examples=200, deadline=None)
def test_normalize_entry_never_emits_markup(title: str, summary: str) -> None:
    raw = RawEntry(source="s", title=title + "<script>x()</script>", summary=f"<div>{summary}</div>")
    try:
        item = normalize_entry(raw, fetched_at=NOW)
    except InvalidRecord:
        return
    assert not MARKUP.search(item.title)
    assert not MARKUP.search(item.summary)
    if not set(title) & set("<&"):  # (after "<?" or "<!" a browser shows "x()" as text too)
        assert "x()" not in item.title
