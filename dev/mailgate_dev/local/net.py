"""Loopback ports for the local stack and the tests: find a free one, see one is free, wait for
a server to listen on one."""

from __future__ import annotations

import socket
import threading
import time
from http.server import ThreadingHTTPServer

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


class LoopbackHttp:
    """An HTTP server on a loopback port in a thread of its own (the Odoo stand-in, the webhook
    receiver, the local HTTP API): `start()`, `stop()`, or `with`. A subclass has `host`, `port`
    (0: any free one), `_handler` (a BaseHTTPRequestHandler class) and `_owner_attr`, the name
    under which the handler finds the subclass's instance."""

    host: str
    port: int
    _handler: type
    _owner_attr = "owner"

    def start(self):
        handler = type("Handler", (self._handler,), {self._owner_attr: self})
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
