"""A subscription added to the store (as the API does) fires in a running worker, no restart.

Real broker, real Faust worker process, real quick-trained model, real DuckDB file.
"""

from __future__ import annotations

from pathlib import Path

from alerts.subscriptions import Subscription
from finpulse.processes import CliProcess, settings_env
from finpulse.schema import AlertEvent
from finpulse.settings import Settings
from ingest.replay import publish_replay_async
from ingest.sample import write_planted_spike
from store import DuckDBStore
from tests.conftest import wait_for_log
from tests.fixtures.stream import REPLAY_START
from tests.kafka_io import read_topic

# The file watches nothing the replay carries: only the store's subscription can fire.
FILE = """
[[subscription]]
id = "zzz-desk"
channel = "#zzz"
filter = { tickers = ["ZZZZ"] }
"""
NEW = {
    "id": "acme-live",
    "channel": "#acme-live",
    "filter": {"tickers": ["ACME"]},
    "detector": {"window": "tumbling", "min_volume": 5, "min_rise": 0.2, "significance": 0.01},
}
ALERT_WAIT_S = 90


async def test_a_subscription_added_to_the_store_fires_without_a_restart(
    stream_settings: Settings, tmp_path: Path
) -> None:
    subs_file = tmp_path / "live-subscriptions.toml"
    subs_file.write_text(FILE)
    alerts = stream_settings.alerts.model_copy(
        update={"subscriptions_file": subs_file, "subscriptions_refresh_s": 0.5}
    )
    settings = stream_settings.model_copy(update={"alerts": alerts})
    truth = write_planted_spike(
        settings.model.train_data_dir, tmp_path / "replay.jsonl", start=REPLAY_START, spike=True
    )
    worker = CliProcess(["worker", "--loglevel", "info"], settings_env(settings), tmp_path / "worker.log")
    try:
        worker.start()
        await wait_for_log(worker, "subscriptions live count=1 added=zzz-desk", 60)
        db = DuckDBStore.from_settings(settings.store.model_copy(update={"lock_timeout_s": 30.0}))
        with db:  # as POST /api/v1/subscriptions stores it
            sub = Subscription.model_validate(NEW)
            db.put_subscription(sub.id, sub.model_dump(mode="json", by_alias=True))
        await wait_for_log(worker, "subscriptions live count=2 added=acme-live", 30)

        report = await publish_replay_async(settings.kafka, truth.path, speed=0)
        assert report.published == truth.items
        raw = await read_topic(settings.kafka, settings.kafka.topics.alerts, expect=1, timeout_s=ALERT_WAIT_S)
        fired = [e for e in (AlertEvent.from_bytes(r.value) for r in raw) if e.state == "fired"]
        assert fired, worker.tail()
        assert {(e.subscription_id, e.entity_kind, e.entity, e.channel) for e in fired} == {
            ("acme-live", "ticker", "ACME", "#acme-live")
        }
        assert truth.spike_start <= fired[0].window_start < truth.spike_end
    finally:
        worker.stop()
