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
import itertools
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from matplotlib import dates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from finpulse.schema import EntityKind, WindowAggregate, normalise_entity

from .backtest import Labels, SettingResult, in_focus

# Figure geometry (inches): the trend panel, plus this much per setting row, uncapped: a row's
# "small" label is 8.3 pt (0.12 in) tall, so 0.22 in keeps a gap between any two (a cap made 25+
# settings' labels overlap); the grid's 200 settings at most make a 47 in (4,700 px) figure.
WIDTH_IN, TREND_IN, ROW_IN = 11.0, 3.2, 0.22
DPI = 100
# How the alert rows mark the window an alert fired in, and the one it resolved in.
FIRED: dict[str, Any] = {"marker": "v", "ms": 8, "color": "tab:red"}
RESOLVED: dict[str, Any] = {"marker": "|", "ms": 10, "color": "tab:green"}


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
        (w for w in windows if in_focus(entity, w.entity_kind, w.entity)),
        key=lambda w: (w.window_kind, w.window_end),
    )
    rows = max(1, len(results))
    rows_in = ROW_IN * rows + 0.6  # + the axis' margins
    fig = Figure(figsize=(WIDTH_IN, TREND_IN + rows_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    trend, alerts = fig.subplots(2, 1, sharex=True, height_ratios=[TREND_IN, rows_in])
    fig.suptitle(f"{kind} {name}: negative share and alerts per setting")
    for window_kind in sorted({w.window_kind for w in series}):
        part = [w for w in series if w.window_kind == window_kind]
        trend.plot(
            *_broken([w.window_end for w in part], [w.negative_share for w in part]),
            marker=".",
            lw=1.2,
            label=f"negative share ({window_kind})",
        )
        based = [
            (w.window_end, w.baseline_negative_share) for w in part if w.baseline_negative_share is not None
        ]
        if based:
            trend.plot(
                *_broken([end for end, _ in based], [share for _, share in based]),
                ls="--",
                lw=1.2,
                label=f"baseline ({window_kind})",
            )
    lo = min((w.window_start for w in series), default=None)
    hi = max((w.window_end for w in series), default=None)
    for label in labels.where(lambda e: e.about(kind, name)).events if labels else ():
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


def _broken(ends: Sequence[datetime], values: Sequence[float]) -> tuple[list[float], list[float]]:
    """Points to plot, in matplotlib's dates, with a break (NaN) at the end of the first window
    missing after each run: a window without stories has no negative share, and a line across
    the gap would draw one. Windows follow each other at the shortest step between two of them."""
    step = min((b - a for a, b in itertools.pairwise(ends) if b > a), default=None)
    times, shares = list(ends[:1]), list(values[:1])
    for i in range(1, len(ends)):
        if step is not None and ends[i] - ends[i - 1] > step * 1.5:
            times.append(ends[i - 1] + step)
            shares.append(math.nan)
        times.append(ends[i])
        shares.append(values[i])
    return _days(times), shares


def _days(times: Sequence[datetime]) -> list[float]:
    """Matplotlib's date numbers (days since its epoch) for aware datetimes."""
    return [float(d) for d in dates.date2num(list(times))]  # type: ignore[no-untyped-call]


def _alert_rows(
    ax: Axes, results: Sequence[SettingResult], kind: EntityKind, name: str, recommended: str | None
) -> None:
    for row, result in enumerate(results):
        mine = [e for e in result.events if in_focus((kind, name), e.entity_kind, e.entity)]
        fired = [e.window_end for e in mine if e.state == "fired"]
        resolved = [e.window_end for e in mine if e.state == "resolved"]
        for times, marker in ((fired, FIRED), (resolved, RESOLVED)):
            if times:
                ax.plot(_days(times), [row] * len(times), ls="none", zorder=3, **marker)
    if results:
        keys = [
            Line2D([], [], ls="none", label=label, **m)
            for label, m in (("fired", FIRED), ("resolved", RESOLVED))
        ]
        ax.legend(handles=keys, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", title="alerts")
    names = [f"{'* ' if r.setting.name == recommended else ''}{r.setting.name}" for r in results]
    ax.set_yticks(range(len(results)), names, fontsize="small")
    for label, result in zip(ax.get_yticklabels(), results, strict=True):  # to find among many rows
        label.set_fontweight("bold" if result.setting.name == recommended else "normal")
    ax.set_ylim(-0.7, max(0, len(results) - 1) + 0.7)
    ax.invert_yaxis()
    ax.set_xlabel("window end (UTC)")
    ax.grid(axis="x", alpha=0.3)
