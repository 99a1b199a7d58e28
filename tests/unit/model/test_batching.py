"""Length-sorted batches and padding."""

from __future__ import annotations

import random

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from model.batching import pad, shuffled_buckets, sorted_batches


@given(
    st.lists(st.integers(min_value=1, max_value=200), max_size=300), st.integers(min_value=1, max_value=64)
)
def test_sorted_batches_cover_each_index_once_by_length(lengths: list[int], size: int) -> None:
    batches = sorted_batches(lengths, size)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(len(b) <= size for b in batches)
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)


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
