"""`finpulse feedback export`: analysts' verdicts on alerts -> sentiment training rows.

The rule: every headline in the evidence (top negative headlines) of a fired
alert an analyst marked a true positive becomes a row `text,label` with label
0 (bearish), the format of ../shared/data/sentiment/train.csv. False
positives export nothing: "this spike did not matter" says nothing about
whether each headline was bearish. Texts are deduplicated (case-insensitive)
and, by default, texts already in the training set are left out.

Imports only typer, rich and the standard library at module level.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from api.history_cli import fail

if TYPE_CHECKING:
    from store import HistoryStore

# Label id of the sentiment set (../shared/data/README.md): 0 bearish, 1 bullish, 2 neutral.
BEARISH = 0
# No --since: every verdict ever given (the store's default range would be the last week).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

console = Console()
feedback_app = typer.Typer(help="Analysts' verdicts on alerts.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `feedback` command group to the root CLI."""
    app.add_typer(feedback_app, name="feedback")


def _key(text: str) -> str:
    return " ".join(text.casefold().split())


def known_texts(path: Path) -> set[str]:
    """Normalised texts of an existing `text,label` CSV (nothing if it does not exist)."""
    if not path.is_file():
        return set()
    with path.open(newline="", encoding="utf-8") as fh:
        return {_key(row["text"]) for row in csv.DictReader(fh) if row.get("text")}


def training_rows(
    store: HistoryStore, *, start: datetime | None = None, end: datetime | None = None,
    exclude: set[str] | frozenset[str] = frozenset(),
) -> list[tuple[str, int]]:  # fmt: skip
    """(text, 0) for each headline of true-positive fired alerts whose window starts in [start, end)."""
    seen = set(exclude)
    rows: list[tuple[str, int]] = []
    for verdict in store.labelled_alerts(start or EPOCH, end):
        if verdict.verdict != "tp" or verdict.state != "fired":
            continue
        alert = store.get_alert(verdict.alert_id)
        for headline in alert.top_headlines if alert is not None else ():
            text = " ".join(headline.title.split())
            if text and _key(text) not in seen:
                seen.add(_key(text))
                rows.append((text, BEARISH))
    return rows


def write_rows(rows: list[tuple[str, int]], out: Path) -> None:
    """Write `text,label` CSV (header, minimal quoting), like the training data."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)


@feedback_app.command("export")
def export(
    out: Annotated[
        Path, typer.Option(help="CSV to write (text,label), e.g. data/feedback/sentiment/train.csv.")
    ],
    since: Annotated[
        str | None, typer.Option(help="Alerts whose window starts at or after (ISO 8601).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="... and before (ISO 8601).")] = None,
    exclude: Annotated[
        Path | None,
        typer.Option(
            exists=True,  # a mistyped path would leave nothing out, silently
            dir_okay=False,
            help="Leave out texts already in this CSV (default: the training set's sentiment/train.csv).",
        ),
    ] = None,
) -> None:
    """Export headlines of true-positive alerts as bearish (label 0) training rows."""
    from finpulse.cli import parse_range
    from finpulse.cli import settings as load_settings
    from finpulse.errors import FinpulseError
    from store import open_store

    start, end = parse_range(since, until)
    s = load_settings()
    existing = exclude or s.model.train_data_dir / "sentiment" / "train.csv"
    try:
        with open_store(s.store, read_only=True) as db:
            rows = training_rows(db, start=start, end=end, exclude=known_texts(existing))
    except FinpulseError as exc:
        fail(exc)
    except ValueError as exc:
        fail(str(exc))
    write_rows(rows, out)
    left_out = f"skipped texts already in {existing}" if existing.is_file() else f"no {existing} to leave out"
    console.print(f"feedback export: {len(rows)} bearish headlines -> {out} ({left_out})")
