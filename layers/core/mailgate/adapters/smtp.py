"""SmtpSender: sends composed messages through a customer's SMTP host (Odoo's outgoing server).

Port 465 speaks TLS from the first byte (RFC 8314), 587 upgrades with STARTTLS (RFC 3207); the
certificate is verified unless the server item says `verify_tls: false`. Plain text is allowed
only with `allow_plaintext` (never to reach a remote host: for local test sinks). One connection
serves a whole batch; a connection lost between transactions is re-opened once.

Every outcome is classified the same way (RFC 5321 §4.2.1): a 4yz reply, a timeout or a lost
connection is *deferred* (retried later through SQS); a 5yz reply is *failed* for that recipient
(recorded, never retried). If the connection drops after the message data went out but before
the server's final reply, the outcome is *unknown* and the message is not re-sent (it may have
been accepted: sending it again could deliver it twice).
"""

from __future__ import annotations

import re
import smtplib
import socket
import ssl
from typing import Callable

from ..checks import Step
from ..domain import OutgoingServer
from ..errors import ConfigError, PermanentError, TransientError
from ..ports import Envelope, RecipientResult

DEFAULT_TIMEOUT = 30.0


Connect = Callable[[OutgoingServer, ssl.SSLContext, float], smtplib.SMTP]


def ssl_context_for(server: OutgoingServer, *, cafile: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=cafile)
    if not server.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def default_connect(server: OutgoingServer, context: ssl.SSLContext, timeout: float) -> smtplib.SMTP:
    """A connected client that has read the greeting (TLS already up for implicit TLS)."""
    if server.security == "ssl":
        return smtplib.SMTP_SSL(server.host, server.port, timeout=timeout, context=context)
    return smtplib.SMTP(server.host, server.port, timeout=timeout)


def _reply(code, msg) -> str:
    text = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
    return f"{code} {text}".strip()


def _where(server: OutgoingServer) -> str:
    return f"{server.host}:{server.port}"


def _tls_error(server: OutgoingServer, e: Exception) -> PermanentError:
    if isinstance(e, ssl.SSLCertVerificationError):
        return PermanentError(
            f"the certificate of {_where(server)} is not trusted ({e.verify_message}): the server must present "
            "a certificate from a public CA for this host name; set verify_tls false only for a test server",
            code="tls-untrusted")
    return PermanentError(f"TLS with {_where(server)} failed ({e}); check that port {server.port} speaks "
                          f"{'implicit TLS' if server.security == 'ssl' else 'STARTTLS'}", code="tls-failed")


class SmtpSender:
    """Sends to one outgoing server; `send` takes one message and one envelope per recipient."""

    kind = "smtp"

    def __init__(self, server: OutgoingServer, password: str | None, *, ssl_context: ssl.SSLContext | None = None,
                 connect: Connect | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        if server.security == "none" and not server.allow_plaintext:
            raise ConfigError(f"outgoing server {server.name} has security 'none': passwords and mail would "
                              "cross the network in clear; use ssl (465) or starttls (587)", code="plaintext-refused")
        self.server, self.password = server, password
        self.context = ssl_context or ssl_context_for(server)
        self.connect = connect or default_connect
        self.timeout = timeout
        self.conn: smtplib.SMTP | None = None
        self.connections = 0
        #: set once the server said 421 or could not be reached/logged into: the rest of the batch
        #: is answered from it, without hammering the server (or locking the account) again
        self.unavailable: RecipientResult | None = None
        self._idle: Callable[[], None] | None = None

    @property
    def name(self) -> str:
        return self.server.name

    # -- connection ---------------------------------------------------------------
    def open(self) -> smtplib.SMTP:
        """Connect, TLS, AUTH. Raises TransientError (retry) or PermanentError (fix the config)."""
        s = self.server
        try:
            conn = self.connect(s, self.context, self.timeout)
        except (ssl.SSLError, ssl.CertificateError) as e:
            raise _tls_error(s, e) from None
        except smtplib.SMTPConnectError as e:
            raise TransientError(f"{_where(s)} refused the session: {_reply(e.smtp_code, e.smtp_error)}",
                                 code="connect-refused") from None
        except (OSError, smtplib.SMTPException) as e:
            raise TransientError(f"cannot connect to {_where(s)} ({e or type(e).__name__}); check host and port "
                                 "and that the host accepts connections from here", code="connect-failed") from None
        try:
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise PermanentError(f"{_where(s)} does not offer STARTTLS; use security ssl on port 465 "
                                         "or enable STARTTLS on the server", code="starttls-unavailable")
                conn.starttls(context=self.context)
                conn.ehlo()
            if s.user:
                if not conn.has_extn("auth"):
                    raise PermanentError(f"{_where(s)} does not offer AUTH here; it may require TLS first, or the "
                                         "user name should be left empty", code="auth-unavailable")
                conn.login(s.user, self.password or "")
        except smtplib.SMTPAuthenticationError as e:
            self._drop(conn)
            raise PermanentError(f"{_where(s)} refused the password of user {s.user!r} "
                                 f"({_reply(e.smtp_code, e.smtp_error)}); store the right password with "
                                 f"`mailgate server add-smtp {s.name} ...`", code="auth-failed") from None
        except (ssl.SSLError, ssl.CertificateError) as e:
            self._drop(conn)
            raise _tls_error(s, e) from None
        except smtplib.SMTPNotSupportedError as e:
            self._drop(conn)
            raise PermanentError(f"{_where(s)}: {e}", code="unsupported") from None
        except (smtplib.SMTPServerDisconnected, OSError) as e:
            self._drop(conn)
            raise TransientError(f"{_where(s)} closed the connection during set-up ({e})",
                                 code="disconnected") from None
        except PermanentError:
            self._drop(conn)
            raise
        self.conn = conn
        self.connections += 1
        return conn

    @staticmethod
    def _drop(conn) -> None:
        try:
            conn.close()
        except Exception:
            pass

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                self._drop(self.conn)
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sending ------------------------------------------------------------------
    def send(self, envelopes: list[Envelope], raw: bytes, *, smtputf8: bool = False, from_address: str = "",
             idle: Callable[[], None] | None = None) -> list[RecipientResult]:
        """One SMTP transaction per envelope (each has its own VERP sender) over one connection.
        (`from_address` is SES's; SMTP takes the sender from the envelope.)

        `idle`, when given, is called each time a command has been written and the server is
        working on it (before its reply is read): the caller prepares the next message there
        (see `Ahead`), so its CPU work overlaps the server's instead of adding to it.
        """
        self._idle = idle
        results: list[RecipientResult] = []
        reconnected = False
        stop = self.unavailable
        for env in envelopes:
            if stop is not None:
                results.append(RecipientResult(env.rcpt, stop.status, stop.code, stop.detail, stop.error))
                continue
            while True:
                try:
                    if self.conn is None:
                        self.open()
                    results.append(self._transaction(env, raw, smtputf8))
                    break
                except _Retry as r:
                    # lost before the message data went out: nothing was delivered; reconnect once
                    self._drop(self.conn) if self.conn else None
                    self.conn = None
                    if reconnected:
                        stop = RecipientResult(env.rcpt, "deferred", None, r.detail, "disconnected")
                        results.append(stop)
                        break
                    reconnected = True
                except (TransientError, PermanentError) as e:
                    stop = self.unavailable = RecipientResult(
                        env.rcpt, "deferred" if isinstance(e, TransientError) else "failed", None, str(e), e.code)
                    results.append(stop)
                    break
            last = results[-1]
            if last.code == 421:  # RFC 5321 §3.8: the server is closing; the rest wait for a later try
                self._drop(self.conn) if self.conn else None
                self.conn = None
                stop = self.unavailable = RecipientResult("", "deferred", 421, last.detail, "service-unavailable")
        return results

    def _transaction(self, env: Envelope, raw: bytes, smtputf8: bool) -> RecipientResult:
        conn = self.conn
        assert conn is not None
        options: list[str] = []
        if smtputf8:
            if not conn.has_extn("smtputf8"):
                return RecipientResult(env.rcpt, "failed", None, f"{_where(self.server)} does not support SMTPUTF8, "
                                       "needed for a non-ASCII address (RFC 6531)", "smtputf8-unsupported")
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        elif conn.has_extn("size"):
            options = [f"SIZE={len(raw)}"]  # RFC 1870: lets the server refuse an oversize message up front
        stage = "mail"
        try:
            if smtputf8:
                conn.command_encoding = "utf-8"  # RFC 6531 §3.4: UTF-8 addresses in MAIL/RCPT
            code, msg = self._command(conn, "mail", f"FROM:{smtplib.quoteaddr(env.mail_from)}"
                                      + "".join(" " + o for o in options))
            if code != 250:
                return self._refused(env, code, msg, "sender-rejected", conn)
            stage = "rcpt"
            code, msg = self._command(conn, "rcpt", f"TO:{smtplib.quoteaddr(env.rcpt)}")
            if code not in (250, 251):
                return self._refused(env, code, msg, "rcpt-rejected", conn)
            code, msg = self._command(conn, "data", "")
            if code != 354:
                return self._refused(env, code, msg, "data-rejected", conn)
            stage = "data"  # from here on the server may have taken the message
            # RFC 5321 §4.5.2: a line starting with "." gets one more; the data ends with CRLF.CRLF
            q = _LEADING_DOT.sub(b"..", raw)
            conn.send(q + (b"" if q.endswith(b"\r\n") else b"\r\n") + b".\r\n")
            if self._idle:
                self._idle()
            code, msg = conn.getreply()
            if code != 250:
                return self._refused(env, code, msg, "message-rejected", conn)
            return RecipientResult(env.rcpt, "sent", code, _reply(code, msg), transport_id=_queue_id(msg))
        except (smtplib.SMTPServerDisconnected, OSError, smtplib.SMTPResponseException) as e:
            if stage == "data":
                self.conn = None
                return RecipientResult(env.rcpt, "unknown", None, f"the connection to {_where(self.server)} was lost "
                                       f"while the message was being accepted ({e}); not re-sent, to avoid a "
                                       "duplicate", "lost-during-data")
            raise _Retry(f"the connection to {_where(self.server)} was lost ({e or type(e).__name__})") from None

    def _command(self, conn: smtplib.SMTP, cmd: str, arg: str):
        conn.putcmd(cmd, arg)
        if self._idle:
            self._idle()
        return conn.getreply()

    def _refused(self, env: Envelope, code: int, msg, error: str, conn) -> RecipientResult:
        status = "failed" if 500 <= code < 600 else "deferred"
        if code == 421:
            error = "service-unavailable"
        else:
            try:
                conn.rset()  # RFC 5321 §4.1.1.5: abandon this transaction, keep the connection
            except (smtplib.SMTPException, OSError):
                self.conn = None
        return RecipientResult(env.rcpt, status, code, _reply(code, msg), error)


_LEADING_DOT = re.compile(rb"(?m)^\.")


class _Retry(Exception):
    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _queue_id(msg) -> str:
    text = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
    return text.rsplit(" ", 1)[-1] if "queued as" in text.lower() else ""


# --------------------------------------------------------------------------- Test Connection


def test_connection(server: OutgoingServer, password: str | None, *, mail_from: str, rcpt_to: str,
                    ssl_context: ssl.SSLContext | None = None, connect: Connect | None = None,
                    timeout: float = 15.0) -> list[Step]:
    """Odoo's "Test Connection": connect, TLS, AUTH, MAIL FROM, RCPT TO, DATA accepted, then abort.

    After the server answers DATA with 354 the connection is closed without sending the final
    ".": RFC 5321 §4.1.1.4 makes delivery depend on it, so nothing is delivered.
    """
    if server.security == "none" and not server.allow_plaintext:
        return [Step("connect", False, "security 'none' would send the password in clear; use ssl (465) or "
                                       "starttls (587)")]
    ctx = ssl_context or ssl_context_for(server)
    steps: list[Step] = []
    conn = _test_connect(server, ctx, connect or default_connect, timeout, steps)
    if conn is None:
        return steps
    try:
        conn.ehlo()
        if _test_tls(conn, server, ctx, steps) and _test_auth(conn, server, password, steps):
            _test_transaction(conn, mail_from, rcpt_to, steps)
        return steps
    except (smtplib.SMTPException, OSError) as e:
        steps.append(Step("session", False, f"the connection to {_where(server)} failed: {e or type(e).__name__}"))
        return steps
    finally:
        SmtpSender._drop(conn)


def _test_connect(s: OutgoingServer, ctx: ssl.SSLContext, connect: Connect, timeout: float,
                  steps: list[Step]) -> smtplib.SMTP | None:
    where = _where(s)
    try:
        conn = connect(s, ctx, timeout)
    except (ssl.SSLError, ssl.CertificateError) as e:
        steps.append(Step("connect", True, f"reached {where}"))
        steps.append(Step("tls", False, str(_tls_error(s, e))))
        return None
    except (OSError, smtplib.SMTPException) as e:
        reason = "timed out" if isinstance(e, socket.timeout) else (str(e) or type(e).__name__)
        steps.append(Step("connect", False, f"cannot connect to {where}: {reason}; check the host name, the port "
                                            "and that the server accepts connections from here"))
        return None
    steps.append(Step("connect", True, f"connected to {where}"))
    return conn


def _test_tls(conn: smtplib.SMTP, s: OutgoingServer, ctx: ssl.SSLContext, steps: list[Step]) -> bool:
    if s.security == "ssl":
        steps.append(Step("tls", True, f"implicit TLS, {_tls_desc(conn, ctx)}"))
    elif s.security == "starttls":
        if not conn.has_extn("starttls"):
            steps.append(Step("tls", False, f"{_where(s)} does not offer STARTTLS; use ssl on port 465 or enable "
                                            "STARTTLS on the server"))
            return False
        try:
            conn.starttls(context=ctx)
        except (ssl.SSLError, ssl.CertificateError) as e:
            steps.append(Step("tls", False, str(_tls_error(s, e))))
            return False
        conn.ehlo()
        steps.append(Step("tls", True, f"STARTTLS, {_tls_desc(conn, ctx)}"))
    else:
        steps.append(Step("tls", True, "no TLS (allowed by allow_plaintext for this server)"))
    return True


def _test_auth(conn: smtplib.SMTP, s: OutgoingServer, password: str | None, steps: list[Step]) -> bool:
    if not s.user:
        steps.append(Step("auth", True, "no user configured: sending without AUTH"))
        return True
    try:
        conn.login(s.user, password or "")
    except smtplib.SMTPAuthenticationError as e:
        steps.append(Step("auth", False, f"the server refused the password of {s.user!r} "
                                         f"({_reply(e.smtp_code, e.smtp_error)}); store the right password "
                                         f"with `mailgate server add-smtp {s.name} ...`"))
        return False
    except smtplib.SMTPNotSupportedError:
        steps.append(Step("auth", False, f"{_where(s)} offers no AUTH on this connection; check security and "
                                         "user name"))
        return False
    steps.append(Step("auth", True, f"logged in as {s.user}"))
    return True


def _test_transaction(conn: smtplib.SMTP, mail_from: str, rcpt_to: str, steps: list[Step]) -> None:
    code, msg = conn.mail(mail_from)
    if code != 250:
        steps.append(Step("mail-from", False, f"the server refused sender {mail_from} ({_reply(code, msg)}); the "
                                              "account may not send for this address: fix from_filter or the "
                                              "account's allowed senders"))
        return
    steps.append(Step("mail-from", True, f"sender {mail_from} accepted"))
    code, msg = conn.rcpt(rcpt_to)
    if code not in (250, 251):
        steps.append(Step("rcpt-to", False, f"the server refused recipient {rcpt_to} ({_reply(code, msg)})"))
        return
    steps.append(Step("rcpt-to", True, f"recipient {rcpt_to} accepted"))
    conn.putcmd("data")
    code, msg = conn.getreply()
    if code != 354:
        steps.append(Step("data", False, f"the server refused DATA ({_reply(code, msg)})"))
        return
    steps.append(Step("data", True, "the server is ready to take the message (354)"))
    steps.append(Step("abort", True, "closed the connection before the end of data: nothing was sent"))


def _tls_desc(conn, ctx: ssl.SSLContext) -> str:
    sock = conn.sock
    version = sock.version() if hasattr(sock, "version") else "?"
    verified = "certificate verified" if ctx.verify_mode == ssl.CERT_REQUIRED else "certificate NOT verified"
    return f"{version}, {verified}"


class Ahead:
    """Runs a generator step by step while the server works; `result()` finishes it.

    The generator yields between chunks of work (compose, parse, sign) and returns the value;
    pass `ahead.step` as SmtpSender.send's `idle`. An exception is kept and raised by result().
    """

    def __init__(self, gen) -> None:
        self.gen, self.done, self.value, self.error = gen, False, None, None

    def step(self) -> None:
        if self.done:
            return
        try:
            next(self.gen)
        except StopIteration as stop:
            self.done, self.value = True, stop.value
        except Exception as e:  # surfaced by result(), not inside someone else's SMTP transaction
            self.done, self.error = True, e

    def result(self):
        while not self.done:
            self.step()
        if self.error is not None:
            raise self.error
        return self.value
