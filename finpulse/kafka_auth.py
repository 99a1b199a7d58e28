"""How finpulse's Kafka clients reach a secured cluster: one place for aiokafka's options.

Every producer, consumer and admin client of ours (ingest, the worker's own clients, the
dispatcher, the API, the CLI) is built with `client_options(settings.kafka)`; the Faust
app takes the same settings as its broker credentials (`stream.app`).
"""

from __future__ import annotations

import ssl
from typing import Any

from finpulse.errors import ConfigError
from finpulse.settings import KafkaSettings


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """aiokafka's connection options: bootstrap servers, security protocol, TLS context, SASL."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        assert kafka.sasl_password is not None  # the settings check it
        options |= {
            "sasl_mechanism": kafka.sasl_mechanism,
            "sasl_plain_username": kafka.sasl_username,
            "sasl_plain_password": kafka.sasl_password.get_secret_value(),
        }
    return options


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """The TLS context for the brokers: their CA (default: the system's), our certificate if any."""
    try:
        context = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
        if kafka.ssl_certfile is not None and kafka.ssl_keyfile is not None:
            context.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"Kafka TLS: {exc}; check FINPULSE_KAFKA_SSL_CAFILE, _SSL_CERTFILE and _SSL_KEYFILE"
        ) from exc
    return context
