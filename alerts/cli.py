"""`finpulse alerts`: run the alert dispatcher; `check` validates subscriptions, `test` sends
each subscription's channel a test message.

Imports only typer and the standard library at module level; the dispatcher
and its libraries load when the command runs.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from finpulse.terminal import labelled, untrusted
from finpulse.wording import counted

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from rich.console import Console
    from rich.text import Text

    from finpulse.settings import Settings

    from .overview import Overview
    from .sample import SampleResult
    from .subscriptions import Subscription


alerts_app = typer.Typer(
    help="Deliver alert events (Slack, console, webhook).\n\n"
    "`finpulse alerts` without a command runs the dispatcher, a long-running service (Ctrl-C / SIGTERM "
    "stops it): it consumes alerts.events, groups, delivers through the sinks, commits after delivery."
)
# `alerts list` prints its table from this terminal width; narrower, a paragraph per subscription.
WIDE_TABLE_COLUMNS = 120
Sinks = Annotated[
    list[str] | None,
    typer.Option(
        "--sink",
        metavar="SINK",
        help="Sink to send through: slack, console, webhook; repeatable (default: settings.alerts.sinks).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add the `alerts` command group to the finpulse CLI."""
    app.add_typer(alerts_app, name="alerts")


@alerts_app.callback(invoke_without_command=True)
def alerts(
    ctx: typer.Context,
    sink: Sinks = None,
) -> None:
    """Run the dispatcher: consume alerts.events, group, deliver, commit after delivery."""
    if ctx.invoked_subcommand is not None:
        return
    from finpulse.cli import settings

    s = settings()
    asyncio.run(_serve(s, sink))


@alerts_app.command("check")
def check(
    path: Annotated[Path | None, typer.Argument(help="Subscriptions file (default: from settings).")] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 on warnings too (a check before a deploy).")
    ] = False,
) -> None:
    """Validate the subscriptions file and list what it subscribes to.

    Exit 2 when it is invalid; with --strict, 1 when it has warnings."""
    from finpulse.cli import console, settings
    from finpulse.schema import utcnow

    from .subscriptions import load_subscriptions

    subs = load_subscriptions(path or settings().alerts.subscriptions_file)
    doubts = _warnings(subs, utcnow())  # after the list, so each reads whole
    for sub in subs:
        f, d = sub.filter, sub.detector
        watched = ", ".join(
            f"{kind}={'|'.join(names)}"
            for kind, names in (("topics", f.topics), ("tickers", f.tickers), ("sources", f.sources))
            if names
        )
        console.print(
            untrusted(
                f"{sub.id}: channel={sub.channel} {watched} {d.summary()} mutes={len(sub.mute)}"
                + (f" digest={sub.digest.label()}" if sub.digest else "")
                + ("" if sub.enabled else " (disabled)")
            )
        )
    if not subs:
        doubts.append(
            labelled("warning:", "the file holds no subscriptions: nothing will alert", style="yellow")
        )
    for doubt in doubts:
        console.print(doubt)
    console.print(
        f"{counted(len(subs), 'subscription')} OK"
        + (f", {counted(len(doubts), 'warning')}" if doubts else "")
    )
    if strict and doubts:
        raise typer.Exit(1)


@alerts_app.command("list")
def list_subscriptions(
    days: Annotated[float, typer.Option(min=0.01, help="Alerts fired over this many days.")] = 7.0,
) -> None:
    """The live subscriptions (file and dashboard edits), their alerts lately and the verdicts.

    Each shows whether it is on, disabled or muted, the entities muted now and its digest."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    from finpulse.cli import console, settings
    from finpulse.logs import quiet_store
    from finpulse.schema import utcnow
    from store import StoreError, StoreUnavailable, open_store

    from .live import live_subscriptions
    from .overview import overviews

    s = settings()
    quiet_store()
    store = open_store(s.store, read_only=True) if s.stream.history else None
    try:
        if store is not None:
            store.start()
    except (StoreError, StoreUnavailable) as exc:  # no history (yet): the file's subscriptions still list
        console.print(labelled("no alert history:", exc, style=""))
        store = None
    try:
        rows = overviews(live_subscriptions(s.alerts.subscriptions_file, store), store, utcnow(), days)
    finally:
        if store is not None:
            store.stop()
    title = counted(len(rows), "live subscription")
    if console.width < WIDE_TABLE_COLUMNS:
        # Too narrow for the table (80 columns cut its cells to three letters): a subscription a
        # paragraph, its id and channel whole (what commands take), the rest in a line that wraps.
        console.print(title)
        for o in rows:
            console.print(Text.assemble(untrusted(o.sub.id, style="bold"), untrusted(f" → {o.sub.channel}")))
            console.print(Padding(untrusted(o.line(days)), (0, 0, 0, 2)))
        _warn(console, rows)
        return
    columns = ("subscription", "channel", "watches", "state", "digest", f"alerts {days:g} d", "last fired")
    table = Table(title=title, title_justify="left")
    for column in (*columns, "tp / fp"):
        whole = column in ("subscription", "channel", "tp / fp")
        table.add_column(column, no_wrap=whole, overflow="ellipsis" if whole else "fold")
    for o in rows:
        # Names set in the dashboard or the API: not read as markup ("[/]wire" failed the table).
        state = Text("\n").join(
            untrusted(line) for line in (o.state, *(f"muted {m}" for m in o.entity_mutes))
        )
        table.add_row(
            *map(untrusted, (o.sub.id, o.sub.channel, o.sub.filter.summary())), state,
            o.sub.digest.label() if o.sub.digest else "-", str(len(o.fired)), o.latest() or "-",
            "{} / {}".format(*o.verdicts),
        )  # fmt: skip
    console.print(table)
    _warn(console, rows)


def _warn(console: Console, rows: Sequence[Overview]) -> None:
    """`alerts check`'s warnings of the live set (dashboard and API ones too), under its listing."""
    from finpulse.schema import utcnow

    for warning in _warnings([o.sub for o in rows], utcnow()):
        console.print(warning)


def _warnings(subs: Sequence[Subscription], now: datetime) -> list[Text]:
    """`warning: desk: ...` for each of the subscriptions' doubts (Subscription.doubts)."""
    return [
        labelled("warning:", untrusted(f"{sub.id}: {doubt}"), style="yellow")
        for sub in subs
        for doubt in sub.doubts(now)
    ]


@alerts_app.command("test")
def send_test(
    subscription: Annotated[
        list[str] | None,
        typer.Option(
            "--subscription",
            "-s",
            metavar="ID",
            help="Only this subscription (repeat for more; default: all).",
        ),
    ] = None,
    sink: Sinks = None,
) -> None:
    """Send each subscription's channel a test message through each sink; exit 1 when any could
    not be sent (a sink that cannot send at all, a refused token say, fails only its own).

    The message is marked as a test and shows an example alert."""
    from rich.table import Table

    from finpulse.cli import console, settings
    from finpulse.errors import ConfigError
    from finpulse.schema import utcnow
    from store import open_store

    from .live import live_subscriptions
    from .sample import send_samples
    from .sinks.build import build_sinks
    from .subscriptions import pick
    from .windows import window_sizes

    s = settings()
    store = open_store(s.store, read_only=True) if s.stream.history else None
    try:  # live_subscriptions opens the store, or falls back to the file when it cannot
        subs = live_subscriptions(s.alerts.subscriptions_file, store)
    finally:
        if store is not None:
            store.stop()
    subs = pick(subs, subscription or [])
    if not subs:
        raise ConfigError(
            f"no subscriptions to test: add one to {s.alerts.subscriptions_file} or the dashboard"
        )
    results = asyncio.run(send_samples(subs, build_sinks(sink, s), utcnow(), window_sizes(s.alerts)))
    table = Table("subscription", "channel", "sink", "result", title="Test messages")
    for r in results:
        table.add_row(
            *map(untrusted, (r.subscription_id, r.channel, r.sink)),
            untrusted(r.detail, style="" if r.sent else "red"),
        )
    console.print(table)
    failed = [r for r in results if not r.sent]
    if failed:
        advice = _advice(failed)
        console.print(
            f"{len(failed)} of {len(results)} not sent, each result says why"
            + (f" ({'; '.join(advice)})" if advice else "")
        )
        raise typer.Exit(1)


def _advice(failed: Sequence[SampleResult]) -> list[str]:
    """`alerts test`'s advice for each cause its failed messages' errors name (Slack's error codes,
    SlackNotifier's "cannot reach"); a cause none names gets none."""
    from .slack import AUTH_ERRORS

    said = " ".join(r.detail for r in failed)
    causes: tuple[tuple[Iterable[str], str], ...] = (
        (
            ("channel_not_found", "not_in_channel"),
            "Slack's channel_not_found or not_in_channel: check the channel, id or name, and that the "
            "bot is in it: /invite @your-bot",
        ),
        (
            AUTH_ERRORS,
            "Slack refused the token: set FINPULSE_ALERTS_SLACK_TOKEN or FINPULSE_ALERTS_SLACK_TOKEN_FILE "
            "to the bot's token (xoxb-)",
        ),
        (("cannot reach",), "Slack did not answer: check the network or proxy, then try again"),
    )
    return [advice for codes, advice in causes if any(code in said for code in codes)]


@alerts_app.command("digest")
def send_digest(
    subscription: Annotated[
        list[str], typer.Option("--subscription", "-s", metavar="ID", help="Subscription id (repeatable).")
    ],
    sink: Sinks = None,
) -> None:
    """Send a subscription's daily digest now, for the last 24 hours.

    Scheduled digests go out from `finpulse alerts` at the `at` time of the subscription's digest
    table."""
    from finpulse.cli import console, settings
    from finpulse.logs import quiet_store
    from finpulse.schema import utcnow
    from store import open_store

    from .digest import build_digest, digest_id
    from .live import live_subscriptions
    from .sinks.build import build_sinks
    from .subscriptions import pick

    s = settings()
    quiet_store()
    store = open_store(s.store, read_only=True)
    try:
        store.start()  # a digest reads the history: no store is the error to show
        subs = pick(live_subscriptions(s.alerts.subscriptions_file, store), subscription)
        now = utcnow()
        digests = [build_digest(store, sub, digest_id(sub.id, now.date()), now) for sub in subs]
    finally:
        store.stop()

    async def deliver() -> None:
        for out in build_sinks(sink, s):
            async with out:
                for digest in digests:
                    ref = await out.send_digest(digest)
                    console.print(
                        f"digest {digest.subscription_id} -> {out.name} {digest.channel}: sent"
                        + (f" ({ref})" if ref else "")
                    )

    asyncio.run(deliver())


async def _serve(s: Settings, sink_names: list[str] | None) -> None:
    from finpulse.metrics import serve_metrics
    from finpulse.topics import ensure_topics
    from store import open_store

    from .digest_job import DigestJob
    from .dispatcher import AlertDispatcher
    from .ledger import DeliveryLedger
    from .live import LiveSubscriptions
    from .sinks.build import build_sinks

    serve_metrics(s.alerts.metrics_port, "FINPULSE_ALERTS_METRICS_PORT", s.alerts.metrics_host)
    store = open_store(s.store) if s.stream.history else None
    live = LiveSubscriptions(s.alerts.subscriptions_file, store, refresh_s=s.alerts.subscriptions_refresh_s)
    subscriptions = await asyncio.to_thread(live.load)
    ledger = DeliveryLedger(s.alerts.ledger_file or s.data_dir / "alerts" / "deliveries.sqlite")
    await ensure_topics(s.kafka)
    sinks = build_sinks(sink_names, s)
    dispatcher = AlertDispatcher(
        kafka=s.kafka, settings=s.alerts, sinks=sinks, subscriptions=subscriptions, ledger=ledger
    )
    live.on_change = dispatcher.set_subscriptions
    # Daily digests read the history store: none without it.
    digests = DigestJob(store, sinks, ledger, lambda: live.current) if store is not None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await dispatcher.start()  # starts the sinks and opens the ledger the digests share
        await live.start()
        if digests is not None:
            await digests.start()
        await dispatcher.run(stop)
    finally:
        if digests is not None:
            await digests.stop()
        await live.stop()
        await dispatcher.stop()
