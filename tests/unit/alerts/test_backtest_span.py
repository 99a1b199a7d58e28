from __future__ import annotations

from datetime import timedelta

from alerts.backtest import history_span, story_span
from tests.unit.alerts.synth import HOPPING, T0, TUMBLING, window


def test_the_rate_is_taken_over_the_history_not_a_quiet_entity_s_burst() -> None:
    burst = [window("ACME", i, 10, 8, kind="ticker") for i in (40, 41, 42)]  # 5-minute windows
    # Stories of any entity from the first window to the seventy-second: six hours of history.
    stories = (T0 + timedelta(seconds=3), T0 + timedelta(hours=6, seconds=-5))
    assert history_span(burst, stories) == stories
    # Without stories (none in the store's range), the windows' own span.
    assert history_span(burst, None) == (T0 + timedelta(minutes=200), T0 + timedelta(minutes=215))
    # The stories' times in whole tumbling windows (story_span): the windows' ends are not
    # taken, so hour-long hopping windows, an hour past the last story, do not stretch the rate.
    stories = story_span(T0 + timedelta(minutes=201), T0 + timedelta(minutes=212), TUMBLING)
    assert stories == (T0 + timedelta(minutes=200), T0 + timedelta(minutes=215))
    hopping = [window("ACME", 40, 10, 8, kind="ticker", spec=HOPPING)]
    assert history_span(burst + hopping, stories) == stories
