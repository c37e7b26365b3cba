"""The local stand-in for a customer's outgoing SMTP server: keeps every message it gets."""

from __future__ import annotations

import pathlib
import threading
import time


class OutboxSink:
    """aiosmtpd handler writing each message to `<dir>/<n>.eml` and keeping it in `.messages`."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.dir = pathlib.Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.messages: list[dict] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        with self._lock:
            n = len(self.messages) + 1
            path = self.dir / f"{int(time.time())}-{n:05d}.eml"
            path.write_bytes(raw)
            self.messages.append({"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos),
                                  "raw": raw, "path": str(path)})
        return "250 OK stored"
