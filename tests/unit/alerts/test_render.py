"""Rendering: messages explain themselves; news text never injects into Slack mrkdwn."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr
from rich.console import Console

from alerts.digest import Digest, EntityLine
from alerts.links import FeedbackLinks, feedback_url
from alerts.render import (
    MAX_ALERTS_PER_MESSAGE,
    SECTION_CHARS,
    blocks,
    chance_text,
    digest_blocks,
    digest_summary,
    digest_text,
    escape_mrkdwn,
    fallback_text,
    safe_url,
    significance_text,
)
from alerts.sinks.base import Notification
from alerts.sinks.console import ConsoleSink
from store import AlertRecord

from .events import alert


def _texts(bs: list[dict]) -> list[str]:
    out = []
    for b in bs:
        if "text" in b:
            out.append(b["text"]["text"])
        out += [e["text"] for e in b.get("elements", [])]
    return out


def test_fired_message_explains_itself() -> None:
    n = Notification("k", "#alerts", "fired", (alert(1, entity="ACME"),))
    text = "\n".join(_texts(blocks(n)))
    assert blocks(n)[0]["text"]["text"] == "Negative news spike: ticker ACME"
    for expected in (
        "*62%* negative vs baseline 14%",
        "+48 pts",
        "15 of 24 stories",
        "p = 3.1e-06",
        "α = 0.001",
        "about 1 in 320,000 by chance at the baseline rate",  # the odds in words
    ):
        assert expected in text
    assert "<https://news.example/1|ACME shares tumble after profit warning> — wire (-0.91)" in text
    assert "*Top negative headlines* (score: -1 most negative, +1 most positive)" in text
    assert "To mute" in text
    assert "Subscription `desk`" in text
    assert "ACME" in fallback_text(n)


def test_fired_alerts_carry_signed_verdict_links() -> None:
    secret = SecretStr("api-token-DONOTSHOW")
    links = FeedbackLinks("https://fp.example", secret)
    n = Notification("k", "#alerts", "fired", (alert(1), alert(2)))
    texts = _texts(blocks(n, links))
    for i, text in zip((1, 2), texts[1:3], strict=True):
        tp, fp = (feedback_url("https://fp.example", secret, f"f{i:04d}-desk", v) for v in ("tp", "fp"))
        chart, mute = links.chart_url(f"f{i:04d}-desk"), links.mute_url(f"f{i:04d}-desk")
        dashboard = links.dashboard_url(alert(i))
        assert text.endswith(
            f"<{chart}|Trend chart> · <{dashboard}|Dashboard> · <{mute}|Mute ticker T00{i}…> · "
            f"Real event? <{tp}|Yes, a true positive> · <{fp}|No, a false alarm>"
        )
    assert "DONOTSHOW" not in json.dumps(blocks(n, links))
    assert "Real event?" not in json.dumps(blocks(n))  # no links configured, none rendered
    resolved = Notification("k", "#alerts", "resolved", (alert(1, "resolved", fired="f0001"),), "123.4")
    assert "Real event?" not in json.dumps(blocks(resolved, links))
    # Headlines long enough to pass Slack's section limit are cut before the links, not the links.
    long = alert(3).model_copy(update={"top_headlines": alert(3).top_headlines * 40})
    [section] = _texts(blocks(Notification("k", "#alerts", "fired", (long,)), links))[1:2]
    assert len(section) <= SECTION_CHARS
    assert section.endswith("No, a false alarm>")
    # Each headline whole or not at all: a cut inside a link leaves a '<' that takes in the next one.
    assert section.count("<") == section.count(">")
    kept, given = section.count("\n• "), len(long.top_headlines)
    assert 0 < kept < given
    assert f"…and {given - kept} more" in section
    google = "https://news.google.com/rss/articles/" + "A" * 480
    wide = tuple(
        h.model_copy(update={"url": f"{google}{i}"}) for i, h in enumerate(alert(3).top_headlines * 8)
    )
    [section] = _texts(
        blocks(
            Notification("k", "#alerts", "fired", (alert(3).model_copy(update={"top_headlines": wide}),)),
            links,
        )
    )[1:2]
    assert section.count("<") == section.count(">")
    assert section.endswith("No, a false alarm>")
    assert section.count(google) + int(section.split("…and ")[1].split()[0]) == len(wide)


def test_the_rise_is_the_difference_of_the_percentages_shown() -> None:
    # 0.345 - 0.195 is 15 points, but the message shows 34% and 20%: it says +14.
    e = alert(1).model_copy(update={"negative_share": 0.345, "baseline_negative_share": 0.195,
                                    "count": 20, "negative_count": 7})  # fmt: skip
    n = Notification("k", "#alerts", "fired", (e,))
    text = "\n".join(_texts(blocks(n)))
    assert "*34%* negative vs baseline 20% (+14 pts)" in text
    assert "+15" not in text
    assert fallback_text(n) == "Negative news spike: ticker T001: 34% negative vs 20% baseline (20 stories)"


def test_one_story_is_one_story() -> None:
    # min_volume = 1: an alert on a single story.
    e = alert(1).model_copy(update={"count": 1, "negative_count": 1, "negative_share": 1.0})
    n = Notification("k", "#alerts", "fired", (e,))
    text = "\n".join(_texts(blocks(n)))
    assert "1 of 1 story in" in text
    assert "stories" not in text.split("*Top negative headlines*")[0]
    assert fallback_text(n).endswith("(1 story)")
    end = datetime(2026, 3, 2, 8, tzinfo=UTC)
    one = Digest("d", "desk", "Desk", "#d", end - timedelta(days=1), end, "UTC", 1,
                 (EntityLine("ticker", "ACME", 1, 1.0, None),), (), ())  # fmt: skip
    assert "100% negative of 1 story (day before: none)" in "\n".join(_texts(digest_blocks(one)))


def test_resolved_and_grouped_messages() -> None:
    resolved = Notification("k", "#alerts", "resolved", (alert(1, "resolved", fired="f0001"),), "123.4")
    resolve, context = _texts(blocks(resolved))
    assert resolve == (
        "Resolved: ticker *T001* negative share back to 62% in 2025-03-03 09:05–09:10 UTC (tumbling), "
        "24 stories; baseline was 14% when it fired"
    )
    # Why it ended, in words its numbers agree with: a window of one story does not say "back to
    # 100%", a run of windows without stories names the stretch.
    few = alert(1, "resolved").model_copy(update={"count": 1, "negative_count": 1, "negative_share": 1.0,
                                                  "resolved_because": "few_stories"})  # fmt: skip
    quiet = alert(2, "resolved").model_copy(update={"count": 0, "negative_count": 0, "negative_share": 0.0,
                                                    "resolved_because": "quiet"})  # fmt: skip
    unwatched = alert(3, "resolved").model_copy(update={"resolved_because": "unwatched"})
    n = Notification("k", "#alerts", "resolved", (few, quiet, unwatched))
    assert [t.split(";")[0] for t in _texts(blocks(n)) if t.startswith("Resolved")] == [
        "Resolved: ticker *T001* went quiet: 1 story in 2025-03-03 09:05–09:10 UTC (tumbling), "
        "too few to test",
        "Resolved: ticker *T002* went quiet: no stories 2025-03-03 09:10–09:15 UTC",
        "Resolved: ticker *T003* closed untested: the subscription no longer watches it (switched off, "
        "or its filter or window changed)",
    ]
    assert fallback_text(n).splitlines()[0] == (
        "Resolved: ticker T001 went quiet: 1 story in 2025-03-03 09:05–09:10 UTC (tumbling), too few to test"
    )
    assert context.endswith("resolves alert `f0001`")  # the id its fired message showed
    group = Notification("k", "#alerts", "fired", tuple(alert(i) for i in range(MAX_ALERTS_PER_MESSAGE)))
    bs = blocks(group)
    assert bs[0]["text"]["text"] == f"{MAX_ALERTS_PER_MESSAGE} negative news spikes (desk)"
    assert len(bs) <= 50
    assert len(json.dumps(bs)) < 40_000


def test_messages_name_their_subscriptions() -> None:
    names = {"desk": "Risk desk <!channel>", "ops": "ops"}
    one = Notification("k", "#alerts", "fired", (alert(1), alert(2)), subscription_names=names)
    bs = blocks(one)
    assert bs[0]["text"]["text"] == "2 negative news spikes (Risk desk &lt;!channel&gt;)"
    context = _texts(bs)[-1]
    assert context.startswith("Subscription *Risk desk &lt;!channel&gt;* (`desk`) · alert `f0001-desk`")
    assert "add a mute to `desk` in the subscriptions file" in context
    # A name equal to the id, or none, is not said twice.
    assert _texts(blocks(Notification("k", "#a", "fired", (alert(1, sub="ops"),), subscription_names=names)))[
        -1
    ].startswith("Subscription `ops` · ")
    # A group of several subscriptions (group_by without "subscription") names each of them.
    mixed = Notification(
        "k", "#a", "fired", (alert(1), alert(2, sub="ops"), alert(3)), subscription_names=names
    )
    bs = blocks(mixed)
    assert bs[0]["text"]["text"] == "3 negative news spikes"
    context = _texts(bs)[-1]
    assert context.startswith("Subscriptions *Risk desk &lt;!channel&gt;* (`desk`), `ops` · ")
    assert "to its subscription in the subscriptions file" in context


@pytest.mark.parametrize(
    ("news", "rendered"),
    [
        ("Profits & <b>losses</b>", "Profits &amp; &lt;b&gt;losses&lt;/b&gt;"),
        ("<!channel> sell now", "&lt;!channel&gt; sell now"),
        ("ping <@U024BE7LH> and <!here|here>", "ping &lt;@U024BE7LH&gt; and &lt;!here|here&gt;"),
        ("@channel @Here @everyone", "@\u2060channel @\u2060Here @\u2060everyone"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
    ],
)
def test_escape(news: str, rendered: str) -> None:
    assert escape_mrkdwn(news) == rendered


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://a.example/x?y=1&z=2", "https://a.example/x?y=1&z=2"),
        ("https://a.example/a|b>c", "https://a.example/a%7Cb%3Ec"),
        ("javascript:alert(1)", None),
        ("slack://open", None),
        ("https://[acme.example/x", None),  # urlsplit raises: a bad link is no link, not a crash
        (None, None),
    ],
)
def test_safe_url(url: str | None, safe: str | None) -> None:
    assert safe_url(url) == safe


_MENTION = re.compile(r"<[!@#]|@(channel|here|everyone)\b", re.IGNORECASE)


@given(st.text(), st.text(), st.text())
def test_news_text_never_injects(title: str, source: str, entity: str) -> None:
    e = alert(1, entity=entity or "x", title=title or "t")
    e = e.model_copy(
        update={"top_headlines": (e.top_headlines[0].model_copy(update={"source": source or None}),)}
    )
    n = Notification("k", "#alerts", "fired", (e,))
    for text in [*_texts(blocks(n)), fallback_text(n)]:
        assert not _MENTION.search(text)
        # The only '<' left open a link we built from a safe URL.
        for m in re.finditer("<", text):
            assert text.startswith("<https://news.example/1|", m.start())


@pytest.mark.parametrize(
    ("correction", "said"),
    [
        ("none", "p = 3.1e-06 (one-sided binomial, unadjusted; α = 0.001)"),
        ("bh", "p = 3.1e-06 (one-sided binomial, Benjamini-Hochberg-adjusted; α = 0.001)"),
        ("holm", "p = 3.1e-06 (one-sided binomial, Holm-adjusted; α = 0.001)"),
        (None, "p = 3.1e-06 (one-sided binomial, adjusted; α = 0.001)"),  # sent before events named it
    ],
)
def test_the_p_value_says_how_it_was_adjusted(correction: str | None, said: str) -> None:
    assert said in significance_text(alert(1).model_copy(update={"correction": correction}))


async def test_the_console_prints_names_as_they_are() -> None:
    """No mrkdwn on a terminal: neither Slack's escapes nor its emphasis, and a `*` in a name stays."""
    out = io.StringIO()
    sink = ConsoleSink(Console(file=out, width=400, color_system=None))
    topic = alert(1, entity="M&A | Investments").model_copy(update={"entity_kind": "topic"})
    await sink.send(Notification("k", "#a", "fired", (topic, alert(2, entity="*ACME*"))))
    end = datetime(2026, 3, 2, 8, tzinfo=UTC)
    fired = _fired_before(end).model_copy(update={"entity": "<*BRK*>"})
    digest = Digest(
        "d", "desk", "Desk", "#d", end - timedelta(days=1), end, "UTC", 1,
        (EntityLine("topic", "M&A | Investments", 5, 0.6, None),), (fired,), (),
    )  # fmt: skip
    await sink.send_digest(digest)
    text = out.getvalue()
    assert "fired topic M&A | Investments: 62% negative vs baseline 14%" in text
    assert "fired ticker *ACME*: 62% negative" in text
    assert "    topic M&A | Investments: 60% negative of 5 stories" in text
    assert "    alert 03-02 05:00 ticker <*BRK*>: 60% negative vs baseline 20%" in text
    assert "&amp;" not in text


def test_a_quiet_digest_says_why_it_lists_nothing() -> None:
    end = datetime(2026, 3, 2, 8, tzinfo=UTC)
    quiet = Digest("d", "desk", "Desk", "#d", end - timedelta(days=1), end, "UTC", 4, (), (), ())
    assert digest_summary(quiet) == (
        "24 hours to 2026-03-02 08:00 (UTC): 4 of the subscription's entities in the news "
        "(none with 3+ stories to rank), 0 alerts fired. No negative headlines."
    )
    busy = Digest(
        "d",
        "desk",
        "Desk",
        "#d",
        end - timedelta(days=1),
        end,
        "UTC",
        1,
        (EntityLine("ticker", "ACME", 5, 0.6, None),),
        (),
        (),
    )
    assert digest_summary(busy).endswith(
        "1 of the subscription's entities in the news, 0 alerts fired. No negative headlines."
    )
    # Those left out for too few stories are counted, so "3 in the news" and one listed add up.
    some = dataclasses.replace(busy, active_entities=3, unranked=2)
    assert (
        "3 of the subscription's entities in the news (2 with under 3 stories not ranked)"
        in digest_summary(some)
    )


def _fired_before(end: datetime) -> AlertRecord:
    """ACME's alert sent 3 hours before `end` (its window ending then), 60% vs 20%."""
    return AlertRecord(
        alert_id="a1", subscription_id="desk", state="fired", entity_kind="ticker", entity="ACME",
        window_start=end - timedelta(hours=3, minutes=5), window_end=end - timedelta(hours=3), count=20,
        negative_count=12, negative_share=0.6, baseline_negative_share=0.2, p_value=1e-4, channel="#d",
        created_at=end - timedelta(hours=3),
    )  # fmt: skip


def test_a_digests_alert_times_are_in_its_time_zone() -> None:
    end = datetime(2026, 3, 2, 8, tzinfo=UTC)
    fired = _fired_before(end)
    berlin = Digest(
        "d", "desk", "Desk", "#d", end - timedelta(days=1), end, "Europe/Berlin", 1, (), (fired,), ()
    )
    text = json.dumps(digest_blocks(berlin))
    assert "24 hours to 2026-03-02 09:00 (Europe/Berlin)" in text
    assert (
        "03-02 06:00 ticker *ACME*: 60% negative vs baseline 20%" in text
    )  # 05:00 UTC, as the header's zone


def test_the_odds_in_words() -> None:
    assert chance_text(6.5e-05) == ": about 1 in 15,000 by chance at the baseline rate"
    assert chance_text(0.01) == ": about 1 in 100 by chance at the baseline rate"
    assert chance_text(5.2e-12) == ": under 1 in a million by chance at the baseline rate"
    assert chance_text(0.9) == ""  # a resolve's p: no odds worth saying


def test_a_digest_counts_every_alert_and_the_hours_it_covers() -> None:
    zone = ZoneInfo("Europe/London")
    end = datetime(2026, 3, 29, 8, tzinfo=zone)  # clocks went forward at 01:00 UTC: a day of 23 hours
    fired = _fired_before(end)
    busy = Digest(
        "d", "desk", "Desk", "#d", end - timedelta(days=1), end, "Europe/London", 1, (), (fired,) * 10, (),
        alerts_total=25,
    )  # fmt: skip
    assert digest_summary(busy).startswith("23 hours to 2026-03-29 08:00 (Europe/London)")
    assert "25 alerts fired" in digest_summary(busy)
    assert "…and 15 more (`finpulse history alerts`)" in json.dumps(digest_blocks(busy), ensure_ascii=False)
    assert digest_text(busy).startswith("Daily digest Desk: 25 alerts")
