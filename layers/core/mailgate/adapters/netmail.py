"""What the IMAP and POP3 adapters share: TLS contexts, sockets with timeouts, error classes, and
the NetMailbox base (constructor, connect up to the greeting, per-call timeouts, error mapping).

Every failure a mailbox can meet is turned into a MailgateError with a short code and a message
that names the cause and the fix, so health records and `mailgate server test` read alike:

    auth-failed      (permanent)  the server refused the user name or password
    tls-untrusted    (permanent)  certificate not trusted or not for this host name
    tls-failed       (permanent)  TLS handshake failed / STARTTLS not offered
    plaintext-refused(permanent)  security "none" without the explicit per-server opt-in
    folder-missing   (permanent)  the folder to fetch does not exist
    server-busy      (transient)  the server says "not now" (POP3 [IN-USE], [SYS/TEMP]; IMAP [UNAVAILABLE])
    unreachable      (transient)  name does not resolve, connection refused or no route
    timeout          (transient)  an operation did not finish in its time limit
    connection-lost  (transient)  the server closed the connection or spoke nonsense
"""

from __future__ import annotations

import socket
import ssl
from typing import Callable

from ..domain import IncomingServer
from ..errors import ConfigError, MailgateError, PermanentError, TransientError
from ..ports import Timeouts

#: the seam tests use to point adapters at local servers: (host, port, timeout) -> connected socket
SocketFactory = Callable[[str, int, float], socket.socket]


def default_socket_factory(host: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((host, port), timeout=timeout)


def tls_context(server: IncomingServer, cafile: str | None = None) -> ssl.SSLContext:
    """Certificate and host name verified by default (system trust, or `cafile` when given).

    Only a server item with verify_tls=False (an explicit opt-out) skips verification.
    """
    ctx = ssl.create_default_context(cafile=cafile) if cafile else ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if not server.verify_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def check_security(server: IncomingServer) -> None:
    if server.security not in ("ssl", "starttls", "none"):
        raise ConfigError(f"server {server.name}: security must be ssl, starttls or none, "
                          f"not {server.security!r}")
    if server.security == "none" and not server.allow_plaintext:
        raise PermanentError(
            f"server {server.name}: refusing to send the password in plaintext to "
            f"{server.host}:{server.port}; use security ssl (port {993 if server.protocol == 'imap' else 995}) "
            "or starttls, or set allow_plaintext on the server if the network is trusted",
            code="plaintext-refused")


def classify(exc: BaseException, *, server: IncomingServer, stage: str, timeout: float | None = None
             ) -> MailgateError:
    """Map a network/library exception to a MailgateError with a code and a fix."""
    where = f"{server.host}:{server.port}"
    if isinstance(exc, MailgateError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(
            f"certificate not trusted for {where}: {exc.verify_message or exc.reason}; "
            "fix: give the server a certificate from a public CA for this host name "
            "(or install its CA), or check the host name you configured", code="tls-untrusted")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        limit = f" after {timeout:.0f}s" if timeout else ""
        return TransientError(f"timed out{limit} during {stage} with {where}: the server accepted "
                              "but did not answer; check the port and the server's load",
                              code="timeout")
    if isinstance(exc, ssl.SSLError):
        return PermanentError(f"TLS failed with {where} during {stage}: {exc.reason or exc}; "
                              "check that the port speaks the security mode configured "
                              "(ssl: 993/995, starttls: 143/110)", code="tls-failed")
    if isinstance(exc, socket.gaierror):
        return TransientError(f"host unreachable: {server.host!r} does not resolve ({exc}); "
                              "check the host name", code="unreachable")
    if isinstance(exc, (ConnectionRefusedError,)):
        return TransientError(f"host unreachable: {where} refused the connection; check the host "
                              "and port, and that the server runs", code="unreachable")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, EOFError)):
        return TransientError(f"connection lost with {where} during {stage}: {exc}",
                              code="connection-lost")
    if isinstance(exc, OSError):
        return TransientError(f"host unreachable: {where}: {exc.strerror or exc}; check the host, "
                              "port and firewall", code="unreachable")
    return TransientError(f"connection lost with {where} during {stage}: {exc}",
                          code="connection-lost")


def server_busy(server: IncomingServer, stage: str, reply: str) -> TransientError:
    """The server says it cannot serve us now (POP3 [IN-USE], [LOGIN-DELAY], [SYS/TEMP]; IMAP
    [UNAVAILABLE]): not our fault and not the password's, so retried, never "auth-failed"."""
    return TransientError(f"{server.host}:{server.port} is busy or temporarily unavailable during {stage} "
                          f"({reply.strip()}); retried on the next runs", code="server-busy")


def auth_failed(server: IncomingServer, reply: str) -> PermanentError:
    return PermanentError(f"authentication failed for user {server.user!r} on "
                          f"{server.host}:{server.port} ({reply.strip()}); fix the user name or "
                          "the password stored in the secret", code="auth-failed")


def open_socket(server: IncomingServer, *, factory: SocketFactory | None, timeouts: Timeouts,
                ctx: ssl.SSLContext) -> socket.socket:
    """TCP connect (and the TLS handshake for security "ssl"), each bounded by the connect timeout."""
    factory = factory or default_socket_factory
    try:
        sock = factory(server.host, server.port, timeouts.connect)
    except BaseException as exc:  # noqa: BLE001 - classified, re-raised
        if not isinstance(exc, Exception):
            raise
        raise classify(exc, server=server, stage="connect", timeout=timeouts.connect) from exc
    sock.settimeout(timeouts.connect)
    if server.security == "ssl":
        try:
            sock = ctx.wrap_socket(sock, server_hostname=server.host)
        except Exception as exc:
            sock.close()
            raise classify(exc, server=server, stage="TLS handshake", timeout=timeouts.connect) from exc
    return sock


def compact_set(numbers: list[int]) -> str:
    """An IMAP sequence set "1:5,7,9:12" (RFC 3501 section 9, sequence-set)."""
    out: list[str] = []
    nums = sorted(set(numbers))
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}:{nums[j]}")
        i = j + 1
    return ",".join(out)


class PresetSocket:
    """Mixin for imaplib.IMAP4 / poplib.POP3: run over a socket we opened ourselves (our timeouts,
    our TLS context, the test seam) instead of letting the library connect."""

    def __init__(self, sock: socket.socket, host: str):
        self._presock = sock
        super().__init__(host, 0, timeout=sock.gettimeout())

    def _create_socket(self, timeout):  # noqa: D401 - imaplib/poplib hook
        return self._presock


class NetMailbox:
    """What ImapMailbox and PopMailbox share: the constructor, the connection up to the greeting,
    per-operation timeouts and the mapping of library errors to MailgateErrors.

    A subclass names its library session (`session`), the library's protocol error classes
    (`protocol_errors`) and how their text reads (`error_text`)."""

    protocol = ""
    protocol_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, server: IncomingServer, password: str, *, cafile: str | None = None,
                 timeouts: Timeouts = Timeouts(), socket_factory: SocketFactory | None = None):
        self.server = server
        self.password = password
        self.cafile = cafile
        self.timeouts = timeouts
        self.socket_factory = socket_factory
        self.exists = 0
        self._stage = "connect"

    @property
    def session(self):  # the imaplib/poplib object, None when not connected
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _open(self) -> tuple[socket.socket, ssl.SSLContext]:
        """Security checked, TCP connected (TLS done for "ssl"); the caller reads the greeting."""
        check_security(self.server)
        ctx = tls_context(self.server, self.cafile)
        sock = open_socket(self.server, factory=self.socket_factory, timeouts=self.timeouts, ctx=ctx)
        self._stage = "greeting"
        return sock, ctx

    def set_timeout(self, seconds: float) -> None:
        """Bound the next operations (the worker shrinks this as its deadline nears)."""
        self.timeouts = Timeouts(connect=min(self.timeouts.connect, seconds),
                                 login=min(self.timeouts.login, seconds), command=seconds)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def error_text(self, exc: BaseException) -> str:
        return str(exc)

    def special_error(self, exc: BaseException, timeout: float) -> MailgateError | None:
        """A protocol error that means something else than "the server refused the command"."""
        return None

    def refusal(self, exc: BaseException) -> MailgateError:
        """The server refused a command (a protocol error no caller reads itself)."""
        return PermanentError(f"{self.server.host} rejected {self._stage}: {self.error_text(exc)}",
                              code="protocol")

    def _call(self, fn, timeout: float, raw_errors: bool = False):
        """Run one library call within `timeout`; errors become MailgateErrors, except protocol
        errors when `raw_errors` (the caller reads them itself: a refused login, a missing message)."""
        session = self.session
        if session is not None and session.sock is not None:
            session.sock.settimeout(timeout)
        try:
            return fn()
        except MailgateError:
            raise
        except self.protocol_errors as exc:
            special = self.special_error(exc, timeout)
            if special is not None:
                raise special from exc
            if raw_errors:
                raise
            raise self.refusal(exc) from exc
        except (OSError, ssl.SSLError, EOFError, ValueError) as exc:
            raise classify(exc, server=self.server, stage=self._stage, timeout=timeout) from exc
