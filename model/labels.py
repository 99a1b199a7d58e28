"""Label sets of the two heads, and how the training files' label ids map to them."""

from __future__ import annotations

from typing import Final, Literal

from finpulse.schema import SENTIMENTS
from finpulse.schema import TOPICS as TOPICS  # the topic head's classes (subscriptions check them too)

Task = Literal["topic", "sentiment"]
TASKS: Final[tuple[Task, ...]] = ("topic", "sentiment")

# The sentiment head's classes are the schema's ("negative", "neutral", "positive").
SENTIMENT_LABELS: Final[tuple[str, ...]] = SENTIMENTS

# The sentiment set's file ids: 0 bearish, 1 bullish, 2 neutral (its README).
SENTIMENT_FILE_IDS: Final[dict[int, int]] = {
    0: SENTIMENTS.index("negative"),
    1: SENTIMENTS.index("positive"),
    2: SENTIMENTS.index("neutral"),
}

# What an empty text is given: the catch-all topic, and neutral sentiment.
FALLBACK_TOPIC: Final[str] = "General News | Opinion"


def labels_for(task: Task) -> tuple[str, ...]:
    """The class names of one head, in logit order."""
    return TOPICS if task == "topic" else SENTIMENT_LABELS
