"""A listening port taken up front, so a port in use is a clear error before anything starts."""

from __future__ import annotations

import socket

from finpulse.errors import ConfigError


def listen_socket(host: str, port: int, setting: str) -> socket.socket:
    """A TCP socket bound to (host, port) for a server to listen on (uvicorn's `sockets=`).

    Raises:
        ConfigError: the port is in use or the address is not this host's, naming `setting`.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: restarts reuse it at once
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}): is another finpulse api (or demo) "
            f"running there? Stop it, or set {setting} to another port"
        ) from exc
    sock.set_inheritable(True)
    return sock
