"""A local SMTP server (aiosmtpd) that records what it receives: the outbound sink.

Used by the integration tests (tests/fixtures/smtp.py), the benchmark and the local stack. It
speaks STARTTLS (587-style) or implicit TLS (465-style) with a certificate from a local CA
(mailgate_dev.local.tls.make_ca), requires AUTH PLAIN/LOGIN, and can be told to misbehave: answer a
given recipient with any reply (421, 451, 550...), or drop the connection once it has accepted N
messages.

Run standalone: `python -m mailgate_dev.local.smtp_sink --port 2587 --dir /tmp/sink` prints the CA
path and serves until interrupted.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import warnings
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .tls import LocalCA, make_ca


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    mail_options: list[str] = field(default_factory=list)
    login: str = ""
    tls: bool = False


class RecordingHandler:
    """aiosmtpd handler: records each accepted message; the test controls set failure replies."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        #: recipient (lower-case) -> full reply line, e.g. "550 5.1.1 no such user"
        self.rcpt_replies: dict[str, str] = {}
        #: abort the connection at the next MAIL FROM once this many messages were accepted (once)
        self.drop_after: int | None = None
        #: take the next message, then abort the connection instead of answering (once)
        self.drop_before_reply = False
        self.connections = 0
        self.drops = 0
        self._lock = threading.Lock()

    # -- controls ---------------------------------------------------------------
    def reply_to_rcpt(self, address: str, reply: str) -> None:
        self.rcpt_replies[address.lower()] = reply

    def drop_connection_after(self, n: int) -> None:
        self.drop_after = n

    def drop_before_data_reply(self) -> None:
        self.drop_before_reply = True

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
        self.rcpt_replies.clear()
        self.drop_after = None

    # -- aiosmtpd hooks ----------------------------------------------------------
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.drop_after is not None and len(self.messages) >= self.drop_after:
            self.drop_after = None
            self.drops += 1
            server.transport.abort()  # no reply at all: a connection lost mid-batch
            return "421 4.4.2 connection dropped"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.rcpt_replies.get(address.lower())
        if reply:
            if reply.startswith("421"):
                # RFC 5321 §3.8: a 421 announces that the server closes the connection
                asyncio.get_running_loop().call_later(0.01, server.transport.close)
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        with self._lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content
                                          or envelope.content), list(envelope.mail_options), login,
                                          server.transport.get_extra_info("ssl_object") is not None))
            n = len(self.messages)
        if self.drop_before_reply:
            self.drop_before_reply = False
            self.drops += 1
            server.transport.abort()  # the client cannot know whether the message was taken
            return "451 4.4.2 connection dropped"
        return f"250 2.0.0 OK queued as m{n}"


class _Auth:
    def __init__(self, users: dict[str, str]):
        self.users = users

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = self.users.get(auth_data.login.decode(errors="replace")) == auth_data.password.decode(errors="replace")
        return AuthResult(success=ok, handled=False, auth_data=auth_data)


class _Controller(Controller):
    def factory(self):
        # implicit TLS: aiosmtpd warns (per connection) about AUTH without STARTTLS, but the whole
        # session is TLS already
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return super().factory()

    def _trigger_server(self):
        # the stock trigger wraps the client socket with the *server* context for implicit TLS;
        # a plain client context that trusts our CA does the same job without surprises
        import socket
        with socket.create_connection((self.hostname, self.port), timeout=5) as s:
            if self.ssl_context:
                ctx = ssl.create_default_context(cafile=str(self._cafile))
                with ctx.wrap_socket(s, server_hostname=self.hostname) as t:
                    t.recv(1024)
            else:
                s.recv(1024)


class SmtpSink:
    """aiosmtpd on 127.0.0.1 with TLS ("starttls" or "ssl") and AUTH; `.messages` records mail."""

    def __init__(self, tls: LocalCA, *, port: int, security: str = "starttls",
                 users: dict[str, str] | None = None, host: str = "127.0.0.1",
                 hostname: str = "sink.mailgate.test") -> None:
        self.tls, self.port, self.security, self.host = tls, port, security, host
        self.users = dict(users or {"mailgate": "s3cret"})
        self.handler = RecordingHandler()
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
        common = dict(hostname=host, port=port, server_hostname=hostname, authenticator=_Auth(self.users),
                      auth_required=True, enable_SMTPUTF8=True, ready_timeout=10)
        if security == "ssl":
            # implicit TLS: the whole session is encrypted, so AUTH needs no STARTTLS first
            with warnings.catch_warnings():  # aiosmtpd warns about AUTH without STARTTLS; TLS is implicit here
                warnings.simplefilter("ignore")
                self.controller = _Controller(self.handler, ssl_context=ctx, auth_require_tls=False, **common)
        elif security == "starttls":
            self.controller = _Controller(self.handler, tls_context=ctx, require_starttls=True,
                                          auth_require_tls=True, **common)
        else:
            raise ValueError(f"security must be starttls or ssl, not {security!r}")
        self.controller._cafile = tls.ca_file

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages

    @property
    def ca_path(self) -> str:
        return str(self.tls.ca_file)

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent: a test may stop the server to play an outage)."""
        if self.controller._thread is not None:
            self.controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main(argv=None) -> int:  # pragma: no cover - manual tool
    import argparse
    import time

    p = argparse.ArgumentParser(description="local SMTP sink with STARTTLS/implicit TLS and AUTH")
    p.add_argument("--port", type=int, default=2587)
    p.add_argument("--security", choices=["starttls", "ssl"], default="starttls")
    p.add_argument("--dir", default="/tmp/mailgate-smtp-sink")
    p.add_argument("--user", default="mailgate")
    p.add_argument("--password", default="s3cret")
    a = p.parse_args(argv)
    tls = make_ca(a.dir)
    sink = SmtpSink(tls, port=a.port, security=a.security, users={a.user: a.password}).start()
    print(f"listening on 127.0.0.1:{a.port} ({a.security}); CA {tls.ca_file}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sink.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
