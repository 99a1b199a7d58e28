"""Which clients and hosts count as this machine (api/auth.py)."""

from __future__ import annotations

from api.auth import loopback


def test_loopback_hosts() -> None:
    assert loopback("127.0.0.1")
    assert loopback("::1")
    assert loopback("localhost")
    assert loopback("::ffff:127.0.0.1")  # an IPv4 client of a server on "::"
    assert not loopback("0.0.0.0")
    assert not loopback("::ffff:10.0.0.5")
    assert not loopback("example.com")
