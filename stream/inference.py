"""The worker's classifier in child processes of its own.

In the worker's process, torch's threads and the event loop take turns on
one GIL: torch dispatches each of the encoder's small ops from Python, so a
busy event loop (decoding, publishing, windows) stalls the classifier and
cores sit idle. A child process has its own interpreter; the event loop only
pickles NewsItems over and ScoredItems back (a few hundred bytes each).

Children are spawned (not forked: the worker has threads and a running loop),
load the model once, and die with the worker (PR_SET_PDEATHSIG on Linux), so
a SIGKILLed worker leaves no orphan holding the model. If a child dies, the
call that saw it raises ClassifierCrashed and the next call starts new ones.
Their OpenMP threads wait passively: they share the cores with the event loop,
and spinning while one of them is descheduled burned ~20% more CPU per item
in `finpulse stream bench` (pipeline/classifier ratio 0.42 spinning, 0.62 passive).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from finpulse.errors import TransientError
from finpulse.schema import NewsItem, ScoredItem
from finpulse.settings import ModelSettings

if TYPE_CHECKING:
    from model.engine import Classifier

logger = logging.getLogger(__name__)
A = TypeVar("A")
R = TypeVar("R")

# prctl(2) option: signal this process when its parent dies.
_PR_SET_PDEATHSIG = 1

# In a child: its settings and threads, and its one model.
_config: tuple[ModelSettings, int] | None = None
_classifier: Classifier | None = None


class ClassifierCrashed(TransientError):
    """The classifier process died mid-call (crash or out of memory); the next call restarts it."""


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _configure(settings: ModelSettings, threads: int) -> None:
    """The child's initializer: only remembers (a failure here would hide its reason)."""
    global _config
    _config = (settings, threads)
    _die_with_parent()
    # A terminal's Ctrl+C reaches the whole process group: the worker stops its children itself
    # (each printed a KeyboardInterrupt traceback, and one mid-batch failed that batch).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Read by libgomp when torch loads, which is later (nothing imported it yet).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _loaded() -> Classifier:
    """The child's model, loaded on its first call (errors such as ModelNotFound reach the caller)."""
    global _classifier
    if _classifier is None:
        from model.engine import Classifier

        assert _config is not None, "the classifier process was not configured"
        settings, threads = _config
        _classifier = Classifier.from_settings(settings, threads=threads)
    return _classifier


def _version(_: object) -> str:
    return _loaded().version


def _score(items: list[NewsItem]) -> list[ScoredItem]:
    return _loaded().score(items)


def threads_each(settings: ModelSettings, parallel: int) -> int:
    """Torch threads of each of `parallel` child processes (or lanes): `model.threads`, else the
    cores shared out."""
    return settings.threads or max(1, usable_cpus() // parallel)


# A container's CPU quota (cgroup v2): "max 100000", or "200000 100000" for two cores.
CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def usable_cpus() -> int:
    """The cores this process may use: its CPU affinity and a container's CPU quota, not the
    host's count (`os.cpu_count()`: a 2-core container on a 64-core host ran 64 threads)."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    cpus = len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)
    with contextlib.suppress(OSError, ValueError):
        quota, period = CPU_MAX.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    return cpus


class ClassifierProcess:
    """`model.Classifier.score` in spawned child processes, awaited from the event loop.

    Each child takes one batch at a time; with several, batches run side by side.
    """

    def __init__(self, settings: ModelSettings, processes: int = 1) -> None:
        self.settings, self.processes = settings, processes
        self.threads = threads_each(settings, processes)
        self.version: str | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._ready: list[Future[str]] = []

    def launch(self) -> None:
        """Spawn the children and have them load the model, without waiting (idempotent)."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.processes,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_configure,
                initargs=(self.settings, self.threads),
            )
            # As many calls as children at once: the pool starts a child per call while none
            # is idle, and each loads the model on its first call.
            self._ready = [self._pool.submit(_version, None) for _ in range(self.processes)]

    async def start(self) -> None:
        """Launch if not yet, and wait until every child loaded the model (raises what loading raises)."""
        self.launch()
        if self.version is None:
            pool = self._pool
            try:
                versions = await asyncio.gather(*(asyncio.wrap_future(f) for f in self._ready))
            except BrokenProcessPool as exc:
                await self.stop(pool)
                raise ClassifierCrashed(f"a classifier process died while loading the model: {exc}") from exc
            except Exception:
                await self.stop(pool)  # the next batch loads again (the model folder mid-swap, say)
                raise
            self.version = versions[0]
            logger.info(
                "classifier processes started n=%d threads=%d version=%s dir=%s",
                self.processes, self.threads, self.version, self.settings.model_dir,
            )  # fmt: skip

    async def stop(self, only: ProcessPoolExecutor | None = None) -> None:
        """Shut the children down; `only`: if that is still the pool (a batch waiting on the same
        failed load must not stop the one the next batch launched since)."""
        if only is not None and self._pool is not only:
            return
        pool, self._pool, self.version = self._pool, None, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)

    async def score(self, items: Sequence[NewsItem]) -> list[ScoredItem]:
        await self.start()
        return await self._run(_score, list(items))

    async def _run(self, fn: Callable[[A], R], arg: A) -> R:
        assert self._pool is not None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, arg)
        except BrokenProcessPool as exc:
            await self.stop()
            raise ClassifierCrashed(
                "the classifier process died (crash or out of memory); it restarts on the next batch"
            ) from exc
