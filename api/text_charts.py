"""Charts made of characters for the terminal: a share as a bar, a series of shares as a
sparkline, and a trend's rows laid on a gap-free bucket grid for them (`finpulse history`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

# Sparkline cells from no negative stories to all negative; EMPTY: no stories at all.
BLOCKS = "▁▂▃▄▅▆▇█"
EMPTY = "·"
EIGHTHS = "▏▎▍▌▋▊▉"
SPARK_WIDTH = 48
BAR_WIDTH = 10


def share_bar(share: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar `width` cells long at share 1.0, in eighths of a cell."""
    full, part = divmod(round(min(max(share, 0.0), 1.0) * width * 8), 8)
    return "█" * full + (EIGHTHS[part - 1] if part else "")


def sparkline(counts: Sequence[int], negatives: Sequence[int], width: int = SPARK_WIDTH) -> str:
    """Negative share over time, one character per cell; consecutive buckets are merged into
    at most `width` cells (their stories summed), `EMPTY` where a cell has no stories."""
    n, cells = len(counts), min(len(counts), width)
    out = []
    for c in range(cells):
        lo, hi = c * n // cells, (c + 1) * n // cells
        total, negative = sum(counts[lo:hi]), sum(negatives[lo:hi])
        out.append(BLOCKS[round(negative / total * (len(BLOCKS) - 1))] if total else EMPTY)
    return "".join(out)


def spark_start(start: datetime, bucket_starts: pd.Series, chosen: bool) -> datetime:
    """Where a range's sparklines start: at `start` when the user chose it (--since), else at
    the first bucket with stories, since a young store's default week is mostly empty."""
    if chosen or bucket_starts.empty:
        return start
    return max(start, bucket_starts.min().to_pydatetime())


DAY, MONTH = timedelta(days=1), timedelta(days=31)


def coarse_granularity(start: datetime, end: datetime) -> str:
    """The buckets to find a range's first story in: hours up to a month, days beyond."""
    return "hour" if end - start <= MONTH else "day"


def auto_granularity(start: datetime, end: datetime, bucket_starts: pd.Series, chosen: bool) -> str:
    """`--granularity auto` (the dashboard's Step auto too): 5 minutes when the range's stories, from
    the first (`bucket_starts`, coarse_granularity's) to its end, span a day or less; hours up to a
    month; days beyond. `chosen`: the range's start was given, so the span is the whole range."""
    span = end - spark_start(start, bucket_starts, chosen)
    return "5min" if span <= DAY else "hour" if span <= MONTH else "day"


def spark_note(start: datetime) -> str:
    """The line under a table of sparklines that start at the range's first story."""
    return f"negative trends from the first story in the range, {start:%m-%d %H:%M} UTC"


def bucket_series(
    points: pd.DataFrame, start: datetime, end: datetime, granularity: str
) -> tuple[list[int], list[int]]:
    """Stories and negative stories per bucket over [start, end), zero where a bucket has none."""
    from store import STEPS, bucket_start

    step, first = STEPS[granularity], bucket_start(start, granularity)
    n = max(1, -(-(end - first) // step))
    counts, negatives = [0] * n, [0] * n
    rows = zip(points["bucket_start"], points["count"], points["negative_count"], strict=True)
    for at, count, negative in rows:
        i = (at.to_pydatetime() - first) // step
        if 0 <= i < n:
            counts[i] += int(count)
            negatives[i] += int(negative)
    return counts, negatives
