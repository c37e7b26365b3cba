"""Loopback ports for the local stack and the tests: find a free one, see one is free, wait for
a server to listen on one."""

from __future__ import annotations

import socket
import time

from mailgate.errors import ConfigError


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def wait_listening(port: int, timeout: float = 20.0, host: str = "127.0.0.1", *, what: str = "the server") -> None:
    """Return once something accepts connections on host:port; ConfigError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ConfigError(f"{what} does not listen on {host}:{port} after {timeout:.0f} s")
