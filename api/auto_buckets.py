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
    """Each query's rows in coarse_granularity's buckets, and the buckets auto picks: by the span
    from the first story (_first_buckets') to the range's end."""
    start, end = queries[0].start, queries[0].end
    assert start is not None
    assert end is not None
    coarse = coarse_granularity(start, end)
    framed = [(c, db.frame(c)) for c in (q.model_copy(update={"granularity": coarse}) for q in queries)]
    return framed, auto_granularity(start, end, _first_buckets(db, framed))


def _first_buckets(db: HistoryStore, framed: list[tuple[Q, pd.DataFrame]]) -> pd.Series:
    """The 5-minute buckets with stories in the first coarse bucket that has any: where the first
    story is, whatever the range's start (--since). Its day, in a range over a month, put it up to
    24 h early: going further back turned a day of stories' 5 minutes into hours."""
    import pandas as pd

    from store import STEPS

    coarse = pd.concat([f["bucket_start"] for _, f in framed])
    if coarse.empty:
        return coarse
    first, query = coarse.min().to_pydatetime(), framed[0][0]
    assert query.start is not None
    assert query.end is not None
    within = {
        "granularity": "5min",
        "start": max(query.start, first),
        "end": min(first + STEPS[query.granularity], query.end),
    }
    return pd.concat([db.frame(q.model_copy(update=within))["bucket_start"] for q, _ in framed])


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
