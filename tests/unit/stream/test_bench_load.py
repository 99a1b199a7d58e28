"""The stream bench's fixed-load items: calm windows first, then a spike every window."""

from __future__ import annotations

from collections import Counter

from stream.bench import BENCH_TICKERS, CALM_WINDOWS, _load_items


def test_each_window_after_the_calm_ones_spikes_on_the_next_ticker() -> None:
    texts = [f"calm {i}" for i in range(30)] + [f"bearish {i}" for i in range(10)]
    labels = [2] * 30 + [0] * 10
    rate, per_window = 50.0, 100  # 2 s windows
    items = _load_items(texts, labels, rate, duration_s=20)
    assert len(items) == 1000
    for window in range(10):
        chunk = items[window * per_window : (window + 1) * per_window]
        bearish = Counter(i.tickers[0] for i in chunk if i.title.startswith("bearish"))
        calm = Counter(i.tickers[0] for i in chunk if i.title.startswith("calm"))
        if window < CALM_WINDOWS:
            assert not bearish
            assert calm.keys() == set(BENCH_TICKERS)
            assert min(calm.values()) >= 20
        else:
            assert bearish == {BENCH_TICKERS[window % len(BENCH_TICKERS)]: 50}
            # Every ticker keeps a calm volume (over the subscription's min_volume of 5).
            assert calm.keys() == set(BENCH_TICKERS)
            assert min(calm.values()) >= 10
