"""`finpulse api`'s own rules."""

from __future__ import annotations

from api.cli import _loopback


def test_loopback_hosts() -> None:
    assert _loopback("127.0.0.1")
    assert _loopback("::1")
    assert _loopback("localhost")
    assert not _loopback("0.0.0.0")
    assert not _loopback("example.com")
