"""finpulse.metrics: where a process serves its /metrics."""

from __future__ import annotations

import socket
from pathlib import Path

from finpulse.metrics import serve_metrics
from finpulse.settings import StreamSettings
from tests.conftest import free_port


def _listening(port: int) -> set[str]:
    """The IPv4 addresses a socket listens on at `port` (Linux's table of TCP sockets)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))  # little-endian
    return found


def test_metrics_are_served_on_loopback_by_default() -> None:
    """On every interface, anyone on the network read the process's metrics (its sources' names,
    its errors)."""
    port = free_port()
    serve_metrics(port, "FINPULSE_TEST_METRICS_PORT", StreamSettings().metrics_host)
    assert _listening(port) == {"127.0.0.1"}
