"""ImapMailbox: an incoming server's folder over IMAP4rev1 (stdlib imaplib), TLS verified.

Reading never changes a flag: bodies are fetched with BODY.PEEK[] (RFC 3501 6.4.5), many UIDs
per UID FETCH, so a chunk of messages costs one round trip. The acknowledgement chosen for the
server (leave / \\Seen / move / delete) is a separate, explicit call made only after the raw
messages are stored.
"""

from __future__ import annotations

import imaplib
import re
from typing import Iterator

from ..domain import IncomingServer
from ..errors import MailgateError, PermanentError, TransientError
from ..ports import MailItem, Timeouts
from .netmail import NetMailbox, PresetSocket, SocketFactory, auth_failed, classify, compact_set, server_busy

_UID = re.compile(rb"\bUID (\d+)")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


class _IMAP4(PresetSocket, imaplib.IMAP4):
    """imaplib over a socket we opened ourselves (our timeouts, our TLS context, the test seam)."""


def quote(name: str) -> str:
    """A mailbox name as an IMAP quoted string (RFC 3501 4.3); imaplib does not quote for us."""
    if not name.isascii():
        # Non-ASCII folder names need modified UTF-7 (RFC 3501 5.1.3); not supported yet.
        raise PermanentError(f"folder {name!r}: non-ASCII folder names are not supported yet",
                             code="folder-missing")
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapMailbox(NetMailbox):
    protocol = "imap"
    protocol_errors = (imaplib.IMAP4.error,)

    def __init__(self, server: IncomingServer, password: str, *, cafile: str | None = None,
                 timeouts: Timeouts = Timeouts(), socket_factory: SocketFactory | None = None):
        super().__init__(server, password, cafile=cafile, timeouts=timeouts, socket_factory=socket_factory)
        self.imap: _IMAP4 | None = None
        self.capabilities: set[str] = set()
        self.uidvalidity: int = 0
        self.uidnext: int | None = None
        #: why the last fetch did not return a UID, when the server said (its NO answer)
        self.refused: dict[int, str] = {}

    @property
    def session(self):
        return self.imap

    # -- the steps (Test Connection reports each) -------------------------------------------
    def connect(self) -> None:
        """TCP, TLS (implicit on 993, STARTTLS on 143) and the greeting."""
        sock, ctx = self._open()
        self.imap = self._call(lambda: _IMAP4(sock, self.server.host), self.timeouts.connect)
        if self.server.security == "starttls":
            if "STARTTLS" not in self.imap.capabilities:
                raise PermanentError(f"{self.server.host}:{self.server.port} does not offer STARTTLS; "
                                     "use security ssl on port 993", code="tls-failed")
            self._stage = "STARTTLS"
            self._call(lambda: self.imap.starttls(ssl_context=ctx), self.timeouts.connect)

    def login(self) -> None:
        self._stage = "login"
        try:
            self._call(lambda: self.imap.login(self.server.user, self.password), self.timeouts.login,
                       raw_errors=True)
        except imaplib.IMAP4.error as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise classify(exc, server=self.server, stage="login") from exc
            if "[UNAVAILABLE]" in str(exc).upper():
                # RFC 5530 3: a subsystem is down (Dovecot: "Temporary authentication failure")
                raise server_busy(self.server, "login", str(exc)) from exc
            raise auth_failed(self.server, str(exc)) from exc
        # The capabilities may change after login (RFC 3501 6.2.3); MOVE and UIDPLUS matter here.
        typ, data = self._call(lambda: self.imap.capability(), self.timeouts.command)
        if typ == "OK" and data and data[0]:
            self.capabilities = set(data[0].decode("ascii", "replace").upper().split())

    def select(self, readonly: bool = False) -> int:
        """Open the folder; returns the number of messages. Learns UIDVALIDITY and UIDNEXT."""
        self._stage = "select"
        folder = self.server.folder or "INBOX"
        typ, data = self._call(lambda: self.imap.select(quote(folder), readonly=readonly),
                               self.timeouts.command)
        if typ != "OK":
            raise PermanentError(f"folder {folder!r} cannot be opened on {self.server.host}: "
                                 f"{_text(data)}; check the folder name (case matters)",
                                 code="folder-missing")
        self.exists = int(data[0] or 0)
        uv = self.imap.response("UIDVALIDITY")[1]
        un = self.imap.response("UIDNEXT")[1]
        self.uidvalidity = int(uv[0]) if uv and uv[0] else 0
        self.uidnext = int(un[0]) if un and un[0] else None
        return self.exists

    def open(self) -> None:
        self.connect()
        self.login()
        self.select(readonly=self.server.ack == "leave")

    # -- listing and fetching ---------------------------------------------------------------
    def list_since(self, last_uid: int) -> list[MailItem]:
        """Messages with UID > last_uid, in UID order, with their sizes (one round trip)."""
        if self.exists == 0 or (self.uidnext is not None and self.uidnext <= last_uid + 1):
            return []
        self._stage = "list"
        typ, data = self._call(
            lambda: self.imap.uid("FETCH", f"{last_uid + 1}:*", "(UID RFC822.SIZE)"),
            self.timeouts.command)
        self._ok(typ, data, "UID FETCH (sizes)")
        items = []
        for entry in data:
            line = entry[0] if isinstance(entry, tuple) else entry
            if not line:
                continue
            uid, size = _UID.search(line), _SIZE.search(line)
            # "n:*" always matches the highest UID, even when it is <= last_uid (RFC 3501 6.4.8).
            if uid and size and int(uid.group(1)) > last_uid:
                items.append(MailItem(int(uid.group(1)), uid.group(1).decode(), int(size.group(1))))
        items.sort(key=lambda i: i.ref)
        return items

    def fetch(self, items: list[MailItem]) -> Iterator[tuple[MailItem, bytes]]:
        """The raw bytes of `items` in one UID FETCH BODY.PEEK[] (no flag changes). A UID the answer
        leaves out is not yielded (`missing` then tells expunged from withheld). An answer that ends
        in NO after some of the messages (RFC 3501 7.4.2; RFC 5530 [UNAVAILABLE] and the like)
        yields those it carried, and the NO is the reason for the others."""
        self.refused = {}
        if not items:
            return
        by_uid = {i.ref: i for i in items}
        self._stage = "fetch"
        self.imap.untagged_responses.pop("FETCH", None)  # nothing left over from another command
        typ, data = self._call(
            lambda: self.imap.uid("FETCH", compact_set(list(by_uid)), "(UID RFC822.SIZE BODY.PEEK[])"),
            self.timeouts.command)
        if typ == "NO":
            # imaplib hands back the NO text; what the server did send is still among the untagged responses
            reason = f"UID FETCH answered NO: {_text(data)}"
            self.refused = dict.fromkeys(by_uid, reason)
            data = self.imap.untagged_responses.pop("FETCH", None) or []
        else:
            self._ok(typ, data, "UID FETCH")
        for n, entry in enumerate(data):
            if not isinstance(entry, tuple):
                continue
            head, raw = entry[0], entry[1]
            m = _UID.search(head)
            if m is None and n + 1 < len(data) and isinstance(data[n + 1], bytes):
                m = _UID.search(data[n + 1])  # some servers put UID after the literal
            if m and int(m.group(1)) in by_uid:
                self.refused.pop(int(m.group(1)), None)
                yield by_uid[int(m.group(1))], raw

    def missing(self, items: list[MailItem]) -> dict[int, str | None]:
        """For messages the last fetch did not return: UID SEARCH says which are still in the
        folder (RFC 3501 6.4.4, 6.4.8). Those are withheld, not gone: fetched again later."""
        if not items:
            return {}
        refs = sorted({i.ref for i in items})
        self._stage = "UID SEARCH"
        typ, data = self._call(lambda: self.imap.uid("SEARCH", "UID", compact_set(refs)), self.timeouts.command)
        if typ == "OK":
            still = {int(n) for d in data if isinstance(d, bytes) for n in d.split() if n.isdigit()}
        else:
            still = set(refs)  # not confirmed gone: treated as still there
        return {ref: (self.refused.get(ref) or "left out of the UID FETCH answer") if ref in still else None
                for ref in refs}

    # -- acknowledgement ----------------------------------------------------------------------
    def ack(self, items: list[MailItem], mode: str, move_to: str = "") -> None:
        if not items or mode == "leave":
            return
        uids = compact_set([i.ref for i in items])
        self._stage = f"ack ({mode})"
        t = self.timeouts.command
        if mode == "seen":
            self._ok(*self._call(lambda: self.imap.uid("STORE", uids, "+FLAGS.SILENT", r"(\Seen)"), t),
                     "UID STORE \\Seen")
        elif mode == "move":
            if not move_to:
                raise PermanentError(f"server {self.server.name}: ack is move but move_to is empty",
                                     code="config")
            if "MOVE" in self.capabilities:  # RFC 6851
                self._ok(*self._call(lambda: self.imap.uid("MOVE", uids, quote(move_to)), t), "UID MOVE",
                         fix=f"check that the folder {move_to!r} exists")
            else:
                self._ok(*self._call(lambda: self.imap.uid("COPY", uids, quote(move_to)), t), "UID COPY",
                         fix=f"check that the folder {move_to!r} exists")
                self._delete(uids, t)
        elif mode == "delete":
            self._delete(uids, t)
        else:
            raise PermanentError(f"server {self.server.name}: unknown ack mode {mode!r}", code="config")

    def _delete(self, uids: str, t: float) -> None:
        self._ok(*self._call(lambda: self.imap.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)"), t),
                 "UID STORE \\Deleted")
        if "UIDPLUS" in self.capabilities:  # RFC 4315: expunge only ours
            self._ok(*self._call(lambda: self.imap.uid("EXPUNGE", uids), t), "UID EXPUNGE")
        else:
            self._ok(*self._call(lambda: self.imap.expunge(), t), "EXPUNGE")

    # -- plumbing ----------------------------------------------------------------------------
    def close(self) -> None:
        if self.imap is None:
            return
        imap, self.imap = self.imap, None
        try:
            imap.sock.settimeout(5)
            if imap.state == "SELECTED":
                imap.close()  # CLOSE, not EXPUNGE: only our UID EXPUNGE removes anything
            imap.logout()
        except Exception:  # noqa: BLE001 - best effort on the way out
            try:
                imap.shutdown()
            except Exception:  # noqa: BLE001
                pass

    def special_error(self, exc: BaseException, timeout: float) -> MailgateError | None:
        if isinstance(exc, imaplib.IMAP4.readonly):
            return PermanentError(f"folder {self.server.folder!r} is read-only on "
                                  f"{self.server.host}; use ack leave", code="folder-missing")
        if isinstance(exc, imaplib.IMAP4.abort):  # the connection broke, not a refusal
            return classify(exc, server=self.server, stage=self._stage, timeout=timeout)
        return None

    def _ok(self, typ, data, what: str, fix: str = ""):
        if typ != "OK":
            if what.startswith(("UID STORE", "UID MOVE", "UID COPY", "UID EXPUNGE", "EXPUNGE")):
                # The messages are stored already; the next run tries the acknowledgement again.
                raise PermanentError(f"{what} failed on {self.server.host}: {_text(data)}"
                                     + (f"; {fix}" if fix else ""), code="ack-failed")
            raise TransientError(f"{what} failed on {self.server.host}: {_text(data)}",
                                 code="connection-lost")
        return data


def _text(data) -> str:
    parts = []
    for d in data or []:
        if isinstance(d, bytes):
            parts.append(d.decode("utf-8", "replace"))
    return " ".join(parts) or "no detail"
