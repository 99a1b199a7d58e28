"""Length-sorted batches and padding."""

from __future__ import annotations

import itertools
import random

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from model.batching import costed_batches, pad, shuffled_buckets, sorted_batches


@given(
    st.lists(st.integers(min_value=1, max_value=200), max_size=300), st.integers(min_value=1, max_value=64)
)
def test_sorted_batches_cover_each_index_once_by_length(lengths: list[int], size: int) -> None:
    batches = sorted_batches(lengths, size)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(len(b) <= size for b in batches)
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


def _cost(lengths: list[int], batches: list[list[int]], call: int) -> int:
    return sum(call + len(b) * max(lengths[i] for i in b) for b in batches)


@given(
    st.lists(st.integers(min_value=1, max_value=200), max_size=300),
    st.integers(min_value=1, max_value=64),
    st.integers(min_value=0, max_value=200),
)
def test_costed_batches_cover_each_index_once_by_length(lengths: list[int], rows: int, call: int) -> None:
    batches = costed_batches(lengths, rows, call)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(b) <= rows for b in batches)
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    # Never dearer than fixed-size batches of the same order.
    assert _cost(lengths, batches, call) <= _cost(lengths, sorted_batches(lengths, rows), call)


@given(st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=9), st.integers(0, 80))
def test_costed_batches_are_the_cheapest_cut(lengths: list[int], call: int) -> None:
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    cheapest = min(  # every way to cut the sorted order into runs of at most 4
        _cost(lengths, [order[a:b] for a, b in itertools.pairwise((0, *cuts, len(order)))], call)
        for k in range(len(order))
        for cuts in itertools.combinations(range(1, len(order)), k)
        if all(b - a <= 4 for a, b in itertools.pairwise((0, *cuts, len(order))))
    )
    assert _cost(lengths, costed_batches(lengths, 4, call), call) == cheapest


def test_costed_batches_give_a_long_text_its_own_batch() -> None:
    lengths = [12] * 31 + [128]
    assert costed_batches(lengths, 32, 48)[0] == [31]
    # Equal lengths: padding costs nothing, so the fewest calls.
    assert sorted(len(b) for b in costed_batches([20] * 70, 32, 48)) == [6, 32, 32]


@given(
    st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=500),
    st.integers(min_value=1, max_value=32),
)
def test_shuffled_buckets_cover_each_index_once(lengths: list[int], size: int) -> None:
    batches = shuffled_buckets(lengths, size, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_pad_to_longest_row_only() -> None:
    ids, mask = pad([[101, 5, 102], [101, 102]])
    assert ids.tolist() == [[101, 5, 102], [101, 102, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert ids.dtype == np.int64


def test_pad_rounds_up_to_multiple() -> None:
    ids, mask = pad([[1] * 9], multiple=8)
    assert ids.shape == (1, 16)
    assert int(mask.sum()) == 9
