"""Agent `score`: news.raw -> batches -> Classifier -> news.scored."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import faust
from faust.types import EventT, StreamT

from finpulse.errors import InvalidRecord
from finpulse.schema import NewsItem, ScoredItem, utcnow
from finpulse.settings import ModelSettings
from stream.deadletter import dead_letter
from stream.services import ClassifierService
from stream.topics import PipelineTopics

logger = logging.getLogger(__name__)


def register_score(
    app: faust.App, topics: PipelineTopics, classifier: ClassifierService, settings: ModelSettings
) -> None:
    dead = topics.dead(app, topics.names.raw)

    @app.agent(topics.raw, name="score")
    async def score(stream: StreamT[bytes]) -> None:
        async for events in stream.take_events(settings.max_batch, within=settings.batch_window_s):
            batch: list[tuple[EventT, NewsItem]] = []
            for event in events:
                try:
                    batch.append((event, NewsItem.from_bytes(event.value)))
                except InvalidRecord as exc:
                    await dead_letter(dead, event, exc, stage="score")
            for event, result in await _classify(classifier, batch):
                if isinstance(result, ScoredItem):
                    await topics.scored.send(key=result.story_id.encode(), value=result.to_bytes())
                else:
                    await dead_letter(dead, event, result, stage="score")


async def _classify(
    classifier: ClassifierService, batch: Sequence[tuple[EventT, NewsItem]]
) -> list[tuple[EventT, ScoredItem | Exception]]:
    """Score the batch in one call; if that fails, item by item, so one bad
    item costs only itself."""
    if not batch:
        return []
    try:
        predictions = await classifier.predict([item.text for _, item in batch])
    except Exception:
        if len(batch) == 1:
            raise
        logger.exception("batch prediction failed size=%d; retrying item by item", len(batch))
        return [pair for one in batch for pair in await _classify_one(classifier, one)]
    return [
        (event, _scored(item, pred, classifier.version))
        for (event, item), pred in zip(batch, predictions, strict=True)
    ]


async def _classify_one(
    classifier: ClassifierService, one: tuple[EventT, NewsItem]
) -> list[tuple[EventT, ScoredItem | Exception]]:
    try:
        return await _classify(classifier, [one])
    except Exception as exc:  # noqa: BLE001 - loop boundary: dead-letter this item
        return [(one[0], exc)]


def _scored(item: NewsItem, pred: object, version: str) -> ScoredItem:
    return ScoredItem(
        item=item,
        topic=pred.topic,  # type: ignore[attr-defined]
        topic_probs=pred.topic_probs,  # type: ignore[attr-defined]
        sentiment=pred.sentiment,  # type: ignore[attr-defined]
        sentiment_probs=pred.sentiment_probs,  # type: ignore[attr-defined]
        sentiment_score=pred.sentiment_score,  # type: ignore[attr-defined]
        model_version=version,
        scored_at=utcnow(),
    )
