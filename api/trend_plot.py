"""`finpulse history trend --png`, `GET /trends/plot.png` and an alert message's chart link
(`GET /feedback/{alert_id}/chart.png`): one entity's trend as a picture; `history compare --png`:
several entities' negative share on one axis.

Top panel: the negative share per time bucket, a red triangle where an alert
fired (on the bucket holding its window's end, at its negative share); an alert's own chart also
shades its window and draws the baseline it was tested against. Bottom panel: stories per
bucket, the negative ones in red. Drawn with matplotlib's object API on the Agg
canvas (no pyplot state); `*_figure` returns the figure, `plot_*` its PNG bytes.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Iterable

import pandas as pd
from matplotlib import dates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from alerts.links import alert_view
from api.text_charts import check_buckets
from finpulse.schema import AlertEvent
from store import STEPS, AlertsQuery, HistoryStore, TrendQuery, bucket_start

WIDTH_IN, HEIGHT_IN, DPI = 11.0, 5.0, 100
# A title line's characters: the 11-inch width holds about 120 of the suptitle's 12 points, so a
# name is cut to fit one (it cannot wrap where it has no spaces) and a title wraps beyond.
TITLE_CHARS, NAME_CHARS = 100, 48
# An alert's chart: this many buckets before its window's end (the baseline's time) and after.


def fired_alerts(db: HistoryStore, query: TrendQuery) -> pd.DataFrame:
    """The alerts fired for the trend's entity whose windows start in its range (all
    subscriptions), whenever they were sent."""
    fired = AlertsQuery(
        entity_kind=query.entity_kind, entity=query.entity, state="fired", start=query.start, end=query.end,
        timed_by="window",
    )  # fmt: skip
    return db.frame(fired)


def alert_chart(db: HistoryStore, alert: AlertEvent) -> bytes | None:
    """PNG of the alert's entity around its window, in buckets about the window's size; None
    when the store has no stories for it there (pruned)."""
    granularity, start, end = alert_view(alert)
    query = TrendQuery(
        entity_kind=alert.entity_kind, entity=alert.entity, granularity=granularity, start=start, end=end
    )
    points = db.frame(query)
    if points.empty:
        return None
    title = f"{alert.entity_kind} {alert.entity}"
    return plot_trend(points, fired_alerts(db, query), title, granularity, alert=alert)


def plot_trend(
    points: pd.DataFrame, fired: pd.DataFrame, title: str, granularity: str, alert: AlertEvent | None = None
) -> bytes:
    """PNG of trend_figure."""
    return _png(trend_figure(points, fired, title, granularity, alert))


def trend_figure(
    points: pd.DataFrame, fired: pd.DataFrame, title: str, granularity: str, alert: AlertEvent | None = None
) -> Figure:
    """A TrendQuery's rows (one entity, at least one row) and its fired alerts (AlertsQuery); `alert`:
    shade its window and draw its baseline. TooManyBuckets (text_charts) past MAX_BUCKETS."""
    full = _every_bucket(points, granularity)
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    share, volume = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.6])
    _title(fig, f"{_short(title)}: negative share per {granularity}, alerts fired, stories")
    step = STEPS[granularity]
    # Bars and points sit at the bucket's middle.
    width = step.total_seconds() / 86_400
    middle = [d + width / 2 for d in _days(full.index)]
    share.plot(middle, full["negative_share"], marker=".", lw=1.2, label="negative share")
    if not fired.empty:
        share.plot(
            _alert_days(fired, granularity), fired["negative_share"], ls="none", marker="^", ms=9,
            color="tab:red", label="alert fired", zorder=3,
        )  # fmt: skip
    if alert is not None:
        window = _days([pd.Timestamp(alert.window_start), pd.Timestamp(alert.window_end)])
        for panel, label in ((share, "alert window"), (volume, None)):
            panel.axvspan(*window, color="tab:red", alpha=0.12, lw=0, label=label)
        share.axhline(
            alert.baseline_negative_share, color="0.35", ls="--", lw=1, label="baseline (this alert)"
        )
    _share_axis(share, "negative share")
    share.legend(loc="upper left", fontsize="small")
    # Bars where there are stories only: an empty bucket's is nothing to see, and thousands of
    # them take seconds to draw.
    held = [d + width / 2 for d in _days(points["bucket_start"])]
    volume.bar(held, points["count"], width=width * 0.9, color="0.7", label="stories")
    volume.bar(held, points["negative_count"], width=width * 0.9, color="tab:red", label="negative")
    volume.set_ylabel("stories")
    volume.yaxis.set_major_locator(MaxNLocator(integer=True))  # no "0.5" stories
    volume.set_xlabel("time (UTC)")
    volume.legend(loc="upper left", fontsize="small")
    volume.xaxis_date()
    return fig


def plot_compare(series: dict[str, tuple[pd.DataFrame, pd.DataFrame]], granularity: str) -> bytes:
    """PNG of compare_figure."""
    return _png(compare_figure(series, granularity))


def compare_figure(series: dict[str, tuple[pd.DataFrame, pd.DataFrame]], granularity: str) -> Figure:
    """Several entities' negative share per bucket on one axis (label -> TrendQuery rows,
    AlertsQuery rows), a triangle in the entity's colour where an alert fired; TooManyBuckets
    (text_charts) past MAX_BUCKETS."""
    fulls = {
        label: _every_bucket(points, granularity) for label, (points, _) in series.items() if not points.empty
    }
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN * 0.8), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    _title(fig, f"negative share per {granularity}: {', '.join(map(_short, series))}")
    width = STEPS[granularity].total_seconds() / 86_400
    for label, full in fulls.items():
        fired = series[label][1]
        middle = [d + width / 2 for d in _days(full.index)]
        (line,) = ax.plot(middle, full["negative_share"], marker=".", lw=1.2, label=_short(label))
        if not fired.empty:
            ax.plot(_alert_days(fired, granularity), fired["negative_share"], ls="none", marker="^", ms=9,
                    color=line.get_color(), zorder=3)  # fmt: skip
    _share_axis(ax, "negative share (▲ alert fired)")
    ax.set_xlabel("time (UTC)")
    ax.legend(loc="best", fontsize="small")
    ax.xaxis_date()
    return fig


def _short(name: str) -> str:
    """`name`, or its start and end around "…" when longer than NAME_CHARS."""
    if len(name) <= NAME_CHARS:
        return name
    half = (NAME_CHARS - 1) // 2
    return f"{name[:half]}…{name[-half:]}"


def _title(fig: Figure, text: str) -> None:
    """The figure's title, wrapped to lines that fit its width (a longer one was cut at both sides)."""
    fig.suptitle(textwrap.fill(text, TITLE_CHARS, break_on_hyphens=False))


def _alert_days(fired: pd.DataFrame, granularity: str) -> list[float]:
    """Where alerts are drawn: the middle of the bucket holding each window's last moment (its end
    opens the next bucket), with that bucket's point and bar, as the CLI's table and the dashboard
    place them."""
    step = STEPS[granularity]
    held = [
        pd.Timestamp(bucket_start(end - pd.Timedelta(1, "us"), granularity)) for end in fired["window_end"]
    ]
    return [d + step.total_seconds() / 86_400 / 2 for d in _days(held)]


def _share_axis(ax: Axes, label: str) -> None:
    ax.set_ylim(-0.02, 1.02)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)


def _png(fig: Figure) -> bytes:
    fig.autofmt_xdate()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def drawn_span(
    bucket_starts: pd.Series, granularity: str, option: str = "granularity"
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last buckets with stories (at least one): the span a chart draws.
    TooManyBuckets (text_charts) when that is more than MAX_BUCKETS, naming a coarser `option`: the
    one rule for /trends/plot.png's 422 and `finpulse history`'s exit 2."""
    first, last = bucket_starts.min(), bucket_starts.max()
    check_buckets(first.to_pydatetime(), last.to_pydatetime() + STEPS[granularity], granularity, option)
    return first, last


def _every_bucket(points: pd.DataFrame, granularity: str) -> pd.DataFrame:
    """TrendQuery rows indexed by every bucket of their span, NaN where a bucket has no stories,
    so a line breaks there instead of joining its neighbours; TooManyBuckets as drawn_span's."""
    first, last = drawn_span(points["bucket_start"], granularity)
    return points.set_index("bucket_start").reindex(pd.date_range(first, last, freq=STEPS[granularity]))


def _days(times: Iterable[pd.Timestamp]) -> list[float]:
    """Matplotlib's date numbers for a column of UTC timestamps."""
    return [float(d) for d in dates.date2num([t.to_pydatetime() for t in times])]  # type: ignore[no-untyped-call]
