"""The score stage's fallback when the classifier fails: one bad story costs only itself, and a
failure no story is to blame for costs none (it raises: the worker stops, acking nothing).

The stream's end-to-end tests run the agent on the real broker and model; here a small fake
stands in for the classifier service, so failures can be placed on given stories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from finpulse.schema import NewsItem, ScoredItem
from model.errors import ModelNotFound
from stream.inference import ClassifierCrashed
from stream.score import _classify
from tests.unit.alerts.synth import scored


class _FakeClassifier:
    """Scores stories; raises on the titles in `poison`, and `crashes` times with
    ClassifierCrashed (its child died) before scoring anything, and on every call holding one of
    `killers`; with `broken`, raises it always."""

    def __init__(
        self, poison: Sequence[str] = (), crashes: int = 0, broken: Exception | None = None,
        killers: Sequence[str] = (),
    ) -> None:  # fmt: skip
        self.poison, self.crashes, self.broken, self.calls = set(poison), crashes, broken, 0
        self.killers = set(killers)

    async def score(self, items: Sequence[NewsItem]) -> list[ScoredItem]:
        self.calls += 1
        if self.broken:
            raise self.broken
        if self.crashes:
            self.crashes -= 1
            raise ClassifierCrashed("the classifier process died")
        if any(i.story_id in self.killers for i in items):
            raise ClassifierCrashed("the classifier process died on this text")
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


async def test_a_story_that_kills_the_classifier_costs_only_itself() -> None:
    """The batch, then "b" alone twice, crash the child; "a" and "c" are scored."""
    fake = _FakeClassifier(crashes=1, killers=("b",))
    results = await _classify(fake, _batch("a", "b", "c"))  # type: ignore[arg-type]
    assert [type(r).__name__ for _, r in results] == ["ScoredItem", "ClassifierCrashed", "ScoredItem"]


async def test_two_stories_that_kill_the_classifier_first_in_a_batch_cost_only_themselves() -> None:
    fake = _FakeClassifier(crashes=1, killers=("a", "b"))
    results = await _classify(fake, _batch("a", "b", "c"))  # type: ignore[arg-type]
    assert [type(r).__name__ for _, r in results] == ["ClassifierCrashed", "ClassifierCrashed", "ScoredItem"]


@pytest.mark.parametrize("ids", [("a",), ("a", "b", "c")])
async def test_a_classifier_that_dies_on_any_text_stops_the_worker(ids: tuple[str, ...]) -> None:
    """A story that crashes it twice, then a plain headline too: no story is to blame, none is
    dead-lettered (the error stops the worker unacked), whatever the batch's size."""
    fake = _FakeClassifier(crashes=10**6)
    with pytest.raises(ClassifierCrashed):
        await _classify(fake, _batch(*ids))  # type: ignore[arg-type]


async def test_a_model_that_cannot_load_fails_the_batch_at_once() -> None:
    # Before: each story was tried alone (loading the model again each time) and dead-lettered.
    fake = _FakeClassifier(broken=ModelNotFound("no trained model in /nowhere"))
    with pytest.raises(ModelNotFound):
        await _classify(fake, _batch("a", "b", "c"))  # type: ignore[arg-type]
    assert fake.calls == 1
