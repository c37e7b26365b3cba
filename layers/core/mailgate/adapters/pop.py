"""PopMailbox: an incoming server over POP3 (stdlib poplib), TLS verified.

POP3 has no flags and no folders: messages are told apart across sessions by UIDL (RFC 1939
section 7), the only acknowledgements are "leave" and "delete" (DELE, committed by QUIT — RFC 1939
section 6, UPDATE state). "seen" and "move" are treated as "leave".
"""

from __future__ import annotations

import poplib
import re
from typing import Iterator

from ..domain import IncomingServer
from ..errors import MailgateError, PermanentError
from ..ports import MailItem, Timeouts
from .netmail import NetMailbox, PresetSocket, SocketFactory, auth_failed, classify, server_busy

#: extended response codes that mean "not now" (RFC 2449 section 8: IN-USE, LOGIN-DELAY; RFC 3206
#: section 4: SYS/TEMP); AUTH and SYS/PERM are not retried
_TEMPORARY = re.compile(rb"^-ERR \[(IN-USE|LOGIN-DELAY|SYS/TEMP)\]", re.IGNORECASE)

# poplib refuses lines over 2048 octets; RFC 5322 allows 998 but real mail (HTML without line
# breaks) goes far beyond. A cap still protects memory; the message size cap applies as well.
poplib._MAXLINE = max(poplib._MAXLINE, 1 << 20)


class _POP3(PresetSocket, poplib.POP3):
    """poplib over a socket we opened ourselves."""


class PopMailbox(NetMailbox):
    protocol = "pop"
    protocol_errors = (poplib.error_proto,)

    def __init__(self, server: IncomingServer, password: str, *, cafile: str | None = None,
                 timeouts: Timeouts = Timeouts(), socket_factory: SocketFactory | None = None):
        super().__init__(server, password, cafile=cafile, timeouts=timeouts, socket_factory=socket_factory)
        self.pop: _POP3 | None = None
        self._deleted = False
        #: what the server answered when the last fetch asked for a message it did not return
        self.refused: dict[int, str] = {}

    @property
    def session(self):
        return self.pop

    def connect(self) -> None:
        sock, ctx = self._open()
        self.pop = self._call(lambda: _POP3(sock, self.server.host), self.timeouts.connect)
        if self.server.security == "starttls":
            self._stage = "STLS"  # RFC 2595 section 4
            try:
                self._call(lambda: self.pop.stls(context=ctx), self.timeouts.connect, raw_errors=True)
            except poplib.error_proto as exc:
                raise PermanentError(f"{self.server.host}:{self.server.port} does not offer STLS "
                                     f"({exc}); use security ssl on port 995", code="tls-failed") from exc

    def login(self) -> None:
        self._stage = "login"
        try:
            self._call(lambda: self.pop.user(self.server.user), self.timeouts.login, raw_errors=True)
            self._call(lambda: self.pop.pass_(self.password), self.timeouts.login, raw_errors=True)
        except poplib.error_proto as exc:
            if _TEMPORARY.match(_bytes(exc)):
                raise server_busy(self.server, "login", _text(exc)) from exc
            raise auth_failed(self.server, _text(exc)) from exc

    def select(self, readonly: bool = False) -> int:
        """POP3 has one mailbox; returns the number of messages (STAT)."""
        self._stage = "STAT"
        count, _size = self._call(lambda: self.pop.stat(), self.timeouts.command)
        self.exists = int(count)
        return self.exists

    def open(self) -> None:
        self.connect()
        self.login()
        self.select()

    def list_all(self) -> list[MailItem]:
        """Every message with its UIDL and size (two round trips: UIDL and LIST)."""
        if self.exists == 0:
            return []
        self._stage = "UIDL"
        _, uidl_lines, _ = self._call(lambda: self.pop.uidl(), self.timeouts.command)
        _, list_lines, _ = self._call(lambda: self.pop.list(), self.timeouts.command)
        sizes = {}
        for line in list_lines:
            parts = line.split()
            if len(parts) >= 2:
                sizes[int(parts[0])] = int(parts[1])
        items = []
        for line in uidl_lines:
            parts = line.split()
            if len(parts) >= 2:
                n = int(parts[0])
                items.append(MailItem(n, parts[1].decode("ascii", "replace"), sizes.get(n, 0)))
        items.sort(key=lambda i: i.ref)
        return items

    def fetch(self, items: list[MailItem]) -> Iterator[tuple[MailItem, bytes]]:
        """RETR each message (POP3 has no batch command). Byte-stuffing is undone by poplib.

        A message the server answers with -ERR (`-ERR [SYS/TEMP]`, RFC 3206) is not yielded and
        not taken for deleted: the maildrop is locked for the session (RFC 1939 section 8), so
        the message is still there and is fetched again next run (`missing` gives the answer)."""
        self.refused = {}
        for item in items:
            self._stage = "RETR"
            try:
                _, lines, _ = self._call(lambda: self.pop.retr(item.ref), self.timeouts.command,
                                         raw_errors=True)
            except poplib.error_proto as exc:
                if _bytes(exc).startswith(b"-ERR") and _bytes(exc) != b"-ERR EOF":
                    self.refused[item.ref] = _text(exc)[:300]
                    continue
                raise classify(exc, server=self.server, stage="RETR") from exc
            yield item, b"\r\n".join(lines) + b"\r\n"

    def missing(self, items: list[MailItem]) -> dict[int, str | None]:
        """Nothing vanishes from a locked maildrop during a session (RFC 1939 section 8): every
        message the last fetch did not return is still there. Only the next session's UIDL list
        can show it is gone."""
        return {i.ref: self.refused.get(i.ref) or "not returned by RETR" for i in items}

    def ack(self, items: list[MailItem], mode: str, move_to: str = "") -> None:
        if mode != "delete":
            return
        for item in items:
            self._stage = "DELE"
            try:
                self._call(lambda: self.pop.dele(item.ref), self.timeouts.command, raw_errors=True)
            except poplib.error_proto:
                pass  # already deleted in this session or by another client: the goal is met
            self._deleted = True

    def commit(self) -> None:
        """QUIT: the server applies the DELEs now (RFC 1939 section 6)."""
        if self.pop is None:
            return
        pop, self.pop = self.pop, None
        try:
            pop.sock.settimeout(self.timeouts.command)
            pop.quit()
        except (OSError, poplib.error_proto, EOFError) as exc:
            raise classify(exc, server=self.server, stage="QUIT") from exc

    def close(self) -> None:
        """Leave without committing deletions (an aborted run must not delete anything)."""
        if self.pop is None:
            return
        pop, self.pop = self.pop, None
        try:
            pop.close()
        except Exception:  # noqa: BLE001
            pass

    def error_text(self, exc: BaseException) -> str:
        return _text(exc)

    def refusal(self, exc: BaseException) -> MailgateError:
        if _TEMPORARY.match(_bytes(exc)):
            return server_busy(self.server, self._stage, _text(exc))
        return super().refusal(exc)


def _bytes(exc: Exception) -> bytes:
    arg = exc.args[0] if exc.args else b""
    return arg if isinstance(arg, bytes) else str(arg).encode()


def _text(exc: Exception) -> str:
    return _bytes(exc).decode("utf-8", "replace")
