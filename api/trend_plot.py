"""`finpulse history trend --png` and `GET /trends/plot.png`: one entity's trend as a picture.

Top panel: the negative share per time bucket, a red triangle where an alert
fired (at its window's end and negative share). Bottom panel: stories per
bucket, the negative ones in red. Drawn with matplotlib's object API on the Agg
canvas (no pyplot state); returns PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Iterable

import pandas as pd
from matplotlib import dates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from store import STEPS, AlertsQuery, DuckDBStore, TrendQuery

WIDTH_IN, HEIGHT_IN, DPI = 11.0, 5.0, 100


def fired_alerts(db: DuckDBStore, query: TrendQuery) -> pd.DataFrame:
    """The alerts fired for the trend's entity in its range (all subscriptions)."""
    fired = AlertsQuery(
        entity_kind=query.entity_kind, entity=query.entity, state="fired", start=query.start, end=query.end
    )
    return db.frame(fired)


def plot_trend(points: pd.DataFrame, fired: pd.DataFrame, title: str, granularity: str) -> bytes:
    """PNG of a TrendQuery's rows (one entity, at least one row) and its fired alerts (AlertsQuery)."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    share, volume = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1.6])
    fig.suptitle(f"{title}: negative share per {granularity}, alerts fired, stories")
    step = STEPS[granularity]
    # Every bucket of the span, so the line breaks where a bucket has no stories.
    by_bucket = points.set_index("bucket_start")
    grid = pd.date_range(by_bucket.index.min(), by_bucket.index.max(), freq=step)
    full = by_bucket.reindex(grid)
    # Bars and points sit at the bucket's middle.
    width = step.total_seconds() / 86_400
    middle = [d + width / 2 for d in _days(grid)]
    share.plot(middle, full["negative_share"], marker=".", lw=1.2, label="negative share")
    if not fired.empty:
        share.plot(
            _days(fired["window_end"]), fired["negative_share"], ls="none", marker="^", ms=9,
            color="tab:red", label="alert fired", zorder=3,
        )  # fmt: skip
    share.set_ylim(-0.02, 1.02)
    share.yaxis.set_major_formatter(PercentFormatter(1.0))
    share.set_ylabel("negative share")
    share.grid(alpha=0.3)
    share.legend(loc="upper left", fontsize="small")
    volume.bar(middle, full["count"].fillna(0), width=width * 0.9, color="0.7", label="stories")
    bad = full["negative_count"].fillna(0)
    volume.bar(middle, bad, width=width * 0.9, color="tab:red", label="negative")
    volume.set_ylabel("stories")
    volume.set_xlabel("time (UTC)")
    volume.legend(loc="upper left", fontsize="small")
    volume.xaxis_date()
    fig.autofmt_xdate()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _days(times: Iterable[pd.Timestamp]) -> list[float]:
    """Matplotlib's date numbers for a column of UTC timestamps."""
    return [float(d) for d in dates.date2num([t.to_pydatetime() for t in times])]  # type: ignore[no-untyped-call]
