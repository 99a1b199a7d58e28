"""`finpulse history`: the history store's trends, entities, movers, headlines and alerts in the terminal.

    finpulse history trend ticker:ACME --since 2026-03-01 --granularity hour --png acme.png
    finpulse history compare ticker:AAPL ticker:MSFT
    finpulse history entities --kind ticker          (these four in api/history_lists.py)
    finpulse history movers --kind ticker
    finpulse history headlines --entity ticker:ACME
    finpulse history alerts --state fired

Each command runs one of the store's queries (store/queries.py, the ones the
API and `finpulse.history` run) on the file opened read-only, so the worker
goes on writing, and prints a table; `--out FILE` writes every row of the
range as CSV, Parquet or JSON (by the file's suffix). Times are UTC; the range
is [--since, --until) and defaults to the last 7 days, as in the API.

Imports only typer, rich, the standard library and finpulse.{tables,terminal,wording} at module level.
"""

from __future__ import annotations

import difflib
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from finpulse.errors import ERROR_EXIT, FinpulseError, exit_status
from finpulse.tables import compact_table
from finpulse.terminal import labelled, untrusted
from finpulse.wording import counted, range_text

if TYPE_CHECKING:
    import pandas as pd

    from store import HistoryStore, Query, TrendQuery

from api.auto_buckets import AUTO, trend_frames
from api.text_charts import (
    EMPTY,
    MAX_BUCKETS,
    TooManyBuckets,
    bucket_count,
    bucket_series,
    check_buckets,
    share_bar,
    spark_note,
    spark_start,
    sparkline,
)

console = Console()
history_app = typer.Typer(
    help="Query the history store: trends, busiest entities, movers, headlines, alerts.", no_args_is_help=True
)

MAX_COMPARED = 6
FORMATS = {".csv": "csv", ".parquet": "parquet", ".json": "json"}

Since = Annotated[str | None, typer.Option(help="Start, ISO 8601 UTC (default: until - 7 days).")]
Until = Annotated[str | None, typer.Option(help="End, exclusive, ISO 8601 UTC (default: now).")]


def _out_checked(path: Path | None) -> Path | None:
    """--out's suffix checked when the command line is read, before any query runs."""
    if path is not None:
        output_format(path)
    return path


Out = Annotated[
    Path | None,
    typer.Option(
        help="Also write every row of the range to FILE (.csv, .parquet or .json).", callback=_out_checked
    ),
]
Limit = Annotated[int, typer.Option(min=1, max=10_000, help="Rows to show.")]
Search = Annotated[
    str | None,
    typer.Option(
        "--search", "-q", help='Only the stories whose title holds each word, any case: "rate cut".'
    ),
]


Granularity = Annotated[
    str,
    typer.Option(
        help="Bucket size: 5min, hour, day, or auto: 5min when the range's stories span a day or less, "
        "hours up to a month, days beyond."
    ),
]


def concrete(granularity: str) -> str:
    """A granularity a query takes: `auto` stands in as hours until trend_frames picks."""
    return "hour" if granularity == AUTO else granularity


def register(app: typer.Typer) -> None:
    """Add the `history` command group (this module's commands and history_lists') to the root CLI."""
    from api import history_lists  # noqa: F401 - its commands join history_app

    app.add_typer(history_app, name="history")


def output_format(path: Path) -> str:
    """csv / parquet / json from the file's suffix; BadParameter otherwise."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise typer.BadParameter(
            f"{path.name}: write .csv, .parquet or .json (by the file's suffix)", param_hint="--out"
        )
    return fmt


# ---- running a query ------------------------------------------------------------------------


def fail(reason: str | FinpulseError) -> NoReturn:
    """Say why in one line and exit: 2 for a usage error, a FinpulseError's own status (1 where
    trying again may work: the store not answering)."""
    console.print(labelled("error:", reason))
    raise typer.Exit(exit_status(reason) if isinstance(reason, FinpulseError) else ERROR_EXIT)


@contextmanager
def opened() -> Iterator[HistoryStore]:
    """The configured store, read-only; a missing or locked file is a clear error (exit 2)."""
    from finpulse.cli import settings as load_settings
    from finpulse.errors import FinpulseError
    from finpulse.logs import quiet_store
    from store import open_store

    settings = load_settings()
    quiet_store()
    try:
        with open_store(settings.store, read_only=True) as db:
            db.require_current()
            yield db
    except FinpulseError as exc:
        fail(exc)


def make_query(query_type: type[Query], since: str | None, until: str | None, **filters: Any) -> Query:
    """A validated query; a bad range or value is a clear error naming it (exit 2)."""
    from pydantic import ValidationError

    from finpulse.cli import parse_range
    from finpulse.schema import describe_validation_error

    start, end = parse_range(since, until)
    values = {"start": start, "end": end, **filters}
    try:
        return query_type.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        from api.deps import query_field

        # A check of the whole query names its field as the API's 422 places it ("search needs a word").
        named = next((query_field(e["msg"]) for e in exc.errors() if not e["loc"]), None)
        fail(describe_validation_error(exc, limit=exc.error_count(), where=partial(_option, named=named)))


# The command-line options of the query fields that differ in name.
OPTIONS = {
    "entity_kind": "--kind", "subscription_id": "--subscription", "min_stories": "--min-stories",
    "alert_id": "--id", "start": "--since", "end": "--until", "search": "--search / -q",
}  # fmt: skip


def _option(loc: tuple[Any, ...], named: str | None = None) -> str:
    """The option a query field's error is about: `--kind` for entity_kind; for a check of the
    whole query, the field its message names (`named`), else `range`."""
    field = ".".join(map(str, loc)) or named
    return OPTIONS.get(field, f"--{field.replace('_', '-')}") if field else "range"


def spark_span(
    start: datetime | None,
    end: datetime | None,
    bucket_starts: pd.Series,
    since: str | None,
    granularity: str,
) -> tuple[datetime, datetime]:
    """The [start, end) of a range's sparklines: from --since when its buckets fit, else from the
    first story (text_charts.spark_start); to the range's end, or where those are more than
    MAX_BUCKETS, to the last story's bucket. Stories over more buckets than that are a clear error
    naming a coarser --granularity (exit 2), by the rule /trends/plot.png answers 422 by."""
    from store import STEPS

    assert start is not None  # both set by the query's validator
    assert end is not None
    spark_from = spark_start(start, end, bucket_starts, since is not None, granularity)
    try:
        if bucket_starts.empty:  # nothing to draw: the range's own buckets
            check_buckets(spark_from, end, granularity, "--granularity")
        elif bucket_count(spark_from, end, granularity) > MAX_BUCKETS:
            from api.trend_plot import drawn_span  # matplotlib, which only a chart needs

            end = (
                drawn_span(bucket_starts, granularity, "--granularity")[1].to_pydatetime()
                + STEPS[granularity]
            )
    except TooManyBuckets as exc:
        fail(exc)
    return spark_from, end


def entity_arg(text: str | None) -> tuple[str | None, str | None]:
    from api.backtest import parse_entity
    from finpulse.errors import FinpulseError

    if text is None:
        return None, None
    try:
        return parse_entity(text)
    except FinpulseError as exc:
        fail(exc)


def fetch(query: Query, out: Path | None) -> pd.DataFrame:
    """A page of the query's rows (its limit); every row also goes to `out`."""
    with opened() as db:
        rows = db.frame(query, paged=True)
        write_rows(db, query, out)
    return rows


def write_rows(
    db: HistoryStore,
    query: Query,
    out: Path | None,
    frame: pd.DataFrame | None = None,
    types: dict[str, str] | None = None,
) -> None:
    """Every row of the query (not only the rows shown) to `out`; `frame`: those rows as the
    command read them, with columns of its own, of DuckDB's `types` (store.exports.write_frame)."""
    from store.exports import write_frame

    if out is None:
        return
    fmt = output_format(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        out.write_bytes(_json_rows(db.frame(query) if frame is None else frame))
    elif frame is None:
        db.export(query, out, "parquet" if fmt == "parquet" else "csv")
    else:
        write_frame(frame, out, "parquet" if fmt == "parquet" else "csv", types)
    console.print(untrusted(f"wrote {out}"))


def _json_rows(frame: pd.DataFrame) -> bytes:
    """Rows as the API's JSON writes them: each float to its last digit (pandas' to_json keeps
    10, and 15 at most), times ISO 8601 UTC to the microsecond, a missing value null."""
    import pydantic_core

    records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    # fallback: a list column's cells (numpy arrays)
    return pydantic_core.to_json(records, indent=1, fallback=lambda value: value.tolist())


# The narrowest a name column gets on a narrow terminal before it takes more lines.
NAME_LEAST = 12


def score_text(value: float) -> str:
    """Signed, two decimals; a mean of -1e-17 is +0.00, not -0.00."""
    return f"{round(value, 2) + 0.0:+.2f}"


def when_text(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}"


def _suggest(db: HistoryStore, kind: str, name: str, since: str | None, until: str | None) -> None:
    """Nothing for `name`: say which names of that kind have stories (case is significant)."""
    from store import EntitiesQuery

    known = db.frame(make_query(EntitiesQuery, since, until, entity_kind=kind, limit=10_000), paged=True)
    names = [str(n) for n in known["entity"]]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    close += [n for n in names if n.casefold() == name.casefold() and n not in close]
    if close:
        console.print(untrusted(f"did you mean: {', '.join(f'{kind}:{n}' for n in close)}?"))
    elif names:
        console.print(
            untrusted(f"busiest {kind}s in the range: {', '.join(names[:5])} (finpulse history entities)")
        )


# ---- commands -------------------------------------------------------------------------------


@history_app.command("trend")
def trend(
    entity: Annotated[
        str, typer.Argument(help="KIND:NAME, e.g. ticker:ACME, topic:Earnings, source:reuters.")
    ],
    since: Since = None,
    until: Until = None,
    granularity: Granularity = AUTO,
    rows: Annotated[int, typer.Option(min=1, help="Newest buckets with stories or alerts to show.")] = 24,
    search: Search = None,
    out: Out = None,
    png: Annotated[Path | None, typer.Option(help="Draw the trend and its alerts to this PNG.")] = None,
) -> None:
    """One entity's negative share, volume and mean score per time bucket, with the alerts fired."""
    from api.trend_plot import fired_alerts
    from store import TrendQuery

    kind, name = entity_arg(entity)
    query = make_query(
        TrendQuery,
        since,
        until,
        entity_kind=kind,
        entity=name,
        granularity=concrete(granularity),
        search=search,
    )
    assert isinstance(query, TrendQuery)
    with opened() as db:
        [(query, points)] = trend_frames(db, [query], granularity)
        granularity = query.granularity
        fired = fired_alerts(db, query)
        alerted = with_alerts(points, alert_marks(fired, granularity), query)
        write_rows(db, query, out, alerted, TREND_TYPES)
        if points.empty:
            console.print(untrusted(f"no stories for {kind} {query.entity!r} in {range_text(query)}"))
            unsearched = db.frame(query.model_copy(update={"search": None})) if search else None
            if unsearched is not None and not unsearched.empty:  # the search emptied it, not the name
                total = counted(int(unsearched["count"].sum()), "story")
                console.print(untrusted(f"{kind} {query.entity} has {total} in the range without the search"))
            else:
                _suggest(db, kind, str(query.entity), since, until)
            raise typer.Exit(1)
    spark_from, end = spark_span(query.start, query.end, points["bucket_start"], since, granularity)
    counts, negatives = bucket_series(points, spark_from, end, granularity)
    total, negative = sum(counts), sum(negatives)
    console.print(
        untrusted(f"{kind} {query.entity}", style="bold"),
        untrusted(
            f"{granularity} buckets, {range_text(query)}: {counted(total, 'story')}, "
            f"{negative / total:.0%} negative, {counted(len(fired), 'alert')} fired"
        ),
        sep=", ",
    )
    over = since is not None and spark_from == query.start
    reach = (
        "over the range" if over else "from the first story" + ("" if end == query.end else " to the last")
    )
    console.print(f"negative share {reach} ({EMPTY}: no stories):")
    console.print(f"  {spark_from:%m-%d %H:%M} {sparkline(counts, negatives)} {end:%m-%d %H:%M}")
    console.print(_trend_table(alerted.tail(rows), granularity, len(alerted)))
    if png is not None:
        from api.trend_plot import plot_trend

        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(plot_trend(points, fired, f"{kind} {query.entity}", granularity))
        console.print(untrusted(f"wrote {png}"))


def buckets_shown(shown: int, of: int, which: str = "buckets with stories") -> str:
    """Which buckets a table lists: all of `which`, or the newest `shown`."""
    return f"newest {shown} of {of} {which}" if shown < of else which


def alert_marks(fired: pd.DataFrame, granularity: str) -> dict[datetime, Counter[str]]:
    """The alerts fired per bucket, by subscription: each in the bucket holding its window's last
    moment, where its stories end (its end opens the next)."""
    from store import bucket_start

    marks: dict[datetime, Counter[str]] = defaultdict(Counter)
    for end, subscription in zip(fired["window_end"], fired["subscription_id"], strict=True):
        last = end.to_pydatetime() - timedelta(microseconds=1)
        marks[bucket_start(last, granularity)][str(subscription)] += 1
    return marks


def _alerts_text(marks: Counter[str]) -> str:
    """`desk x2, ops`: the subscriptions whose alerts a bucket holds, most first."""
    return ", ".join(f"{name} x{n}" if n > 1 else name for name, n in marks.most_common())


# DuckDB's type of each of with_alerts' columns, as the store's export of a trend writes them: an
# empty frame's have none in pandas (Parquet's were NULL and DOUBLE).
TREND_TYPES = {
    "bucket_start": "TIMESTAMPTZ", "entity_kind": "VARCHAR", "entity": "VARCHAR", "count": "BIGINT",
    "negative_count": "BIGINT", "positive_count": "BIGINT", "negative_share": "DOUBLE",
    "mean_score": "DOUBLE", "alerts": "BIGINT", "alerted_by": "VARCHAR",
}  # fmt: skip


def with_alerts(points: pd.DataFrame, marks: dict[datetime, Counter[str]], query: TrendQuery) -> pd.DataFrame:
    """The trend's rows with the alerts each bucket holds, as its table shows them: `alerts` (how
    many fired) and `alerted_by` (`desk x2, ops`). A bucket an alert's window ends in without
    stories (a window longer than the bucket, its stories early in it) is a row of its own, count 0
    and no share or score: the rows carry every alert the header counts."""
    import pandas as pd

    quiet = sorted(set(marks) - {at.to_pydatetime() for at in points["bucket_start"]})
    if quiet:
        zero = dict.fromkeys(("count", "negative_count", "positive_count"), 0)
        added = pd.DataFrame({"bucket_start": pd.DatetimeIndex(quiet).as_unit("us"), **zero}).assign(
            entity_kind=query.entity_kind, entity=query.entity
        )
        points = pd.concat([points, added], ignore_index=True).sort_values("bucket_start", ignore_index=True)
    held = [marks.get(at.to_pydatetime(), Counter()) for at in points["bucket_start"]]
    return points.assign(alerts=[sum(m.values()) for m in held], alerted_by=[_alerts_text(m) for m in held])


def _trend_table(points: pd.DataFrame, granularity: str, of: int) -> Table:
    """with_alerts' rows; a bucket of alerts without stories shows no share or score."""
    which = "buckets with stories or alerts"
    table = compact_table(
        f"per {granularity} ({buckets_shown(len(points), of, which)}; --rows, --out for all)",
        ("bucket (UTC)", "stories", "negative", "", "mean score", "alerts"),
        right=("stories", "negative", "mean score"),
        wraps=("alerts",),  # many in one bucket: more lines, the numbers stay whole
    )
    for p in points.itertuples():
        stories = (
            f"{p.negative_count:,} {p.negative_share:4.0%}", Text(share_bar(p.negative_share), style="red"),
            score_text(p.mean_score),
        ) if p.count else ("-", "", "-")  # fmt: skip
        table.add_row(
            when_text(p.bucket_start), f"{p.count:,}", *stories,
            untrusted(f"▲ {p.alerted_by}", style="bold red") if p.alerts else "",
        )  # fmt: skip
    return table


@history_app.command("compare")
def compare(
    entities: Annotated[
        list[str], typer.Argument(help="Two to six KIND:NAME, e.g. ticker:AAPL ticker:MSFT topic:Earnings.")
    ],
    since: Since = None,
    until: Until = None,
    granularity: Granularity = AUTO,
    rows: Annotated[int, typer.Option(min=1, help="Newest buckets to show.")] = 14,
    search: Search = None,
    png: Annotated[
        Path | None, typer.Option(help="Draw their negative shares on one chart to this PNG.")
    ] = None,
) -> None:
    """Entities side by side over the same buckets.

    Stories, negative share, alerts fired and a sparkline for each, then each bucket's negative
    share (and stories) per entity."""
    from api.trend_plot import fired_alerts
    from store import TrendQuery

    if not 2 <= len(entities) <= MAX_COMPARED:
        fail(f"compare two to {MAX_COMPARED} entities (got {len(entities)})")
    parsed = [entity_arg(text) for text in dict.fromkeys(entities)]
    queries = [
        make_query(
            TrendQuery, since, until, entity_kind=kind, entity=name, granularity=concrete(granularity),
            search=search,
        )
        for kind, name in parsed
    ]  # fmt: skip
    with opened() as db:
        framed = trend_frames(db, [q for q in queries if isinstance(q, TrendQuery)], granularity)
        granularity = framed[0][0].granularity
        series = {f"{q.entity_kind}:{q.entity}": (q, points, fired_alerts(db, q)) for q, points in framed}
    first = next(iter(series.values()))[0]
    console.print(
        Text(counted(len(series), "entity"), style="bold"),
        untrusted(f"{granularity} buckets, {range_text(first)}"),
        sep=", ",
    )
    import pandas as pd

    bucket_starts = pd.concat([points["bucket_start"] for _, points, _ in series.values()])
    span = spark_span(first.start, first.end, bucket_starts, since, granularity)
    grid = _compare_tables(series, span, granularity, rows, since is not None and span[0] == first.start)
    if not grid:
        console.print(untrusted(f"no stories for any of them in {range_text(first)}"))
        raise typer.Exit(1)
    if png is not None:
        from api.trend_plot import plot_compare

        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(
            plot_compare({k: (points, fired) for k, (_, points, fired) in series.items()}, granularity)
        )
        console.print(untrusted(f"wrote {png}"))


def _compare_tables(
    series: dict[str, tuple[Any, pd.DataFrame, pd.DataFrame]],
    span: tuple[datetime, datetime],
    granularity: str,
    rows: int,
    chosen_start: bool,
) -> dict[Any, dict[str, str]]:
    """Print the summary (a row per entity, sparklines over `span`) and, when any has stories,
    the newest `rows` buckets side by side; returns bucket -> entity -> cell."""
    # Names take more lines on a narrow terminal: cut instead, they took the numbers' room too.
    summary = compact_table("", ("entity", "stories", "negative", "alerts", "negative trend"),
                            right=("stories", "negative", "alerts"), wraps=("entity",),
                            least={"entity": NAME_LEAST})  # fmt: skip
    grid: dict[Any, dict[str, str]] = {}
    for label, (_, points, fired) in series.items():
        counts, negatives = bucket_series(points, *span, granularity)
        total = sum(counts)
        share = f"{sum(negatives) / total:.0%}" if total else "-"
        summary.add_row(
            untrusted(label), f"{total:,}", share, str(len(fired)), sparkline(counts, negatives, width=32)
        )
        for p in points.itertuples():
            grid.setdefault(p.bucket_start, {})[label] = f"{p.negative_share:4.0%} ({p.count})"
    console.print(summary)
    if grid and not chosen_start:
        console.print(spark_note(span[0]), style="dim", end="\n\n")
    if grid:
        labels = list(series)
        shown = buckets_shown(min(rows, len(grid)), len(grid))
        title = f"negative share (stories) per {granularity}, {shown}"
        newest = sorted(grid)[-rows:]
        # A long name as a header folds; its cells ("33% (12)") and the times stay whole.
        least = {label: max(len(grid[at].get(label, "-")) for at in newest) for label in labels}
        table = compact_table(title, ("bucket (UTC)", *labels), right=labels, wraps=labels,
                              least={"bucket (UTC)": len("2026-12-07 07:50"), **least})  # fmt: skip
        for at in newest:
            table.add_row(when_text(at), *(grid[at].get(label, "-") for label in labels))
        console.print(table)
    return grid
