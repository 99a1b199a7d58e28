"""The Faust app: topics, tables, services and agents of one worker.

`create_app(settings)` builds everything from settings; `finpulse worker`
runs it. Several workers with the same `stream.app_id` share the partitions.
"""

from __future__ import annotations

import logging

import faust
from faust.types.auth import CredentialsT as Credentials

from alerts.live import LiveSubscriptions
from finpulse.kafka_auth import ssl_context
from finpulse.settings import KafkaSettings, Settings
from stream.detect import register_detect
from stream.score import register_score
from stream.services import ClassifierService, SubscriptionsService
from stream.sink import HistorySink, StoreService
from stream.topics import PipelineTopics
from stream.windowing import register_windowing

logger = logging.getLogger(__name__)

PRODUCER_LINGER_S = 0.05
# Per-partition batch limit: aiokafka sends a full batch at once, so at the default
# 16 KB a burst of scored stories and changelog writes became one produce request
# every few records (the broker, on the same 2 cores, took 0.25 cores for them).
PRODUCER_MAX_BATCH_BYTES = 512 * 1024  # under the broker's 1 MB message.max.bytes


def broker_credentials(kafka: KafkaSettings) -> Credentials | None:
    """The Faust app's sign-in: the same settings as every other client's (finpulse.kafka_auth)."""
    if kafka.security_protocol == "PLAINTEXT":
        return None
    context = ssl_context(kafka) if kafka.security_protocol.endswith("SSL") else None
    if kafka.security_protocol == "SSL":
        return faust.SSLCredentials(context)
    assert kafka.sasl_password is not None  # the settings check it
    return faust.SASLCredentials(
        username=kafka.sasl_username, password=kafka.sasl_password.get_secret_value(),
        ssl_context=context, mechanism=kafka.sasl_mechanism,
    )  # fmt: skip


def create_app(settings: Settings) -> faust.App:
    """A Faust app running the whole pipeline from news.raw to alerts.events."""
    kafka = settings.kafka
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.stream.app_id,
        broker=[f"kafka://{server}" for server in kafka.bootstrap.split(",")],
        broker_credentials=broker_credentials(kafka),
        store=settings.stream.table_store,
        datadir=str(datadir),
        # Internal topics (changelogs, re-keying) match the pipeline's partitions
        # so tables stay co-partitioned with the topics that feed them.
        topic_partitions=kafka.topics.partitions,
        topic_replication_factor=kafka.topics.replication_factor,
        topic_disable_leader=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.stream.session_timeout_s,
        producer_acks=-1,
        # Let records gather for 50 ms into one produce request per partition: each story
        # fans out to several topics, and one request per record cost the worker (and the
        # broker) more CPU than the windows. 50 ms a hop is small beside the 2 s alert target.
        producer_linger=PRODUCER_LINGER_S,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        web_enabled=False,
    )
    topics = PipelineTopics.declare(app, kafka.topics)

    classifier = ClassifierService(
        settings.model, settings.stream.classifier_processes, settings.stream.classifier_lanes
    )
    # The children load the model while Faust starts and joins the group: a worker
    # holding taken events while it loads stalls the group's rebalance.
    classifier.launch()
    subscriptions = _live_subscriptions(settings)
    # Faust starts services one after the other: subscription changes are picked up while the
    # classifier still loads (under load that took over 30 s in CI).
    app.service(SubscriptionsService(subscriptions))
    app.service(classifier)
    logger.info("worker app=%s subscriptions=%d", settings.stream.app_id, len(subscriptions.current))
    register_score(app, topics, classifier, settings)
    register_windowing(app, topics, settings)
    register_detect(app, topics, settings, lambda: subscriptions.current)
    if settings.stream.history:
        store = StoreService(settings.store)
        app.service(store)
        app.service(HistorySink(app, settings, topics, store))
    return app


def _live_subscriptions(settings: Settings) -> LiveSubscriptions:
    """The store's subscriptions seeded from the file (the file alone without history), loaded now."""
    from store import open_store

    store = open_store(settings.store) if settings.stream.history else None
    live = LiveSubscriptions(
        settings.alerts.subscriptions_file, store, refresh_s=settings.alerts.subscriptions_refresh_s
    )
    live.load()
    return live
