"""Text normalisation: the one rule training and inference share."""

from __future__ import annotations

import pytest

from model.text import group_key, normalize_text


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
