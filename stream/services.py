"""Long-lived resources of a worker, as Faust (mode) services.

The classifier loads once per worker, when the worker starts, and runs its
CPU/GPU work in a thread so the event loop keeps heartbeats flowing. The
live subscriptions reload periodically, also in a thread (DuckDB blocks).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mode import Service

from finpulse.schema import NewsItem, ScoredItem
from finpulse.settings import ModelSettings

if TYPE_CHECKING:
    from alerts.live import LiveSubscriptions
    from model.engine import Classifier

logger = logging.getLogger(__name__)


class ClassifierService(Service):
    """Holds the worker's one `model.Classifier`.

    Faust starts user services after table recovery, which may be after the
    first batch arrives, so the first `predict` also loads the model (once,
    under a lock) if the service has not yet.
    """

    def __init__(self, settings: ModelSettings, **kwargs: object) -> None:
        self.settings = settings
        self._classifier: Classifier | None = None
        self._loading = asyncio.Lock()
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self._loaded()

    async def _loaded(self) -> Classifier:
        async with self._loading:
            if self._classifier is None:
                from model.engine import Classifier

                s = self.settings
                self._classifier = await asyncio.to_thread(
                    Classifier.load, s.model_dir, device=s.device, threads=s.threads
                )
                logger.info("classifier loaded version=%s dir=%s", self._classifier.version, s.model_dir)
        return self._classifier

    async def score(self, items: Sequence[NewsItem]) -> list[ScoredItem]:
        """Classify off the event loop."""
        classifier = await self._loaded()
        return await asyncio.to_thread(classifier.score, list(items))


class SubscriptionsService(Service):
    """Reloads the worker's live subscriptions every `refresh_s` (alerts.live).

    The first set is loaded when the app is built (before any batch), so the
    detector never runs without one; this service only keeps it current.
    """

    def __init__(self, live: LiveSubscriptions, **kwargs: object) -> None:
        self.live = live
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        await self.live.start()

    async def on_stop(self) -> None:
        await self.live.stop()
