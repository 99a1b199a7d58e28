"""AlertDispatcher: `alerts.events` -> groups -> sinks, at least once, never twice.

Per record: decode the AlertEvent (undecodable: dead-letter, go on), queue it
in its group (`grouping.Grouper`). When a group is due, every sink gets its
notifications: fired alerts as one message (split past
`render.MAX_ALERTS_PER_MESSAGE`), resolved alerts as replies in the thread of
the message that carried their fired alert. A Kafka offset is committed only
once every record before it was accepted by every sink (or dead-lettered).

Never twice: the delivery ledger records each (sink, alert_id) before and
after the post. Alerts already `sent` are skipped (redelivery after a crash
between post and commit); alerts left `sending` (a crash mid-post) are first
looked up at the destination (`AlertSink.find_delivered`).

Failures: rate limits, 5xx and timeouts retry with backoff up to
`max_attempts`, then the group waits `group_interval_s` (or a longer
Retry-After) and tries again (its offsets stay uncommitted); a rejection
(unknown channel) dead-letters the events with the reason; a refused token
(ConfigError) stops the dispatcher.
Run one dispatcher per ledger file.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from finpulse.errors import ConfigError, InvalidRecord, PermanentError
from finpulse.kafka_auth import client_options
from finpulse.schema import AlertEvent, DeadLetter, utcnow
from finpulse.settings import AlertsSettings, KafkaSettings
from finpulse.topics import describe_group, send_dead_letter, stop_consumer

from .grouping import Grouper, group_key
from .ledger import DeliveryLedger
from .metrics import DELIVERED
from .render import MAX_ALERTS_PER_MESSAGE
from .retry import with_retries
from .sinks.base import AlertSink, Notification, RateLimited, SinkUnavailable
from .subscriptions import Subscription

logger = logging.getLogger(__name__)
# What a bug turning one alert into a message raises (ConfigError and OSError are none of these).
RENDERING_BUGS = (ValueError, TypeError, KeyError, IndexError, AttributeError)
STAGE = "alerts"
# Beyond its session timeout, how long a dispatcher that died may take to leave its group.
JOIN_SLACK_S = 5.0


@dataclass(frozen=True)
class Pending:
    """One consumed record waiting for delivery."""

    event: AlertEvent
    channel: str
    tp: TopicPartition
    offset: int
    key: bytes | None
    value: bytes | None


class AlertDispatcher:
    """Consumes alert events and delivers them through the sinks (see module doc)."""

    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        settings: AlertsSettings,
        sinks: Sequence[AlertSink],
        subscriptions: Sequence[Subscription],
        ledger: DeliveryLedger,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not sinks:
            raise ValueError("a dispatcher needs at least one sink")
        self._kafka = kafka
        self._settings = settings
        self._sinks = list(sinks)
        self._subs = {s.id: s for s in subscriptions}
        self._ledger = ledger
        self._clock = clock
        self._wall = wall_clock
        self._grouper: Grouper[Pending] = Grouper()
        self._inflight: dict[TopicPartition, set[int]] = defaultdict(set)
        self._next_offset: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._started: list[AlertSink] = []
        self.delivered = 0  # alerts accepted by the sinks since start (for logs and tests)

    def set_subscriptions(self, subscriptions: Sequence[Subscription]) -> None:
        """Use this set from now on (alerts.live reloads it); queued groups keep their timing."""
        self._subs = {s.id: s for s in subscriptions}

    async def start(self) -> None:
        """Check the sinks (ConfigError on a refused token), open the ledger and Kafka."""
        for sink in self._sinks:
            await sink.start()
            self._started.append(sink)
        self._ledger.open()
        await self._alone()
        self._producer = AIOKafkaProducer(**client_options(self._kafka), acks="all", enable_idempotence=True)
        await self._producer.start()
        self._consumer = AIOKafkaConsumer(
            **client_options(self._kafka),
            group_id=self._settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=int(self._settings.session_timeout_s * 1000),
            heartbeat_interval_ms=int(self._settings.session_timeout_s * 1000 / 3),
        )
        self._consumer.subscribe([self._kafka.topics.alerts], listener=_Rebalance(self))
        await self._consumer.start()
        logger.info(
            "dispatcher started topic=%s group=%s sinks=%s",
            self._kafka.topics.alerts,
            self._settings.consumer_group,
            ",".join(s.name for s in self._sinks),
        )

    async def _alone(self) -> None:
        """Refuse to start beside another dispatcher of the group: each keeps its own delivery
        ledger, so two would not thread each other's resolves, nor skip each other's deliveries,
        and each would send every digest. One that died leaves within its session timeout."""
        group = self._settings.consumer_group
        deadline = time.monotonic() + self._settings.session_timeout_s + JOIN_SLACK_S
        while members := (await describe_group(self._kafka, group))[1]:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"another dispatcher consumes the alerts as group {group} ({', '.join(members)}): run "
                    "one `finpulse alerts` per deployment (its delivery ledger is a file of its own)"
                )
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        """Stop consuming; undelivered events stay uncommitted for the next run. Idempotent."""
        consumer, self._consumer = self._consumer, None
        producer, self._producer = self._producer, None
        if consumer is not None:
            await stop_consumer(consumer)
        if producer is not None:
            await producer.stop()
        while self._started:
            await self._started.pop().stop()
        self._ledger.close()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume, group, deliver and commit until `stop` is set (or cancelled)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            await self.poll_once()

    async def poll_once(self, max_wait_s: float = 0.5) -> None:
        """One turn: fetch records, deliver the groups now due, commit what is done."""
        consumer = self._live_consumer()
        due = self._grouper.next_due()
        wait = max_wait_s if due is None else min(max_wait_s, max(0.0, due - self._clock()))
        batches = await consumer.getmany(timeout_ms=int(wait * 1000), max_records=500)
        for tp, records in batches.items():
            for record in records:
                await self._accept(tp, record.offset, record.key, record.value)
        for key, items in self._grouper.due(self._clock()):
            await self._flush(key, items)
        await self._commit()

    async def _accept(self, tp: TopicPartition, offset: int, key: bytes | None, value: bytes | None) -> None:
        self._next_offset[tp] = max(self._next_offset.get(tp, 0), offset + 1)
        try:
            event = AlertEvent.from_bytes(value)
        except InvalidRecord as exc:
            await self._dead_letter(exc, tp, offset, key, value)
            return
        sub = self._subs.get(event.subscription_id)
        # The subscription's channel now: one corrected since the alert was made (the alert
        # dead-lettered for channel_not_found, then replayed) goes where it was corrected to.
        channel = sub.channel if sub is not None else (event.channel or "")
        if all(self._sent(sink, event.alert_id) for sink in self._sinks):
            logger.info(
                "skipping delivered alert_id=%s partition=%d offset=%d", event.alert_id, tp.partition, offset
            )
            return
        item = Pending(event, channel, tp, offset, key, value)
        self._inflight[tp].add(offset)
        self._grouper.add(
            group_key(event, sub, channel),
            item,
            wait_s=self._group_wait(sub),
            interval_s=self._group_interval(sub),
            now=self._clock(),
        )

    def _group_wait(self, sub: Subscription | None) -> float:
        value = sub.group_wait_s if sub is not None else None
        return self._settings.group_wait_s if value is None else value

    def _group_interval(self, sub: Subscription | None) -> float:
        value = sub.group_interval_s if sub is not None else None
        return self._settings.group_interval_s if value is None else value

    async def _flush(self, key: str, items: list[Pending]) -> None:
        """Deliver one due group through every sink; settle, retry later or dead-letter."""
        unique = list({p.event.alert_id: p for p in items}.values())
        failed: dict[int, Pending] = {}
        retry_after_s = 0.0
        for sink, state in ((sink, state) for sink in self._sinks for state in ("fired", "resolved")):
            # Fired first: a resolve in the same group then finds its fired message's thread.
            for notification, members in self._notifications(sink, key, unique, state):
                deferred = {p.event.alert_id for p in failed.values()}
                if any(p.event.fired_alert_id in deferred for p in members):
                    failed.update({id(p): p for p in members})  # its fired alert goes first
                    continue
                retry, wait_s = await self._send(sink, key, notification, members)
                failed.update(retry)
                retry_after_s = max(retry_after_s, wait_s)
        for p in items:
            if id(p) not in failed:
                self._inflight[p.tp].discard(p.offset)
        if failed:
            sub = self._subs.get(unique[0].event.subscription_id)
            # Not before the destination asked (a Retry-After too long for with_retries to wait out).
            later = self._clock() + max(1.0, self._group_interval(sub), retry_after_s)
            self._grouper.retry(key, list(failed.values()), later)

    async def _send(
        self, sink: AlertSink, key: str, notification: Notification, members: list[Pending]
    ) -> tuple[dict[int, Pending], float]:
        """Deliver one message; returns the members to retry later and the longest Retry-After
        the sink asked for. One the sink refuses, or that a bug fails on while rendering one
        alert, is tried again alert by alert, so one bad alert is dead-lettered alone and never
        stops the dispatcher. What is no alert's fault (a refused token: ConfigError, the
        ledger's disk) stops it, as before."""
        try:
            await self._deliver(sink, notification)
        except SinkUnavailable as exc:
            logger.warning("delivery deferred sink=%s group=%s error=%s", sink.name, key, exc)
            return {id(p): p for p in members}, exc.retry_after_s if isinstance(exc, RateLimited) else 0.0
        except (PermanentError, *RENDERING_BUGS) as exc:
            if len(members) > 1:
                logger.warning("delivery refused sink=%s group=%s error=%s; one by one", sink.name, key, exc)
                later: dict[int, Pending] = {}
                retry_after_s = 0.0
                for p in members:
                    retry, wait_s = await self._send(sink, key, replace(notification, events=(p.event,)), [p])
                    later.update(retry)
                    retry_after_s = max(retry_after_s, wait_s)
                return later, retry_after_s
            if not isinstance(exc, PermanentError):
                logger.exception("delivery failed sink=%s alert_id=%s", sink.name, members[0].event.alert_id)
            await self._dead_letter(
                exc, members[0].tp, members[0].offset, members[0].key, members[0].value, sink.name
            )
        return {}, 0.0

    def _notifications(
        self, sink: AlertSink, key: str, items: list[Pending], state: str
    ) -> list[tuple[Notification, list[Pending]]]:
        """The messages of one state one group makes for one sink, skipping alerts already sent."""
        todo = [p for p in items if p.event.state == state and not self._sent(sink, p.event.alert_id)]
        by_thread: dict[tuple[str, str, str | None], list[Pending]] = defaultdict(list)
        for p in todo:
            thread, channel = None, p.channel
            if p.event.state == "resolved" and p.event.fired_alert_id:
                fired = self._ledger.get(sink.name, p.event.fired_alert_id)
                if fired is not None and fired.state == "sent" and fired.ref is not None:
                    # In its alert's thread, where that went: the subscription's channel may have changed.
                    thread, channel = fired.ref, fired.channel
            by_thread[(p.event.state, channel, thread)].append(p)
        out = []
        for (state, channel, thread), members in by_thread.items():
            for i in range(0, len(members), MAX_ALERTS_PER_MESSAGE):
                chunk = members[i : i + MAX_ALERTS_PER_MESSAGE]
                events = tuple(p.event for p in chunk)
                kind: Literal["fired", "resolved"] = "fired" if state == "fired" else "resolved"
                names = {e.subscription_id: self._name(e.subscription_id) for e in events}
                out.append(
                    (Notification(key, channel, kind, events, thread, subscription_names=names), chunk)
                )
        return out

    def _name(self, subscription_id: str) -> str:
        sub = self._subs.get(subscription_id)
        return sub.name if sub is not None else ""

    def _sent(self, sink: AlertSink, alert_id: str) -> bool:
        record = self._ledger.get(sink.name, alert_id)
        return record is not None and record.state == "sent"

    async def _deliver(self, sink: AlertSink, n: Notification) -> None:
        """Post one notification unless the destination already has it; record the outcome.

        Every attempt (the first after a restart, and each retry after a timeout, when
        the post may have landed) first asks the sink about alerts left `sending`.
        """
        pending: Notification | None = n

        async def attempt() -> None:
            nonlocal pending
            pending = await self._reconcile(sink, pending) if pending is not None else None
            if pending is None:
                return
            self._ledger.begin(sink.name, pending.alert_ids, pending.channel, self._wall())
            ref = await sink.send(pending)
            self._ledger.sent(sink.name, pending.alert_ids, pending.channel, ref, self._wall())
            self.delivered += len(pending.events)
            DELIVERED.labels(sink.name, pending.state).inc(len(pending.events))
            logger.info(
                "delivered sink=%s state=%s alerts=%d channel=%s ref=%s",
                sink.name,
                pending.state,
                len(pending.events),
                pending.channel,
                ref,
            )
            pending = None

        await with_retries(attempt, attempts=self._settings.max_attempts, what=f"{sink.name}:{n.delivery_id}")

    async def _reconcile(self, sink: AlertSink, n: Notification) -> Notification | None:
        """`n` without the alerts the destination already shows; None if nothing is left."""
        earlier = [r for a in n.alert_ids if (r := self._ledger.get(sink.name, a)) is not None]
        if not earlier:
            return n
        found = await sink.find_delivered(n, min(r.started_at for r in earlier))
        for alert_id, (channel, ref) in found.items():
            self._ledger.sent(sink.name, [alert_id], channel, ref, self._wall())
            logger.info("already delivered sink=%s alert_id=%s (not posting again)", sink.name, alert_id)
        rest = tuple(e for e in n.events if e.alert_id not in found)
        if not rest:
            return None
        return replace(n, events=rest)

    async def _dead_letter(
        self,
        error: Exception,
        tp: TopicPartition,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        sink: str | None = None,
    ) -> None:
        letter = DeadLetter.wrap(
            source_topic=tp.topic,
            stage=f"{STAGE}:{sink}" if sink else STAGE,
            error=error,
            value=value,
            key=key,
            partition=tp.partition,
            offset=offset,
        )
        await send_dead_letter(self._live_producer(), self._kafka.topics, letter)
        self._inflight[tp].discard(offset)

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        """Commit, per partition, up to the oldest record not yet settled."""
        consumer = self._live_consumer()
        offsets = {}
        for tp, nxt in self._next_offset.items():
            if only is not None and tp not in only:
                continue
            pending = self._inflight.get(tp)
            safe = min(pending) if pending else nxt
            if safe > self._committed.get(tp, -1):
                offsets[tp] = safe
        if offsets:
            await consumer.commit(offsets)
            self._committed.update(offsets)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Before a rebalance: commit what is settled, forget the rest (the new owner redelivers)."""
        if self._consumer is not None:
            await self._commit(only=revoked)
        dropped = self._grouper.drop(lambda p: p.tp in revoked)
        for tp in revoked:
            self._inflight.pop(tp, None)
            self._next_offset.pop(tp, None)
            self._committed.pop(tp, None)
        if dropped:
            logger.info("partitions revoked, pending dropped=%d (redelivered to the new owner)", dropped)

    def _live_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("AlertDispatcher.start() was not called")
        return self._consumer

    def _live_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("AlertDispatcher.start() was not called")
        return self._producer


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, dispatcher: AlertDispatcher) -> None:
        self._dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._dispatcher.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None
