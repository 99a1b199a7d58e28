"""Live subscriptions: the history store holds them, the subscriptions file seeds it.

The rule, implemented once here and used by the worker's detector, the
dispatcher and the backtest (`live_subscriptions`):

1. Hash the file (sha256 of its bytes). When the hash differs from the one
   the store recorded at the last import, the file's subscriptions replace
   the stored rows with the same ids (the file wins for the ids it names;
   other rows stay) and the hash is recorded, in one transaction. A
   subscription the last import took from the file and the file no longer
   names is deleted with it: the file owns what it lists (those made in the
   dashboard or API are never in it, so stay). An unchanged file is not
   imported again, so dashboard/API edits survive.
   Mutes set on a stored copy (dashboard, API, an alert's mute link) that have
   an end still ahead stay on the file's version until they end: someone who
   muted a noisy ticker for a day keeps that day when the file is edited. The
   mutes the file gave are recorded with the import, so one deleted from the
   file or edited there (a new `until`) goes with the old file's version.
2. Read every stored subscription and validate it with `Subscription`; a row
   that no longer validates is logged with its id and reason, and skipped.

A missing file seeds nothing (the store alone is live). No store (history
disabled), or a store that fails: the file alone, with a warning. A
read-only store is never written: a changed file is laid over its rows in
memory, which is what the next import will store.

`LiveSubscriptions` keeps a process's current set and reloads it every
`refresh_s` seconds off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from finpulse.errors import ConfigError, FinpulseError
from finpulse.schema import describe_validation_error, utcnow
from store import HistoryStore, StoreConfigError, StoreError, StoreUnavailable

from .subscriptions import MuteWindow, Subscription, load_subscriptions, loads_subscriptions

logger = logging.getLogger(__name__)

# The store_meta keys holding the sha256 of the subscriptions file last imported, its ids, and
# its mutes (bodies by id: a later import drops them, unlike mutes set on the stored copy).
FILE_HASH_KEY = "subscriptions.file_sha256"
FILE_IDS_KEY = "subscriptions.file_ids"
FILE_MUTES_KEY = "subscriptions.file_mutes"
Subscriptions = tuple[Subscription, ...]


def live_subscriptions(path: Path, store: HistoryStore | None) -> Subscriptions:
    """The live subscriptions (module doc); falls back to the file when the store is unusable.

    Raises:
        ConfigError: the file is invalid (or missing while there is no store).
    """
    if store is None:
        logger.warning("no history store: subscriptions from %s alone (API/dashboard edits unseen)", path)
        return load_subscriptions(path)
    try:
        return load_live(path, store)
    except (StoreError, StoreUnavailable, StoreConfigError) as exc:
        logger.warning("history store unavailable: subscriptions from %s alone; error=%s", path, exc)
        return load_subscriptions(path)


def load_live(path: Path, store: HistoryStore) -> Subscriptions:
    """Seed the store from the file if it changed, then read and validate the stored set.

    Raises:
        ConfigError: the file is invalid.
        StoreError, StoreUnavailable, StoreConfigError: the store cannot be used.
    """
    store.start()  # idempotent; migrates a writable store
    overlay: dict[str, Subscription] = {}
    gone: list[str] = []
    seed = _changed_file(path, store)
    if seed is not None:
        digest, subs = seed
        now = utcnow()
        filed = json.dumps({s.id: [_body(m) for m in s.mute] for s in subs if s.mute})
        subs = _keep_running_mutes(
            subs, _stored(store), json.loads(store.get_meta(FILE_MUTES_KEY) or "{}"), now
        )
        ids = sorted(s.id for s in subs)
        gone = sorted(set(json.loads(store.get_meta(FILE_IDS_KEY) or "[]")) - set(ids))
        if store.read_only:
            overlay = {s.id: s for s in subs}
        else:
            store.import_subscriptions(
                {s.id: s.stored_body() for s in subs},
                remove=gone,
                meta={FILE_HASH_KEY: digest, FILE_IDS_KEY: json.dumps(ids), FILE_MUTES_KEY: filed},
            )
            logger.info("subscriptions imported file=%s count=%d sha256=%s", path, len(subs), digest[:12])
        if gone:
            logger.info("subscriptions removed from the file, so from the live set: %s", ", ".join(gone))
        for sub in subs:
            for doubt in sub.doubts(now):
                logger.warning("subscription %s: %s", sub.id, doubt)
    live = {k: v for k, v in _stored(store, warn=True).items() if k not in gone} | overlay
    return tuple(live[k] for k in sorted(live))


def _stored(store: HistoryStore, *, warn: bool = False) -> dict[str, Subscription]:
    """The stored subscriptions that validate (the others logged with their reason when `warn`)."""
    out: dict[str, Subscription] = {}
    for record in store.list_subscriptions():
        try:
            out[record.id] = Subscription.model_validate(record.body)
        except ValidationError as exc:
            if warn:
                logger.warning(
                    "stored subscription skipped id=%s reason=%s", record.id, describe_validation_error(exc)
                )
    return out


def _keep_running_mutes(
    subs: Subscriptions, stored: dict[str, Subscription], filed: dict[str, list[Any]], now: datetime
) -> Subscriptions:
    """The file's subscriptions, each with its stored copy's mutes that end after `now` and that
    neither the file nor its last import (`filed`: mute bodies by id) lists, i.e. set on the copy."""
    out = []
    for sub in subs:
        old = stored.get(sub.id)
        known = [*filed.get(sub.id, ()), *map(_body, sub.mute)]
        keep = (
            tuple(m for m in old.mute if m.until is not None and m.until > now and _body(m) not in known)
            if old
            else ()
        )
        if keep:
            logger.info(
                "subscription %s keeps %d mute(s) set outside the file, the last until %s",
                sub.id, len(keep), max(m.until for m in keep if m.until is not None).isoformat(),
            )  # fmt: skip
            sub = sub.model_copy(update={"mute": (*sub.mute, *keep)})
        out.append(sub)
    return tuple(out)


def _body(mute: MuteWindow) -> dict[str, Any]:
    """A mute as the store keeps it, the form that compares equal after a trip through the store."""
    return mute.model_dump(mode="json", by_alias=True)


def _changed_file(path: Path, store: HistoryStore) -> tuple[str, Subscriptions] | None:
    """(hash, subscriptions) of the file when it differs from the last import; else None."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read subscriptions file {path}: {exc.strerror}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if store.get_meta(FILE_HASH_KEY) == digest:
        return None
    return digest, loads_subscriptions(data.decode("utf-8", errors="replace"), str(path))


class LiveSubscriptions:
    """One process's current subscriptions, reloaded every `refresh_s` seconds off the loop.

    `load()` (blocking) gives the first set; `start()` loads if needed and starts
    the refresh task, `stop()` cancels it (idempotent). A reload that fails (a
    broken file edit, the store locked) keeps the current set and is retried.
    """

    def __init__(
        self,
        path: Path,
        store: HistoryStore | None,
        *,
        refresh_s: float,
        on_change: Callable[[Subscriptions], None] | None = None,
    ) -> None:
        self.path = path
        self.store = store
        self.refresh_s = refresh_s
        self.on_change = on_change  # called with the new set whenever it changes
        self._current: Subscriptions = ()
        self._loaded = False
        self._task: asyncio.Task[None] | None = None

    @property
    def current(self) -> Subscriptions:
        return self._current

    def load(self) -> Subscriptions:
        """The first load, with the file fallback (blocking); raises ConfigError on a bad file."""
        self._set(live_subscriptions(self.path, self.store))
        self._loaded = True
        return self._current

    def refresh(self) -> bool:
        """Reload (blocking); True when the set changed. Failures keep the current set."""
        if not self._loaded:
            before = self._current
            return self.load() != before
        try:
            store = self.store
            subs = load_live(self.path, store) if store is not None else load_subscriptions(self.path)
        except FinpulseError as exc:
            logger.warning("subscriptions reload failed, keeping %d; error=%s", len(self._current), exc)
            return False
        return self._set(subs)

    def _set(self, subs: Subscriptions) -> bool:
        old = {s.id: s for s in self._current}
        new = {s.id: s for s in subs}
        self._current = subs
        if old == new and self._loaded:
            return False
        logger.info(
            "subscriptions live count=%d added=%s removed=%s changed=%s",
            len(new), _ids(new.keys() - old.keys()), _ids(old.keys() - new.keys()),
            _ids(k for k in new.keys() & old.keys() if new[k] != old[k]),
        )  # fmt: skip
        if self.on_change is not None:
            self.on_change(subs)
        return True

    async def start(self) -> None:
        """Load (if not yet) and start reloading every `refresh_s` seconds."""
        if not self._loaded:
            await asyncio.to_thread(self.load)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="subscriptions-refresh")

    async def stop(self) -> None:
        """Stop reloading; idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.store is not None:
            await asyncio.to_thread(self.store.stop)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await asyncio.to_thread(self.refresh)
            except Exception:  # one reload: never let it end the refresh loop
                logger.exception("subscriptions reload crashed; retrying in %.0f s", self.refresh_s)


def _ids(ids: Iterable[str]) -> str:
    return ",".join(sorted(ids)) or "-"
