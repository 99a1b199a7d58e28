"""The score stage's fallback when the classifier fails: one bad story costs only itself.

The stream's end-to-end tests run the agent on the real broker and model; here a small fake
stands in for the classifier service, so failures can be placed on given stories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from finpulse.schema import NewsItem, ScoredItem
from stream.inference import ClassifierCrashed
from stream.score import _classify
from tests.unit.alerts.synth import scored


class _FakeClassifier:
    """Scores stories; raises on the titles in `poison`, and `crashes` times with
    ClassifierCrashed (its child died) before scoring anything."""

    def __init__(self, poison: Sequence[str] = (), crashes: int = 0) -> None:
        self.poison, self.crashes, self.calls = set(poison), crashes, 0

    async def score(self, items: Sequence[NewsItem]) -> list[ScoredItem]:
        self.calls += 1
        if self.crashes:
            self.crashes -= 1
            raise ClassifierCrashed("the classifier process died")
        if any(i.story_id in self.poison for i in items):
            raise RuntimeError("the model failed on this text")
        return [scored(i.story_id) for i in items]


def _batch(*ids: str) -> list[tuple[Any, NewsItem]]:
    return [(f"origin-{i}", scored(i).item) for i in ids]


async def test_a_story_that_fails_alone_is_returned_for_its_dead_letter() -> None:
    # Before: a one-story batch re-raised, and its publish, and every batch after, failed.
    [(origin, result)] = await _classify(_FakeClassifier(poison=["a"]), _batch("a"))  # type: ignore[arg-type]
    assert origin == "origin-a"
    assert isinstance(result, RuntimeError)


async def test_a_batch_that_fails_is_scored_story_by_story() -> None:
    results = await _classify(_FakeClassifier(poison=["b"]), _batch("a", "b", "c"))  # type: ignore[arg-type]
    assert [(o, type(r).__name__) for o, r in results] == [
        ("origin-a", "ScoredItem"),
        ("origin-b", "RuntimeError"),
        ("origin-c", "ScoredItem"),
    ]


async def test_a_story_alone_is_tried_again_once_after_the_classifier_crashed() -> None:
    fake = _FakeClassifier(crashes=1)  # the child died; the next call starts a new one
    [(_, result)] = await _classify(fake, _batch("a"))  # type: ignore[arg-type]
    assert isinstance(result, ScoredItem)
    assert fake.calls == 2
    twice = _FakeClassifier(crashes=2)
    [(_, result)] = await _classify(twice, _batch("a"))  # type: ignore[arg-type]
    assert isinstance(result, ClassifierCrashed)  # dead-lettered: it crashed the child twice
