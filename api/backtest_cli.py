"""`finpulse backtest`: replay history with a grid of detector parameters and recommend one.

Imports only typer, rich and the standard library at module level; the
backtest, the store and the model load when the command runs.

    finpulse backtest --entity ticker:ACME --since 2026-03-01 \\
        --grid "min_rise=0.1,0.15,0.2 significance=0.01,0.001" --max-alerts-per-day 2 --out report/
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from api.history_cli import fail
from finpulse.tables import compact_table
from finpulse.terminal import labelled
from finpulse.wording import counted

if TYPE_CHECKING:
    from alerts.backtest import BacktestReport, Labels
    from api.backtest import BacktestOutcome, BacktestRequest
    from finpulse.schema import ScoredItem
    from finpulse.settings import Settings
    from store import HistoryStore

console = Console()


def register(app: typer.Typer) -> None:
    """Add `finpulse backtest` and `finpulse feedback export` to the root CLI."""
    from api import feedback_cli

    app.command("backtest")(backtest)
    feedback_cli.register(app)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )  # fmt: skip


def backtest(
    from_store: Annotated[
        bool, typer.Option("--from-store", help="Replay the history store (default).")
    ] = False,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Replay file (JSONL/CSV, ingest format), classified here.")
    ] = None,
    entity: Annotated[str | None, typer.Option(help="KIND:NAME, e.g. ticker:ACME or topic:Earnings.")] = None,
    subscription: Annotated[
        str | None, typer.Option(help="Replay this live subscription (filter, mutes, cooldown, parameters).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Start, ISO 8601 (default: until - 7 days).")] = None,
    until: Annotated[str | None, typer.Option(help="End, exclusive, ISO 8601 (default: now).")] = None,
    grid: Annotated[
        str | None,
        typer.Option(help='Parameters to try: "min_rise=0.1,0.15 significance=0.01,0.001" or a TOML file.'),
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option(
            help="Labelled events, JSON or CSV (entity_kind, entity, start, end[, verdict tp|fp]); "
            "default: feedback."
        ),
    ] = None,
    max_alerts_per_day: Annotated[
        float | None, typer.Option(help="Target rate (> 0): recommend the best recall within it.")
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild", help="Rebuild windows from stored scored items with the current window settings."
        ),
    ] = False,
    out: Annotated[Path, typer.Option(help="Directory for report.json, report.md and trend.png.")] = Path(
        "backtest-report"
    ),
    apply: Annotated[
        bool,
        typer.Option(
            "--apply", help="Put the recommended setting live: write it into --subscription's live copy."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="--apply even with no labelled real event in the range.")
    ] = False,
) -> None:
    """Replay history through the live detector with a grid of parameters; report and recommend."""
    from pydantic import ValidationError

    from alerts.backtest import BacktestError
    from api.backtest import BacktestRequest, grid_from_option, read_labels_file
    from finpulse.cli import parse_range
    from finpulse.cli import settings as load_settings
    from finpulse.errors import FinpulseError
    from finpulse.logs import quiet_store
    from finpulse.schema import describe_validation_error

    quiet_store("api.backtest")  # its summary line repeats the printed report
    if from_store and replay is not None:
        raise typer.BadParameter("give --from-store or --replay FILE, not both", param_hint="--replay")
    if rebuild and replay is not None:
        raise typer.BadParameter("--rebuild applies to --from-store only", param_hint="--rebuild")
    if apply and subscription is None:
        raise typer.BadParameter(
            "--apply changes a live subscription: give --subscription ID", param_hint="--apply"
        )
    start, end = parse_range(since, until)
    try:
        request = BacktestRequest(
            entity=entity,
            subscription_id=subscription,
            start=start,
            end=end,
            grid=grid_from_option(grid),
            max_alerts_per_day=max_alerts_per_day,
            rebuild=rebuild,
        )
        s = load_settings()
        file_labels = read_labels_file(labels) if labels is not None else None
        outcome = _run(request, s, replay, file_labels)
        paths = write_report(outcome, out)
    except ValidationError as exc:
        fail(f"invalid options: {describe_validation_error(exc)}")
    except (BacktestError, FinpulseError) as exc:
        fail(exc)
    print_report(outcome.report)
    console.print(f"report: {paths['markdown']}  {paths['json']}  {paths['png']}")
    if request.subscription_id is None:
        _watching(request, s)
    if apply:
        _apply(outcome.report, request, s, force=force)


def _watching(request: BacktestRequest, s: Settings) -> None:
    """An entity's replay ran the default detector: name the subscriptions (file) watching it."""
    from alerts.subscriptions import load_subscriptions
    from api.backtest import parse_entity
    from finpulse.errors import ConfigError

    kind, name = parse_entity(str(request.entity))
    try:
        subs = load_subscriptions(s.alerts.subscriptions_file)
    except ConfigError:
        return  # no file, or an invalid one: `finpulse alerts check` says why
    watching = [sub.id for sub in subs if sub.enabled and sub.filter.matches(kind, name)]
    if watching:
        console.print(
            f"subscriptions watching {kind} {name} in {s.alerts.subscriptions_file}: {', '.join(watching)}; "
            "`--subscription ID` replays one with its own detector, mutes and cooldown"
        )


def _apply(report: BacktestReport, request: BacktestRequest, s: Settings, *, force: bool) -> None:
    """--apply: the recommended setting into the live subscription, and what changed."""
    import json

    from api.backtest import apply_recommended
    from finpulse.errors import FinpulseError
    from store import open_store

    sid = request.subscription_id
    try:
        with open_store(s.store) as db:
            changed = apply_recommended(report, request, s, db, force=force)
    except FinpulseError as exc:
        fail(exc)
    if not changed:
        console.print(f"subscription {sid!r} already uses the recommended setting; nothing changed")
        return
    steps = ", ".join(f"{name} {old} -> {new}" for name, (old, new) in changed.items())
    console.print(
        f"[green]applied[/green] to subscription {sid!r}: {steps}; the worker and the dispatcher "
        f"use it within {s.alerts.subscriptions_refresh_s:g} s"
    )
    # The file seeds the store again whenever it changes: the same lines there keep the setting.
    lines = "\n".join(
        f"{name} = {json.dumps(new)}" if new is not None else f"# {name}: remove the line (the default)"
        for name, (_old, new) in changed.items()
    )
    console.print(
        f"to keep it when {s.alerts.subscriptions_file} next changes, set there under id = {sid!r}:\n"
        f"[subscription.detector]\n{lines}",
        markup=False,
        highlight=False,
    )


def _run(
    request: BacktestRequest, s: Settings, replay: Path | None, labels: Labels | None
) -> BacktestOutcome:
    from api.backtest import run_from_items, run_from_store
    from finpulse.schema import utcnow
    from store import open_store

    now = utcnow()
    with _progress() as bars:
        grid_task = bars.add_task("replaying settings", total=None)

        def on_setting(done: int, total: int) -> None:
            bars.update(grid_task, completed=done, total=total)

        if replay is None:
            with open_store(s.store, read_only=True) as db:
                return run_from_store(request, s, db, now=now, labels=labels, progress=on_setting)
        items = _score_replay(replay, s, bars)
        store = _optional_store(s) if labels is None and request.labels_from_feedback else None
        try:
            return run_from_items(request, s, items, now=now, labels=labels, store=store, progress=on_setting)
        finally:
            if store is not None:
                store.stop()


def _optional_store(s: Settings) -> HistoryStore | None:
    """The store for feedback labels, if there is one (a replay needs none)."""
    from store import StoreError, StoreUnavailable, open_store

    db = open_store(s.store, read_only=True)
    try:
        db.start()
    except (StoreError, StoreUnavailable):
        return None
    return db


def _score_replay(path: Path, s: Settings, bars: Progress) -> list[ScoredItem]:
    from api.backtest import read_replay_items, score_items
    from ingest.companies import CompanyNames
    from model.engine import Classifier

    items = read_replay_items(path, CompanyNames.load(s.ingest.companies_file))
    # As the worker: stories in languages the model does not read are not scored.
    readable = [item for item in items if s.model.reads(item.language)]
    if len(readable) < len(items):
        bars.console.print(
            f"{len(items) - len(readable)} of {len(items)} stories skipped: their language is not one "
            f"the model reads ({', '.join(s.model.languages)}); the worker dead-letters such stories"
        )
    items = readable
    classifier = Classifier.from_settings(s.model)
    task = bars.add_task(f"classifying {path.name}", total=len(items))
    return score_items(
        items,
        classifier,
        batch=s.model.max_batch,
        progress=lambda done, _total: bars.update(task, completed=done),
    )


# -- output -----------------------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def summary_rows(report: BacktestReport) -> list[dict[str, str]]:
    """One flat row per setting: what the table and report.md show."""
    rows = []
    for r in report.results:
        delay = None if r.median_delay_s is None else r.median_delay_s / 60
        rows.append(
            {
                "setting": ("* " if r.setting.name == report.recommended else "") + r.setting.name,
                "fired": str(r.alerts_fired),
                "alerts/day": _fmt(r.alerts_per_day),
                "tp": str(r.true_positives),
                "fp": str(r.false_positives),
                "unlabelled": str(r.unlabelled),
                "precision": _fmt(r.precision),
                "recall": _fmt(r.recall),
                "median delay (min)": _fmt(delay, ".1f"),
            }
        )
    return rows


def _header(report: BacktestReport) -> list[str]:
    from alerts.backtest import ADHOC_SUBSCRIPTION, held

    tp = sum(e.verdict == "tp" for e in report.labels.events)
    fp = sum(e.verdict == "fp" for e in report.labels.events)
    kind = "complete list" if report.labels.complete else "analyst feedback: unlabelled alerts not scored"
    focus = f", {report.focus[0]} `{report.focus[1]}`" if report.focus else ""
    limit = report.max_alerts_per_day
    target = f"at most {limit:g} alerts/day" if limit is not None else "none (--max-alerts-per-day)"
    adhoc = report.subscription_id == ADHOC_SUBSCRIPTION
    title = focus.removeprefix(", ") if adhoc and focus else f"subscription `{report.subscription_id}`{focus}"
    whose = "the defaults: `--subscription ID` replays a live one's" if adhoc else "the subscription's"
    return [
        f"# Backtest: {title}",
        "",
        f"- range: {report.start:%Y-%m-%d %H:%M} .. {report.end:%Y-%m-%d %H:%M} UTC "
        f"({held(report.days)} of history, {counted(report.windows, 'window')})",
        *_asked_line(report.asked),
        f"- current detector ({whose}): {report.base.summary()}; the grid's values override it",
        f"- labels: {counted(tp, 'event')}, {counted(fp, 'false alarm')} ({kind})",
        *[f"- note: {note}" for note in report.notes],
        *([f"- live check: {report.live.summary}"] if report.live is not None else []),
        *([f"- left out (the detector refuses them): {'; '.join(report.skipped)}"] if report.skipped else []),
        f"- target: {target}",
        f"- **recommended**: {report.recommendation}",
    ]


def _asked_line(asked: dict[str, Any]) -> list[str]:
    """`- asked: 2026-03-01 00:00 .. 2026-03-08 00:00 UTC of stored windows` (none before the
    report kept what was asked)."""
    if not asked:
        return []
    start, end = (asked.get(k) for k in ("start", "end"))
    span = "the whole replay"
    if start or end:
        span = " .. ".join(f"{datetime.fromisoformat(t):%Y-%m-%d %H:%M}" if t else "…" for t in (start, end))
        span += " UTC"
    return [f"- asked: {span} of {asked.get('history', 'history')}"]


def render_markdown(report: BacktestReport) -> str:
    """The report as Markdown: range, labels, a table of settings, the recommendation."""
    from finpulse.markdown import table

    rows = summary_rows(report)
    header = list(rows[0]) if rows else []
    lines = [
        *_header(report),
        "",
        *table(header, (list(row.values()) for row in rows)),
        "",
        "`*` marks the recommended setting; delay = first fired window end - labelled event start "
        "(not measured with analysts' verdicts as labels: each starts at its own alert).",
        "![trend](trend.png)",
    ]
    return "\n".join(lines) + "\n"


def write_report(outcome: BacktestOutcome, out: Path) -> dict[str, Path]:
    """Write report.json, report.md and trend.png into `out` (created); returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "report.json", "markdown": out / "report.md", "png": out / "trend.png"}
    paths["json"].write_text(outcome.report.model_dump_json(indent=2), encoding="utf-8")
    paths["markdown"].write_text(render_markdown(outcome.report), encoding="utf-8")
    paths["png"].write_bytes(outcome.png())
    return paths


# Short console headers for the report.md columns, so the setting names get the width.
SHORT = {
    "alerts/day": "/day",
    "unlabelled": "unlab.",
    "precision": "prec.",
    "median delay (min)": "delay min",
}


def print_report(report: BacktestReport) -> None:
    """The settings table and the recommendation, on the console."""
    heading, _, *lines, _ = (line.replace("`", "") for line in _header(report))
    for line in lines:
        console.print(line)
    # Borderless, as the history tables: at 80 columns the settings then read whole.
    rows = summary_rows(report)
    headers = [SHORT.get(column, column) for column in (rows[0] if rows else ())]
    numbers = [h for h in headers if h != "setting"]
    table = compact_table(heading.removeprefix("# "), headers, right=numbers, wraps=("setting",))
    for row in rows:
        table.add_row(*row.values(), style="bold green" if row["setting"].startswith("* ") else None)
    console.print(table)
    colour = "green" if report.recommended else "yellow"
    console.print(labelled("recommended:", report.recommendation, style=colour))
