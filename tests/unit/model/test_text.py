"""Text normalisation: the one rule training and inference share."""

from __future__ import annotations

import pytest

from model.text import cut_raw, group_key, normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Exxon &amp; more  https://t.co/QPN8Gwl7Uh", "Exxon & more http"),
        ("double &amp;amp; escaped", "double & escaped"),
        ("tabs\tand\nnew\r\nlines", "tabs and new lines"),
        ("  \x00control\x07chars ", "control chars"),
        ("see www.example.com/a?b=c now", "see http now"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_normalize_caps_before_work() -> None:
    assert normalize_text("a" * 1_000_000, max_chars=50) == "a" * 50


def test_normalize_is_idempotent_on_training_like_text() -> None:
    once = normalize_text("$AAPL &lt;up&gt; 3% https://t.co/x  today")
    assert normalize_text(once) == once


def test_group_key_joins_reposts_with_other_links_and_case() -> None:
    a = group_key("Fed holds rates https://t.co/AAA")
    b = group_key("FED holds rates!  https://t.co/BBB")
    assert a == b
    assert a != group_key("Fed raises rates https://t.co/AAA")


def test_lone_surrogates_become_replacement_characters_and_pairs_join() -> None:
    # Python strings may hold them (JSON "\ud83d", surrogateescape); no tokenizer accepts one.
    assert normalize_text("Apple \ud83d beats \udc00") == "Apple \ufffd beats \ufffd"
    assert normalize_text("up \ud83d\ude80") == "up \U0001f680"


@pytest.mark.parametrize(
    ("raw", "kept", "cut"),
    [
        ("abc", "abc", False),
        ("abcdef", "abcd", True),
        (" " * 10 + "abc", "abc", False),  # leading blanks are normalised away, not read
        ("\n\t\x00 abcdef", "abcd", True),
        ("abcd" + " \n" * 10, "abcd", False),  # only blanks cut off
        ("abcd   e", "abcd", True),
        ("", "", False),
    ],
)
def test_cut_raw_keeps_max_chars_from_the_first_visible_one(raw: str, kept: str, cut: bool) -> None:
    assert cut_raw(raw, 4) == (kept, cut)
