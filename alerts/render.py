"""Slack Block Kit and plain-text rendering of notifications.

Everything that comes from news (titles, sources, entity names) goes through
`escape_mrkdwn`: `&`, `<`, `>` become entities, so news text can neither open a
link nor a mention (`<!channel>`, `<@U123>`), and the words @channel, @here and
@everyone get a word joiner after the @ so Slack does not ping anyone. Links
are built only from http(s) URLs, with the characters that would end a Slack
link percent-encoded.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from finpulse.schema import SCORE_LEGEND, AlertEvent, HeadlineRef
from store import AlertRecord

from .digest import MIN_STORIES, Digest, EntityLine
from .links import FeedbackLinks
from .sinks.base import Notification

# Slack limits: header text 150 chars, section text 3000, 50 blocks per message.
HEADER_CHARS = 150
SECTION_CHARS = 3000
TITLE_CHARS = 200
# Alerts per message: 2 blocks each (text, chart) keeps a message far under the 50-block limit.
MAX_ALERTS_PER_MESSAGE = 10
TEST_HEADER = "Test message from finpulse: not a real alert"
# What a subscription's detector.correction made of the p-value, named as the README names it;
# None: an event from before AlertEvent carried its correction.
ADJUSTED: dict[str | None, str] = {
    "bh": "Benjamini-Hochberg-adjusted",
    "holm": "Holm-adjusted",
    "none": "unadjusted",
    None: "adjusted",
}
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_WORD_JOINER = "\u2060"
Block = dict[str, Any]


def escape_mrkdwn(text: str) -> str:
    """News text made inert for Slack mrkdwn: no links, mentions or broadcasts."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: f"@{_WORD_JOINER}{m.group(1)}", text)


def plain(text: str, limit: int) -> str:
    """News text for plain_text fields (no mrkdwn parsing there, but no broadcasts either)."""
    text = _BROADCAST.sub(lambda m: f"@{_WORD_JOINER}{m.group(1)}", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def safe_url(url: str | None) -> str | None:
    """An http(s) URL safe inside `<url|text>`, or None."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # "https://[acme.example/x": an unclosed IPv6 bracket
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return quote(url.strip(), safe=":/?#[]@!$&'()*+,;=%~-._")


def _pct(x: float) -> str:
    return f"{_points(x)}%"


def _points(x: float) -> int:
    """A share in whole percent, rounded as `_pct` shows it."""
    return int(f"{x * 100:.0f}")


def _rise(e: AlertEvent) -> str:
    """`+14 pts`: the difference of the two percentages shown (34% vs 20%), never one of the
    unrounded shares (0.345 - 0.195: +15)."""
    return f"{_points(e.negative_share) - _points(e.baseline_negative_share):+d} pts"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _entity(kind: str, name: str, mrkdwn: bool) -> str:
    """`ticker *ACME*` (the name escaped) in mrkdwn; `ticker ACME` in plain text (the console)."""
    return f"{kind} *{escape_mrkdwn(name)}*" if mrkdwn else f"{kind} {name}"


def _span(e: AlertEvent) -> str:
    return f"{_stretch(e.window_start, e.window_end)} ({e.window_kind})"


def _stretch(start: datetime, end: datetime) -> str:
    """`2025-03-03 09:05–09:10 UTC`; the end's date too when it falls on a later day (midnight
    itself ends its day)."""
    if end - start <= timedelta(days=1) and (end - timedelta(microseconds=1)).date() == start.date():
        return f"{start:%Y-%m-%d %H:%M}–{end:%H:%M} UTC"
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC"


def headline_line(h: HeadlineRef) -> str:
    title = escape_mrkdwn(plain(h.title, TITLE_CHARS))
    url = safe_url(h.url)
    link = f"<{url}|{title}>" if url else title
    source = f" — {escape_mrkdwn(h.source)}" if h.source else ""
    return f"• {link}{source} ({h.sentiment_score:+.2f})"


def summary(e: AlertEvent, *, mrkdwn: bool = True) -> str:
    """One line: what, how far above baseline, on how many stories, how sure; as mrkdwn, or as
    plain text with `mrkdwn=False` (the console)."""
    entity = _entity(e.entity_kind, e.entity, mrkdwn)
    if e.state == "resolved":
        fired_at = _pct(e.baseline_negative_share)
        return f"Resolved: {entity} {_resolution(e)}; baseline was {fired_at} when it fired"
    share = _pct(e.negative_share)
    return (
        f"{entity}: {f'*{share}*' if mrkdwn else share} negative vs baseline "
        f"{_pct(e.baseline_negative_share)} ({_rise(e)}); "
        f"{e.negative_count} of {_count(e.count, 'story', 'stories')} in {_span(e)}; "
        f"{significance_text(e)}"
    )


def _resolution(e: AlertEvent) -> str:
    """Why a resolved alert ended, in words that agree with its numbers."""
    if e.resolved_because == "quiet":
        return f"went quiet: no stories {_stretch(e.window_start, e.window_end)}"
    if e.resolved_because == "unwatched":
        return (
            "closed untested: the subscription no longer watches it "
            "(switched off, or its filter or window changed)"
        )
    stories = _count(e.count, "story", "stories")
    if e.resolved_because == "few_stories":
        return f"went quiet: {stories} in {_span(e)}, too few to test"
    return f"negative share back to {_pct(e.negative_share)} in {_span(e)}, {stories}"


def significance_text(e: AlertEvent) -> str:
    """How sure the detector was (plain text: Slack, console and the feedback pages), with the odds
    in words for readers who do not read p-values."""
    return (
        f"p = {e.p_value:.2g} (one-sided binomial, {ADJUSTED[e.correction]}; α = {e.significance:g})"
        f"{chance_text(e.p_value)}"
    )


def chance_text(p: float) -> str:
    """`: about 1 in 15,000 by chance at the baseline rate`; nothing for p near 1."""
    if p >= 0.5:
        return ""
    if p < 1e-6:
        return ": under 1 in a million by chance at the baseline rate"
    odds = float(f"{1 / p:.2g}")  # two figures: 15,385 -> 15,000
    return f": about 1 in {odds:,.0f} by chance at the baseline rate"


def feedback_line(e: AlertEvent, links: FeedbackLinks) -> str:
    """The alert's trend chart, its entity's trend in the dashboard, a link that mutes its entity,
    and links that record an analyst's verdict on it (backtest labels, training data)."""
    urls = {k: safe_url(v) for k, v in links.urls(e).items()}
    entity = escape_mrkdwn(plain(e.entity, TITLE_CHARS))
    return (
        f"<{urls['chart']}|Trend chart> · <{urls['dashboard']}|Dashboard> · "
        f"<{urls['mute']}|Mute {e.entity_kind} {entity}…> · "
        f"Real event? <{urls['tp']}|Yes, a true positive> · <{urls['fp']}|No, a false alarm>"
    )


def chart_block(e: AlertEvent, links: FeedbackLinks) -> Block:
    """The alert's trend chart as an image Slack fetches from the API."""
    alt = plain(f"negative share of {e.entity_kind} {e.entity} around the alert, and its baseline", 500)
    return {"type": "image", "image_url": links.chart_url(e.alert_id), "alt_text": alt}


def _alert_blocks(e: AlertEvent, links: FeedbackLinks | None, charts: bool = False) -> list[Block]:
    text = summary(e)
    # The verdict links come last and always whole; headlines fill the room left in Slack's section
    # limit, each whole (a cut inside a link leaves a '<' that takes in the next link's text).
    verdict = f"\n{feedback_line(e, links)}" if e.state == "fired" and links is not None else ""
    if e.state == "fired" and e.top_headlines:
        lines = [headline_line(h) for h in e.top_headlines]
        text = f"{text}\n*Top negative headlines* {SCORE_LEGEND}"
        room, kept = SECTION_CHARS - len(text) - len(verdict), 0
        for line in lines:
            last = kept == len(lines) - 1
            if len(line) + 1 + (0 if last else len("\n…and 999 more")) > room:
                break
            text, room, kept = f"{text}\n{line}", room - len(line) - 1, kept + 1
        if kept < len(lines):
            text += f"\n…and {len(lines) - kept} more"
    section = {"type": "section", "text": {"type": "mrkdwn", "text": (text + verdict)[:SECTION_CHARS]}}
    return (
        [section, chart_block(e, links)] if charts and links is not None and e.state == "fired" else [section]
    )


def blocks(n: Notification, links: FeedbackLinks | None = None, charts: bool = False) -> list[Block]:
    """Block Kit blocks for one notification (at most MAX_ALERTS_PER_MESSAGE alerts); fired
    alerts carry verdict links when `links` is given, and their trend chart with `charts`."""
    first = n.events[0]
    if n.test_note is not None:
        return _test_blocks(n)
    out: list[Block] = []
    subs = _subscriptions(n)
    if n.state == "fired":
        whose = f" ({n.subscription_names.get(subs[0]) or subs[0]})" if len(subs) == 1 else ""
        title = (
            f"Negative news spike: {first.entity_kind} {first.entity}"
            if len(n.events) == 1
            else f"{len(n.events)} negative news spikes{whose}"
        )
        # Slack decodes &amp; &lt; &gt; in plain_text too; escaping keeps one rule everywhere.
        header = escape_mrkdwn(plain(title, HEADER_CHARS - 20))
        out.append({"type": "header", "text": {"type": "plain_text", "text": header[:HEADER_CHARS]}})
    for e in n.events:
        out += _alert_blocks(e, links, charts)
    ids = ", ".join(f"`{short_id(e.alert_id)}`" for e in n.events)
    # A resolve names the alert it ends, as the fired message showed it.
    ended = ", ".join(f"`{short_id(e.fired_alert_id)}`" for e in n.events if e.fired_alert_id)
    context = f"{subscription_label(n)} · " + (
        f"resolves alert {ended}" if n.state == "resolved" and ended else f"alert {ids}"
    )
    if n.state == "fired":
        which = f"`{escape_mrkdwn(subs[0])}`" if len(subs) == 1 else "its subscription"
        # The file's next import keeps only mutes with an end ahead set outside it (alerts/live.py).
        context += (
            f" · To mute the whole subscription: add a mute to {which} in the subscriptions file "
            "(for a while: `from`/`until` in the dashboard's subscription editor)."
        )
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context[:SECTION_CHARS]}]})
    return out


def short_id(alert_id: str) -> str:
    """An alert's id as messages show it (`finpulse history alerts --id` takes it)."""
    return alert_id[:12]


def _subscriptions(n: Notification) -> list[str]:
    """The ids of the subscriptions a notification's events came from, in order."""
    return list(dict.fromkeys(e.subscription_id for e in n.events))


def subscription_label(n: Notification) -> str:
    """`Subscription *Risk desk* (`desk`)`, or `Subscriptions `a`, `b`` (mrkdwn): whose alerts
    these are, by the subscriptions file's names where they have one."""

    def one(sub: str) -> str:
        name = n.subscription_names.get(sub, "")
        named = f"*{escape_mrkdwn(plain(name, TITLE_CHARS))}* " if name and name != sub else ""
        return f"{named}(`{escape_mrkdwn(sub)}`)" if named else f"`{escape_mrkdwn(sub)}`"

    subs = _subscriptions(n)
    return ("Subscription " if len(subs) == 1 else "Subscriptions ") + ", ".join(one(s) for s in subs)


def _test_blocks(n: Notification) -> list[Block]:
    """A test message: the note, the example alert as it would look (no verdict links), who sent it."""
    note = escape_mrkdwn(n.test_note or "")[:SECTION_CHARS]
    out: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": TEST_HEADER}},
        {"type": "section", "text": {"type": "mrkdwn", "text": note}},
    ]
    for e in n.events:
        out += _alert_blocks(e, None)
    context = f"{subscription_label(n)} · sent by `finpulse alerts test`; the figures above are an example"
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return out


def fallback_text(n: Notification) -> str:
    """The notification text (push notifications, screen readers): escaped, one line per alert."""
    lines = []
    for e in n.events:
        entity = escape_mrkdwn(f"{e.entity_kind} {e.entity}")
        if e.state == "fired":
            lines.append(
                f"Negative news spike: {entity}: {_pct(e.negative_share)} negative vs "
                f"{_pct(e.baseline_negative_share)} baseline ({_count(e.count, 'story', 'stories')})"
            )
        else:
            lines.append(f"Resolved: {entity} {_resolution(e)}")
    text = "\n".join(lines)
    return (f"[{TEST_HEADER}] {text}" if n.test_note is not None else text)[:SECTION_CHARS]


def digest_entity_line(e: EntityLine, *, mrkdwn: bool = True) -> str:
    """`ticker *ACME*: 62% negative of 16 stories (day before 11%)`, as mrkdwn, or as plain text
    with `mrkdwn=False` (the console)."""
    before = "none" if e.previous_share is None else _pct(e.previous_share)
    entity, stories = _entity(e.kind, e.entity, mrkdwn), _count(e.count, "story", "stories")
    return f"{entity}: {_pct(e.negative_share)} negative of {stories} (day before: {before})"


def digest_summary(d: Digest) -> str:
    """`24 hours to 2026-03-02 08:00 (UTC): 2 of the subscription's entities in the news, 1 alert
    fired.` (plain text)."""
    # Entities with few stories are not ranked: say so, or the digest lists fewer and explains none.
    quiet = (
        f" (none with {MIN_STORIES}+ stories to rank)"
        if d.active_entities and not d.entities
        else f" ({d.unranked} with under {MIN_STORIES} stories not ranked)"
        if d.unranked
        else ""
    )
    headlines = "" if d.headlines or not d.active_entities else " No negative headlines."
    still = f", {d.open_before_total} from before still open" if d.open_before_total else ""
    hours = round((d.end.astimezone(UTC) - d.start.astimezone(UTC)) / timedelta(hours=1))
    return (
        f"{hours} hours to {d.local_end:%Y-%m-%d %H:%M} ({d.timezone}): {d.active_entities} of the "
        f"subscription's entities in the news{quiet}, "
        f"{_count(d.alerts_total, 'alert', 'alerts')} fired{still}.{headlines}"
    )


def digest_alert_line(a: AlertRecord, d: Digest, *, mrkdwn: bool = True) -> str:
    """`03-02 09:30 ticker *ACME*: 60% negative vs baseline 20% (still open)`, as mrkdwn, or as
    plain text with `mrkdwn=False` (the console): the window's end in the digest's time zone, as
    its header's."""
    return (
        f"{d.local(a.window_end):%m-%d %H:%M} {_entity(a.entity_kind, a.entity, mrkdwn)}: "
        f"{_pct(a.negative_share)} negative vs baseline {_pct(a.baseline_negative_share)}"
        f"{' (still open)' if a.still_open else ''}"
    )


def digest_blocks(d: Digest) -> list[Block]:
    """Block Kit blocks of a daily digest."""
    header = escape_mrkdwn(plain(f"Daily digest: {d.title}", HEADER_CHARS - 20))
    out: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": header[:HEADER_CHARS]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": escape_mrkdwn(digest_summary(d))}},
    ]
    sections = (
        ("Most negative", [f"• {digest_entity_line(e)}" for e in d.entities]),
        (
            "Alerts fired",
            [f"• {digest_alert_line(a, d)}" for a in d.alerts] + _more(d.alerts_total, d.alerts),
        ),
        (
            "Fired before and still open",
            [f"• {digest_alert_line(a, d)}" for a in d.open_before]
            + _more(d.open_before_total, d.open_before),
        ),
        ("Most negative headlines", [headline_line(h) for h in d.headlines]),
    )
    for title, lines in sections:
        if lines:
            text = f"*{title}*\n" + "\n".join(lines)
            out.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_CHARS]}})
    context = f"Subscription `{escape_mrkdwn(d.subscription_id)}` · its `[subscription.digest]` sets the time"
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return out


def _more(total: int, listed: tuple[AlertRecord, ...]) -> list[str]:
    """`…and 15 more (finpulse history alerts)` under a list cut at its newest."""
    return [f"…and {total - len(listed)} more (`finpulse history alerts`)"] if total > len(listed) else []


def digest_text(d: Digest) -> str:
    """The digest's notification text (push notifications, screen readers)."""
    worst = d.entities[0] if d.entities else None
    lead = f"; most negative: {worst.kind} {worst.entity} {_pct(worst.negative_share)}" if worst else ""
    alerts = _count(d.alerts_total, "alert", "alerts")
    return escape_mrkdwn(f"Daily digest {d.title}: {alerts}{lead}")[:SECTION_CHARS]
