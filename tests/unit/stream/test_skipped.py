"""Which offsets an agent missed (stream/skipped.py OffsetGaps)."""

from __future__ import annotations

from stream.skipped import OffsetGaps


def test_a_forward_jump_is_a_gap_and_redeliveries_and_new_assignments_are_not() -> None:
    gaps = OffsetGaps()
    assert gaps.missed(0, 19) is None  # the first event after an assignment: nothing to compare
    assert gaps.missed(0, 20) is None
    assert gaps.missed(1, 5) is None  # partitions are tracked apart
    assert gaps.missed(0, 38) == (21, 38)  # Faust skipped 21-37
    assert gaps.missed(0, 30) is None  # a redelivery after a seek back
    assert gaps.missed(0, 31) is None
    gaps.reset()  # a rebalance: Faust resumes from the committed offsets
    assert gaps.missed(0, 10) is None
    assert gaps.missed(0, 12) == (11, 12)
