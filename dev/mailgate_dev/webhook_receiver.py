"""A webhook receiver that verifies Standard Webhooks signatures with the `standardwebhooks`
package, as an application's endpoint would, for the tests, the bench and `mailgate dev`.

It keeps each verified delivery once (`received`), counts the repeats of a `webhook-id` it has
already taken (`duplicates`, answered 200 as the specification asks: the sender may stop) and
the requests whose signature did not verify (`rejected`, answered 401), and can be made
unavailable (`available = False`: 503).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from .local.net import LoopbackHttp


@dataclass
class WebhookReceiver(LoopbackHttp):
    #: the secret(s) this endpoint verifies with (a rotation: the new one, or the old one meanwhile)
    secrets: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = 0
    path: str = "/hooks/mailgate"
    available: bool = True
    received: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    duplicates: int = 0
    rejected: int = 0
    requests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{self.path}"

    def take(self, body: bytes, headers: dict[str, str]) -> int:
        """Verify and keep one request; the HTTP status to answer."""
        payload = None
        for secret in self.secrets:
            try:
                payload = Webhook(secret).verify(body, headers)
                break
            except WebhookVerificationError:
                continue
        with self._lock:
            self.requests += 1
            if payload is None:
                self.rejected += 1
                return 401
            wid = {k.lower(): v for k, v in headers.items()}["webhook-id"]
            if wid in self._ids:
                self.duplicates += 1
                return 200
            self._ids.add(wid)
            self.received.append(payload)
            self.headers.append(dict(headers))
        return 204


class _Handler(BaseHTTPRequestHandler):
    hook: WebhookReceiver
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.hook.available:
            status = 503
        elif self.path != self.hook.path:
            status = 404
        else:
            status = self.hook.take(body, dict(self.headers.items()))
        answer = json.dumps({"status": status}).encode() if status != 204 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        if answer:
            self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(answer)


WebhookReceiver._handler, WebhookReceiver._owner_attr = _Handler, "hook"
