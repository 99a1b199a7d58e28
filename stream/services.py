"""Long-lived resources of a worker, as Faust (mode) services.

The classifier loads once per worker, when the worker starts, and runs its
CPU/GPU work off the event loop (in a thread, or in child processes) so
heartbeats keep flowing. The live subscriptions reload periodically, also in a thread
(DuckDB blocks).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mode import Service

from finpulse.errors import ConfigError, exit_status
from finpulse.schema import NewsItem, ScoredItem
from finpulse.settings import ModelSettings
from stream.inference import ClassifierProcess, threads_each

if TYPE_CHECKING:
    from alerts.live import LiveSubscriptions
    from model.engine import Classifier

logger = logging.getLogger(__name__)


class ClassifierService(Service):
    """Holds the worker's classifier: in child processes (stream/inference.py; the
    default) or, with processes=0, in `lanes` threads of this process, each with a
    `model.Classifier` of its own and the cores shared out among them. The network
    runs without the GIL (a traced graph), so lanes classify side by side and beside
    the event loop; the Python parts (tokens, n-grams) take turns.

    Faust starts user services after table recovery, which may be after the
    first batch arrives, so the first `score` also loads the model (once,
    under a lock) if the service has not yet. A model it cannot load (a
    ConfigError) stops the worker, with exit status 2.
    """

    def __init__(self, settings: ModelSettings, processes: int = 0, lanes: int = 1, **kwargs: object) -> None:
        self.settings = settings
        self.processes = processes
        self._child: ClassifierProcess | None = None
        self._loading = asyncio.Lock()
        # Batches classified side by side: one per child process, or per lane.
        self.parallel = processes or max(1, lanes)
        self._idle: asyncio.Queue[Classifier] | None = None
        self._loaded = False
        self._unusable: ConfigError | None = None
        super().__init__(**kwargs)

    def launch(self) -> None:
        """Start loading the model in the child processes now, while the worker starts up."""
        if self.processes:
            self._child = self._child or ClassifierProcess(self.settings, self.processes)
            self._child.launch()

    async def on_start(self) -> None:
        with contextlib.suppress(ConfigError):  # said, and the worker stops (_load)
            await self._load()

    async def on_stop(self) -> None:
        if self._child is not None:
            await self._child.stop()
        # Frozen objects are never collected, not even at exit: DuckDB's bindings then report
        # each of their objects as leaked (some 40 lines at every worker stop).
        gc.unfreeze()

    async def _load(self) -> None:
        async with self._loading:
            if self._loaded:
                return
            if self._unusable is not None:
                raise self._unusable  # the worker is stopping: loading again would fail alike
            try:
                await self._load_model()
            except ConfigError as exc:
                # No model (or no GPU for it): no story can be scored, and none is to blame. Stop
                # the worker before it acks any, with a config error's exit status (`finpulse up`
                # gives up on a first start that exits so). mode's worker re-raises a crash's
                # reason once stopped, and exits 1 for any Exception: a SystemExit keeps its status.
                self._unusable = exc
                logger.critical("cannot load the classifier: %s; stopping the worker", exc)
                await self.crash(SystemExit(exit_status(exc)))
                raise
            self._loaded = True
            # What is alive now (Faust, Kafka clients, pandas, DuckDB; with lanes torch and the
            # model) lives as long as the worker: out of the collector's sight, collections no
            # longer walk it (with lanes a full one stalled the loop for 0.4 s; with child
            # processes the collector took 12% of the worker's CPU in a stream bench, `perf`).
            gc.freeze()

    async def _load_model(self) -> None:
        s = self.settings
        if self.processes:
            self.launch()
            assert self._child is not None
            await self._child.start()  # its `score` restarts crashed children itself
        else:
            from model.engine import Classifier

            threads = threads_each(s, self.parallel)
            idle: asyncio.Queue[Classifier] = asyncio.Queue()
            for _ in range(self.parallel):
                idle.put_nowait(await asyncio.to_thread(Classifier.from_settings, s, threads=threads))
            self._idle = idle
            logger.info("classifier loaded lanes=%d threads=%d dir=%s", self.parallel, threads, s.model_dir)

    async def score(self, items: Sequence[NewsItem]) -> list[ScoredItem]:
        """Classify off the event loop."""
        await self._load()
        if self._child is not None:
            return await self._child.score(items)
        assert self._idle is not None
        classifier = await self._idle.get()
        try:
            return await asyncio.to_thread(classifier.score, list(items))
        finally:
            self._idle.put_nowait(classifier)


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
