from __future__ import annotations

from finpulse.wording import counted


def test_a_count_takes_the_noun_in_its_number() -> None:
    assert counted(1, "alert") == "1 alert"
    assert counted(0, "alert") == "0 alerts"
    assert counted(3, "failed poll") == "3 failed polls"
    assert counted(1, "scored story") == "1 scored story"
    assert counted(1204, "story") == "1,204 stories"
    assert counted(2, "entity") == "2 entities"
    assert counted(2, "day") == "2 days"  # a vowel's -y takes -s
