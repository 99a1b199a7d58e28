"""A secured Kafka cluster: every client signs in with the settings' SASL user (the session
broker's second listener, SASL_PLAINTEXT/PLAIN), and a wrong password is one clear error."""

from __future__ import annotations

import uuid

import faust
import pytest
from pydantic import SecretStr, ValidationError

from finpulse.errors import BrokerUnavailable
from finpulse.settings import KafkaSettings
from finpulse.topics import ensure_topics
from ingest.producer import NewsProducer
from stream.app import broker_credentials
from tests.conftest import SASL_PASSWORD, SASL_USER, own_topics
from tests.fixtures.store import T0, scored
from tests.kafka_io import read_topic


def _secured(kafka: KafkaSettings, port: int, password: str = SASL_PASSWORD) -> KafkaSettings:
    return own_topics(kafka).model_copy(
        update={
            "bootstrap": f"127.0.0.1:{port}",
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_username": SASL_USER,
            "sasl_password": SecretStr(password),
        }
    )


async def test_clients_sign_in_to_a_secured_cluster(kafka_settings: KafkaSettings, sasl_port: int) -> None:
    kafka = _secured(kafka_settings, sasl_port)
    await ensure_topics(kafka)  # the admin client
    item = scored("s1", T0, "Markets", "negative", -0.7).item
    async with NewsProducer(kafka) as producer:  # ingest's producer
        await producer.publish([item])
    [record] = await read_topic(kafka, kafka.topics.raw, expect=1)  # a consumer
    assert record.key == b"s1"
    # The Faust worker signs in with the same user: its producer through that listener.
    app = faust.App(f"fp-sasl-{uuid.uuid4().hex[:8]}", broker=f"kafka://{kafka.bootstrap}",
                    broker_credentials=broker_credentials(kafka))  # fmt: skip
    await app.producer.start()
    try:
        await app.producer.send_and_wait(kafka.topics.raw, b"s2", item.to_bytes(), None, None, None)
    finally:
        await app.producer.stop()
    assert len(await read_topic(kafka, kafka.topics.raw, expect=2)) == 2
    assert SASL_PASSWORD not in repr(kafka)  # a secret: never in logs or errors


async def test_a_wrong_password_is_one_clear_error(kafka_settings: KafkaSettings, sasl_port: int) -> None:
    kafka = _secured(kafka_settings, sasl_port, password="wrong")
    with pytest.raises(BrokerUnavailable) as info:
        await ensure_topics(kafka)
    said = str(info.value)
    assert f"or sign in there as '{SASL_USER}' (SASL_PLAINTEXT, PLAIN)" in said
    assert "FINPULSE_KAFKA_SASL_PASSWORD" in said
    assert "wrong" not in said  # the password is never said


def test_sasl_needs_a_user_and_a_password() -> None:
    with pytest.raises(
        ValidationError, match="FINPULSE_KAFKA_SASL_USERNAME and FINPULSE_KAFKA_SASL_PASSWORD"
    ):
        KafkaSettings(security_protocol="SASL_SSL", sasl_username="finpulse")
