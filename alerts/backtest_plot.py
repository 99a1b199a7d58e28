"""The backtest's picture: one entity's negative share, its baseline, and each setting's alerts.

Top panel: the negative share of every window (line) and the baseline the
detector compared it with (dashed), labelled events shaded (green: tp, grey:
fp). Bottom panel: one row per setting, a red triangle at the end of every
window that fired an alert for the entity (a green tick where it resolved).
Drawn with matplotlib's object API on the Agg canvas (no pyplot state, safe in
threads); returns PNG bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime

from matplotlib import dates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from finpulse.schema import EntityKind, WindowAggregate, normalise_entity

from .backtest import Labels, SettingResult

# Figure geometry (inches): the trend panel, plus this much per setting row, capped.
WIDTH_IN, TREND_IN, ROW_IN, MAX_ROWS_IN = 11.0, 3.2, 0.32, 9.0
DPI = 100


def plot_backtest(
    windows: Sequence[WindowAggregate],
    results: Sequence[SettingResult],
    entity: tuple[EntityKind, str],
    *,
    labels: Labels | None = None,
    recommended: str | None = None,
) -> bytes:
    """PNG of `entity`'s trend with every setting's alert markers."""
    kind, name = entity[0], normalise_entity(*entity)
    series = sorted(
        (w for w in windows if w.entity_kind == kind and normalise_entity(kind, w.entity) == name),
        key=lambda w: (w.window_kind, w.window_end),
    )
    rows = max(1, len(results))
    rows_in = min(MAX_ROWS_IN, ROW_IN * rows + 0.6)
    fig = Figure(figsize=(WIDTH_IN, TREND_IN + rows_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    trend, alerts = fig.subplots(2, 1, sharex=True, height_ratios=[TREND_IN, rows_in])
    fig.suptitle(f"{kind} {name}: negative share and alerts per setting")
    for window_kind in sorted({w.window_kind for w in series}):
        part = [w for w in series if w.window_kind == window_kind]
        ends = _days([w.window_end for w in part])
        trend.plot(
            ends,
            [w.negative_share for w in part],
            marker=".",
            lw=1.2,
            label=f"negative share ({window_kind})",
        )
        based = [w for w in part if w.baseline_negative_share is not None]
        if based:
            trend.plot(
                _days([w.window_end for w in based]),
                [w.baseline_negative_share for w in based],
                ls="--",
                lw=1.2,
                label=f"baseline ({window_kind})",
            )
    lo = min((w.window_start for w in series), default=None)
    hi = max((w.window_end for w in series), default=None)
    for label in labels.of(kind, name).events if labels else ():
        start, end = max(label.start, lo or label.start), min(label.end, hi or label.end)
        colour = "tab:green" if label.verdict == "tp" else "0.6"
        for ax in (trend, alerts):
            if start < end:  # clipped to the windows: a label spanning years must not stretch the axis
                ax.axvspan(*_days([start, end]), color=colour, alpha=0.18, lw=0)
    trend.xaxis_date()
    alerts.xaxis_date()
    if lo is not None and hi is not None:
        trend.set_xlim(*_days([lo, hi]))
    trend.set_ylim(-0.02, 1.02)
    trend.set_ylabel("negative share")
    trend.grid(alpha=0.3)
    if series:
        trend.legend(loc="upper left", fontsize="small")
    else:
        trend.text(
            0.5, 0.5, "no windows for this entity", ha="center", va="center", transform=trend.transAxes
        )
    _alert_rows(alerts, results, kind, name, recommended)
    fig.autofmt_xdate()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def _days(times: Sequence[datetime]) -> list[float]:
    """Matplotlib's date numbers (days since its epoch) for aware datetimes."""
    return [float(d) for d in dates.date2num(list(times))]  # type: ignore[no-untyped-call]


def _alert_rows(
    ax: Axes, results: Sequence[SettingResult], kind: str, name: str, recommended: str | None
) -> None:
    for row, result in enumerate(results):
        mine = [
            e
            for e in result.events
            if e.entity_kind == kind and normalise_entity(e.entity_kind, e.entity) == name
        ]
        fired = [e.window_end for e in mine if e.state == "fired"]
        resolved = [e.window_end for e in mine if e.state == "resolved"]
        if fired:
            ax.plot(_days(fired), [row] * len(fired), ls="none", marker="v", ms=8, color="tab:red", zorder=3)
        if resolved:
            ax.plot(
                _days(resolved),
                [row] * len(resolved),
                ls="none",
                marker="|",
                ms=10,
                color="tab:green",
                zorder=3,
            )
    names = [f"{'* ' if r.setting.name == recommended else ''}{r.setting.name}" for r in results]
    ax.set_yticks(range(len(results)), names, fontsize="small")
    ax.set_ylim(-0.7, max(0, len(results) - 1) + 0.7)
    ax.invert_yaxis()
    ax.set_xlabel("window end (UTC)")
    ax.grid(axis="x", alpha=0.3)
