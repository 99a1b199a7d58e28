"""The demo's alert panel (finpulse.demo.alert_panel) as an 80-column terminal shows it."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from finpulse.demo import alert_panel
from finpulse.schema import HeadlineRef
from tests.fixtures.store import alert

LONG = "Acme CEO said he sees a 'bad recession' coming next year, in an interview on Tuesday morning"


def test_headlines_keep_their_brackets_and_wrap_under_themselves() -> None:
    fired = alert("a1", "ACME", datetime(2026, 12, 7, 2, 10, tzinfo=UTC), entity_kind="ticker")
    fired = fired.model_copy(
        update={
            "top_headlines": (
                HeadlineRef(story_id="s1", title="[UPDATE] Acme shares sink", sentiment_score=-0.7),
                HeadlineRef(story_id="s2", title=LONG, sentiment_score=-0.64),
            )
        }
    )
    console = Console(width=80, record=True)
    console.print(alert_panel(fired))
    lines = console.export_text().splitlines()
    assert "│ ticker ACME: negative share 60% vs baseline 20% (12/20 stories, p=1.0e-03)" in lines[1]
    assert any(line.startswith("│   - [UPDATE] Acme shares sink (-0.70)") for line in lines), lines
    first = next(i for i, line in enumerate(lines) if "Acme CEO said" in line)
    assert lines[first].startswith("│   - Acme CEO")
    assert lines[first + 1].startswith("│     "), lines  # under the title, not under the dash
    assert "(-0.64)" in " ".join(" ".join(lines[first : first + 3]).split())
    # The numbers say what they are, as in the alert messages.
    assert any("top negative headlines (score: -1 most negative, +1 most positive)" in line for line in lines)
