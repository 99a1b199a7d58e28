from __future__ import annotations

from finpulse.wording import counted


def test_a_count_takes_the_noun_in_its_number() -> None:
    assert counted(1, "alert") == "1 alert"
    assert counted(0, "alert") == "0 alerts"
    assert counted(3, "failed poll") == "3 failed polls"
    assert counted(1, "story", "stories") == "1 story"
    assert counted(1204, "story", "stories") == "1,204 stories"
