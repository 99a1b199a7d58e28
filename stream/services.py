"""Long-lived resources of a worker, as Faust (mode) services.

The classifier loads once per worker, when the worker starts, and runs its
CPU/GPU work in a thread so the event loop keeps heartbeats flowing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mode import Service

from finpulse.settings import ModelSettings

if TYPE_CHECKING:
    from model.engine import Classifier, Prediction

logger = logging.getLogger(__name__)


class ClassifierService(Service):
    """Holds the worker's one `model.Classifier`."""

    def __init__(self, settings: ModelSettings, **kwargs: object) -> None:
        self.settings = settings
        self._classifier: Classifier | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        from model.engine import Classifier

        self._classifier = await asyncio.to_thread(
            Classifier.load,
            self.settings.model_dir,
            device=self.settings.device,
            threads=self.settings.threads,
        )
        logger.info("classifier loaded version=%s dir=%s", self.version, self.settings.model_dir)

    @property
    def classifier(self) -> Classifier:
        if self._classifier is None:
            raise RuntimeError("ClassifierService used before it started")
        return self._classifier

    @property
    def version(self) -> str:
        return self.classifier.version

    async def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Classify off the event loop."""
        return await asyncio.to_thread(self.classifier.predict, list(texts))
