"""What the classifier says about one text."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from finpulse.schema import Sentiment


class Prediction(BaseModel):
    """Topic and sentiment of one text, with both heads' probabilities.

    `sentiment_score` is P(positive) - P(negative), in [-1, 1]. `truncated`:
    the text was longer than the model reads (it saw the beginning). `empty`:
    nothing was left to read after normalisation (not one word piece); such a text gets the
    catch-all topic and a certain neutral sentiment, without running the model.
    """

    model_config = ConfigDict(frozen=True)

    topic: str
    topic_probs: dict[str, float]
    sentiment: Sentiment
    sentiment_probs: dict[Sentiment, float]
    sentiment_score: float
    truncated: bool = False
    empty: bool = False
