"""`finpulse history entities | movers | headlines | alerts`: ranked lists from the history store.

The command group, its options and the query helpers are api/history_cli.py's. Imports
only typer, rich and the standard library at module level.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from api.auto_buckets import AUTO, trend_frames
from api.history_cli import (
    NAME_LEAST,
    Limit,
    Out,
    Search,
    Since,
    Until,
    console,
    entity_arg,
    fail,
    fetch,
    history_app,
    make_query,
    opened,
    score_text,
    spark_span,
    when_text,
    write_rows,
)
from api.text_charts import bucket_series, share_bar, spark_note, sparkline
from finpulse.tables import compact_table, fitting_table
from finpulse.terminal import untrusted
from finpulse.wording import counted, range_text

if TYPE_CHECKING:
    from store import AlertsQuery, HeadlinesQuery


@history_app.command("entities")
def entities(
    kind: Annotated[str, typer.Option(help="topic, ticker or source.")] = "topic",
    since: Since = None,
    until: Until = None,
    search: Search = None,
    limit: Limit = 20,
    out: Out = None,
) -> None:
    """The busiest topics, tickers or sources in the range, with their negative share over time."""
    from store import EntitiesQuery, TrendQuery

    query = make_query(EntitiesQuery, since, until, entity_kind=kind, limit=limit, search=search)
    with opened() as db:
        busiest = db.frame(query, paged=True)
        write_rows(db, query, out)
        if busiest.empty:
            console.print(untrusted(f"no stories in {range_text(query)}"))
            return
        # Their sparklines' buckets: `--granularity auto`'s over all entities of the kind.
        trends = make_query(TrendQuery, since, until, entity_kind=kind, granularity="hour", search=search)
        assert isinstance(trends, TrendQuery)
        [(trends, points)] = trend_frames(db, [trends], AUTO)
        granularity = trends.granularity
    start, end = spark_span(query.start, query.end, points["bucket_start"], since, granularity)
    table = compact_table(
        untrusted(f"busiest {kind}s, {range_text(query)}"),
        (kind, "stories", "negative", "mean score", "negative trend"),
        right=("stories", "negative", "mean score"),
        wraps=(kind,),
        least={kind: NAME_LEAST},
    )
    for e in busiest.itertuples():
        counts, negatives = bucket_series(points[points["entity"] == e.entity], start, end, granularity)
        table.add_row(
            untrusted(e.entity), f"{e.count:,}", f"{e.negative_share:.0%}", score_text(e.mean_score),
            sparkline(counts, negatives, width=18),
        )  # fmt: skip
    console.print(table)
    if since is None or start != query.start:
        console.print(spark_note(start), style="dim")


@history_app.command("movers")
def movers(
    kind: Annotated[str, typer.Option(help="topic, ticker or source.")] = "ticker",
    falling: Annotated[bool, typer.Option("--falling", help="Those whose negative share fell most.")] = False,
    min_stories: Annotated[
        int, typer.Option("--min-stories", min=1, help="Stories each range needs for a change.")
    ] = 10,
    since: Since = None,
    until: Until = None,
    search: Search = None,
    limit: Limit = 20,
    out: Out = None,
) -> None:
    """The entities whose negative share rose most (--falling: fell most) against the range before.

    The range before is of equal length and ends where the range starts."""
    from store import MoversQuery

    direction = "down" if falling else "up"
    query = make_query(
        MoversQuery, since, until, entity_kind=kind, min_stories=min_stories, direction=direction,
        limit=limit, search=search,
    )  # fmt: skip
    rows = fetch(query, out)
    assert isinstance(query, MoversQuery)
    before = query.previous_start()
    if rows.empty:
        moved = "fell" if falling else "rose"
        console.print(
            untrusted(
                f"no {kind} with {min_stories}+ stories whose negative share {moved} in {range_text(query)}"
            )
        )
        return
    table = compact_table(
        untrusted(
            f"{kind}s whose negative share {'fell' if falling else 'rose'} most, {range_text(query)}, "
            f"against {before:%Y-%m-%d %H:%M} – {query.start:%Y-%m-%d %H:%M}"
        ),
        (kind, "stories", "negative", "before", "change", ""),  # the bar: the change, 10 cells 100 pts
        right=("stories", "negative", "before", "change"),
    )
    for m in rows.itertuples():
        known = m.change == m.change  # NaN: too few stories before
        table.add_row(
            untrusted(m.entity), f"{m.count:,}", f"{m.negative_share:.0%}",
            f"{m.previous_share:.0%} of {m.previous_count:,}" if known
            else counted(m.previous_count, "story"),
            Text(f"{m.change * 100:+.0f} pts", style="red" if m.change > 0 else "green") if known else "-",
            Text(share_bar(abs(m.change)), style="red" if m.change > 0 else "green") if known else "",
        )  # fmt: skip
    console.print(table)


def _others(query: AlertsQuery) -> None:
    """The alerts a filtered query left out of its range: their subscriptions and entities."""
    unfiltered = dict.fromkeys(("entity_kind", "entity", "subscription_id", "state", "alert_id")) | {
        "offset": 0
    }
    with opened() as db:
        others = db.frame(query.model_copy(update=unfiltered))
    if others.empty:
        return
    subscriptions = ", ".join(sorted(set(others["subscription_id"])))
    entities = sorted(set(others["entity_kind"] + ":" + others["entity"]))
    more = f" and {len(entities) - 10} more" if len(entities) > 10 else ""
    console.print(
        untrusted(
            f"{counted(len(others), 'alert')} in the range without them: subscriptions {subscriptions}; "
            f"entities {', '.join(entities[:10])}{more}"
        )
    )


# A headline narrower than this is a tower of words, not a line.
TITLE_LEAST = 36


@history_app.command("headlines")
def headlines(
    entity: Annotated[str | None, typer.Option(help="KIND:NAME, e.g. ticker:ACME.")] = None,
    search: Search = None,
    sentiment: Annotated[
        str | None,
        typer.Option(
            help="negative, neutral, positive or any: newest first (default: any with -q, else negative)"
        ),
    ] = None,
    positive: Annotated[bool, typer.Option("--positive", help="--sentiment positive.")] = False,
    newest: Annotated[bool, typer.Option("--newest", help="Newest first, not the most extreme.")] = False,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    out: Out = None,
) -> None:
    """Stored headlines in the range: the most negative (or positive), or those matching --search.

    --search keeps those whose title holds every word; --entity those of one entity."""
    from store import HeadlinesQuery

    if positive and sentiment not in (None, "positive"):
        fail("--positive and --sentiment say different things: give one")
    kind, name = entity_arg(entity)
    mood = "positive" if positive else sentiment or ("any" if search else "negative")
    query = make_query(
        HeadlinesQuery, since, until, entity_kind=kind, entity=name, sentiment=mood, search=search,
        newest=newest, limit=limit,
    )  # fmt: skip
    assert isinstance(query, HeadlinesQuery)
    what = _headlines_text(query, entity)
    order = "newest" if query.newest_first else f"most {query.sentiment}"
    rows = fetch(query, out)
    if rows.empty:
        console.print(untrusted(f"no {what} in {range_text(query)}"))
        return
    cells = [
        {
            "published (UTC)": when_text(h.published_at),
            "score": score_text(h.sentiment_score),
            "source": untrusted(h.source),
            "topic": untrusted(h.topic),
            "tickers": untrusted(" ".join(h.tickers) if h.tickers is not None else ""),
            "title": untrusted(h.title, link=h.url if isinstance(h.url, str) else None),
        }
        for h in rows.itertuples()
    ]
    # A terminal too narrow for the titles to read as lines (80 columns) goes without the topic,
    # then the source (both in --out).
    table = fitting_table(
        console, untrusted(f"{what}, {order} first, {range_text(query)}"), cells,
        ((), ("topic",), ("topic", "source")), right=("score",), wraps=("title",),
        least={"title": TITLE_LEAST},
    )  # fmt: skip
    console.print(table)


def _headlines_text(query: HeadlinesQuery, entity: str | None) -> str:
    """What the rows are: "negative headlines for ticker:ACME", "headlines"."""
    text = "headlines" if query.sentiment == "any" else f"{query.sentiment} headlines"
    return f"{text} for {entity}" if entity else text


@history_app.command("alerts")
def alerts(
    entity: Annotated[str | None, typer.Option(help="KIND:NAME, e.g. ticker:ACME.")] = None,
    subscription: Annotated[str | None, typer.Option(help="Only this subscription's alerts.")] = None,
    state: Annotated[
        str | None, typer.Option(help="fired, resolved, or open (fired and not resolved yet).")
    ] = None,
    alert_id: Annotated[
        str | None, typer.Option("--id", help="The alert whose id starts so (as its message shows it).")
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    out: Out = None,
) -> None:
    """Alerts sent in the range, newest first, with the analysts' verdicts.

    Each with its negative share vs the baseline and p-value; --out adds the alert ids, counts and
    feedback notes."""
    from alerts.render import short_id
    from store import AlertsQuery

    kind, name = entity_arg(entity)
    query = make_query(
        AlertsQuery, since, until, entity_kind=kind, entity=name, subscription_id=subscription,
        state=state, alert_id=alert_id, limit=limit,
    )  # fmt: skip
    rows = fetch(query, out)
    if rows.empty:
        filters = {"--entity": entity, "--subscription": subscription, "--state": state, "--id": alert_id}
        given = " ".join(f"{flag} {value}" for flag, value in filters.items() if value)
        console.print(untrusted(f"no alerts{' of ' + given if given else ''} in {range_text(query)}"))
        if given:
            _others(query)
        return
    cells = [
        {
            "sent (UTC)": when_text(a.created_at),
            "window end": _end_text(a.window_end, a.created_at),
            # open: fired, and no resolve has ended it yet
            "state": Text(
                "open" if a.still_open else a.state, style="red" if a.state == "fired" else "green"
            ),
            "subscription": untrusted(a.subscription_id),
            "entity": untrusted(f"{a.entity_kind}:{a.entity}"),
            "negative": f"{a.negative_share:.0%} vs {a.baseline_negative_share:.0%}",
            "p": f"{a.p_value:.2g}",
            "verdict": a.verdict if isinstance(a.verdict, str) else "",
            "alert": short_id(str(a.alert_id)),  # as the message showed it
        }
        for a in rows.itertuples()
    ]
    # One subscription's or entity's alerts say so once, in the title; a terminal too narrow for
    # the rest (80 columns) goes without the alert's id, then the window's end (both in --out).
    shared = {
        c: cells[0][c].plain for c in ("subscription", "entity") if len({r[c].plain for r in cells}) == 1
    }
    of = f" of {shared['subscription']}" if "subscription" in shared else ""
    on = f" on {shared['entity']}" if "entity" in shared else ""
    table = fitting_table(
        console, untrusted(f"alerts{of}{on}, newest first, {range_text(query)}"), cells,
        (tuple(shared), (*shared, "alert"), (*shared, "alert", "window end")), right=("negative", "p"),
        wraps=("entity",),
    )  # fmt: skip
    console.print(table)


def _end_text(end: datetime, sent: datetime) -> str:
    """A window's end beside when its alert was sent: the time alone on the same day."""
    return f"{end:%H:%M}" if end.date() == sent.date() else when_text(end)
