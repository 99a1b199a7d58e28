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
# The most buckets a sparkline or chart lays out (5 minutes for 69 days, hours for 2.3 years, days
# for 54 years): more takes minutes and gigabytes to draw, for no more detail than a coarser step.
MAX_BUCKETS = 20_000
GRANULARITIES = ("5min", "hour", "day")  # finest first


class TooManyBuckets(ValueError):
    """A span that would take more than MAX_BUCKETS buckets; the message names a coarser step
    that fits, or asks for a shorter range."""


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


def spark_start(
    start: datetime, end: datetime, bucket_starts: pd.Series, chosen: bool, granularity: str
) -> datetime:
    """Where a range's sparklines start: at `start` when the user chose it (--since) and its
    `granularity` buckets to `end` are at most MAX_BUCKETS, else at the first bucket with stories,
    since a young store's default week is mostly empty."""
    if chosen and bucket_count(start, end, granularity) <= MAX_BUCKETS:
        return start
    return first_story(start, bucket_starts)


def first_story(start: datetime, bucket_starts: pd.Series) -> datetime:
    """The first bucket with stories in a range from `start` (`start` when none has any)."""
    return start if bucket_starts.empty else max(start, bucket_starts.min().to_pydatetime())


def bucket_count(start: datetime, end: datetime, granularity: str) -> int:
    """The `granularity` buckets [start, end) spans (at least one)."""
    from store import STEPS, bucket_start

    return max(1, -(-(end - bucket_start(start, granularity)) // STEPS[granularity]))


def check_buckets(start: datetime, end: datetime, granularity: str, option: str = "granularity") -> int:
    """bucket_count; TooManyBuckets past MAX_BUCKETS, naming the coarser steps that fit (`option`:
    what the user calls the granularity)."""
    n = bucket_count(start, end, granularity)
    if n <= MAX_BUCKETS:
        return n
    coarser = GRANULARITIES[GRANULARITIES.index(granularity) + 1 :]
    fits = [g for g in coarser if bucket_count(start, end, g) <= MAX_BUCKETS]
    advice = f"use a coarser {option}: {' or '.join(fits)}" if fits else "give a shorter range"
    raise TooManyBuckets(
        f"{granularity} buckets from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC would be "
        f"{n:,}, more than {MAX_BUCKETS:,}: {advice}"
    )


DAY, MONTH = timedelta(days=1), timedelta(days=31)


def coarse_granularity(start: datetime, end: datetime) -> str:
    """The buckets to find a range's first story in, before its 5 minutes: hours up to a month,
    days beyond."""
    return "hour" if end - start <= MONTH else "day"


def auto_granularity(start: datetime, end: datetime, bucket_starts: pd.Series) -> str:
    """`--granularity auto` (the dashboard's Step auto too): 5 minutes when the range's stories, from
    the first (`bucket_starts`: its 5 minutes) to its end, span a day or less; hours up to a month;
    days beyond (all of the range without stories), whether or not its start was given.
    5 minutes for a day and hours for a month are far below MAX_BUCKETS; days pass it only over
    54 years of stories, where no step fits."""
    span = end - first_story(start, bucket_starts)
    return "5min" if span <= DAY else "hour" if span <= MONTH else "day"


def spark_note(start: datetime) -> str:
    """The line under a table of sparklines that start at the range's first story."""
    return f"negative trends from the first story in the range, {start:%m-%d %H:%M} UTC"


def bucket_series(
    points: pd.DataFrame, start: datetime, end: datetime, granularity: str
) -> tuple[list[int], list[int]]:
    """Stories and negative stories per bucket over [start, end), zero where a bucket has none;
    TooManyBuckets past MAX_BUCKETS."""
    from store import STEPS, bucket_start

    step, first = STEPS[granularity], bucket_start(start, granularity)
    n = check_buckets(start, end, granularity)
    counts, negatives = [0] * n, [0] * n
    rows = zip(points["bucket_start"], points["count"], points["negative_count"], strict=True)
    for at, count, negative in rows:
        i = (at.to_pydatetime() - first) // step
        if 0 <= i < n:
            counts[i] += int(count)
            negatives[i] += int(negative)
    return counts, negatives
