"""Step `auto`: the buckets a range's trends are read in, picked from the span of their stories
(text_charts.auto_granularity). One rule for `finpulse history` (trend, compare, entities) and the
dashboard (`GET /granularity`). Imports no store or pandas code until it queries."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from api.text_charts import auto_granularity, coarse_granularity

if TYPE_CHECKING:
    import pandas as pd

    from store import HistoryStore, TrendQuery

AUTO = "auto"
Q = TypeVar("Q", bound="TrendQuery")  # a VolumeQuery too


def _coarse(db: HistoryStore, queries: list[Q]) -> tuple[list[tuple[Q, pd.DataFrame]], str]:
    """Each query's rows in coarse_granularity's buckets (where the first story is found), and
    the buckets auto picks from them: by the span from the first story to the range's end, whether
    or not the range's start was given (--since)."""
    import pandas as pd

    start, end = queries[0].start, queries[0].end
    assert start is not None
    assert end is not None
    coarse = coarse_granularity(start, end)
    framed = [(c, db.frame(c)) for c in (q.model_copy(update={"granularity": coarse}) for q in queries)]
    return framed, auto_granularity(start, end, pd.concat([f["bucket_start"] for _, f in framed]))


def trend_frames(db: HistoryStore, queries: list[Q], granularity: str) -> list[tuple[Q, pd.DataFrame]]:
    """Each query in `granularity`'s buckets with its rows; `auto` picks the buckets from the span
    of their stories (as _coarse's). The coarse rows that find the first story are the answer when
    auto picks their buckets."""
    if granularity != AUTO:
        return [(q, db.frame(q)) for q in queries]
    framed, picked = _coarse(db, queries)
    if picked == framed[0][0].granularity:
        return framed
    return [(p, db.frame(p)) for p in (q.model_copy(update={"granularity": picked}) for q in queries)]


def pick_granularity(db: HistoryStore, query: TrendQuery) -> str:
    """The buckets auto reads the query's range in, from its first story to its end."""
    return _coarse(db, [query])[1]
