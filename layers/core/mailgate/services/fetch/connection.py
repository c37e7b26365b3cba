"""How the worker reaches an incoming server: its mailbox (IMAP or POP3), its password, and
Odoo's Test Connection (TEST & CONFIRM) for it."""

from __future__ import annotations

from typing import Callable, Iterator, Protocol

from ... import checks
from ...adapters.netmail import MailItem, Timeouts
from ...domain import IncomingServer
from ...errors import MailgateError, NotFound, PermanentError


class Mailbox(Protocol):
    """What the worker needs from ImapMailbox / PopMailbox (and what the test fakes provide)."""

    protocol: str
    exists: int

    def connect(self) -> None: ...
    def login(self) -> None: ...
    def select(self, readonly: bool = False) -> int: ...
    def open(self) -> None: ...
    def fetch(self, items: list[MailItem]) -> Iterator[tuple[MailItem, bytes]]: ...
    def ack(self, items: list[MailItem], mode: str, move_to: str = "") -> None: ...
    def set_timeout(self, seconds: float) -> None: ...
    def close(self) -> None: ...
    # IMAP: uidvalidity, list_since(last_uid); POP3: list_all(), commit()


MailboxFactory = Callable[[IncomingServer, str], Mailbox]


def default_mailbox_factory(cafile: str | None = None, socket_factory=None,
                            timeouts: Timeouts = Timeouts()) -> MailboxFactory:
    def make(server: IncomingServer, password: str) -> Mailbox:
        if server.protocol == "pop":
            from ...adapters.pop import PopMailbox

            return PopMailbox(server, password, cafile=cafile, timeouts=timeouts,
                              socket_factory=socket_factory)
        from ...adapters.imap import ImapMailbox

        return ImapMailbox(server, password, cafile=cafile, timeouts=timeouts,
                           socket_factory=socket_factory)

    return make


def factory_for(c) -> MailboxFactory:
    extras = getattr(c, "extras", {}) or {}
    if extras.get("mailbox_factory"):
        return extras["mailbox_factory"]
    return default_mailbox_factory(cafile=extras.get("fetch_cafile"))


def secret_id_for(server: IncomingServer, prefix: str = "mailgate/server/") -> str:
    return server.secret_id or f"{prefix}{server.name}"


def server_password(secrets, server: IncomingServer, prefix: str) -> str:
    sid = secret_id_for(server, prefix)
    try:
        return secrets.get(sid)
    except NotFound as exc:
        if not server.secret_id:
            return ""  # added with --no-password; the server says whether it needs one
        raise PermanentError(f"the password of server {server.name} is missing: secret {sid!r} "
                             "does not exist; store it again with `mailgate server add-imap` / `add-pop` "
                             "(--password-stdin)",
                             code="config") from exc


def test_connection(c_or_secrets, server: IncomingServer, *,
                    mailbox_factory: MailboxFactory | None = None) -> list[checks.Step]:
    """Odoo's TEST & CONFIRM, step by step: connect, TLS, log in, open the folder, count."""
    if hasattr(c_or_secrets, "secrets"):
        secrets, prefix = c_or_secrets.secrets, c_or_secrets.settings.server_secret_prefix
        factory = mailbox_factory or factory_for(c_or_secrets)
    else:
        secrets, prefix = c_or_secrets, "mailgate/server/"
        factory = mailbox_factory or default_mailbox_factory()
    steps: list[checks.Step] = []
    where = f"{server.host}:{server.port}"
    try:
        password = server_password(secrets, server, prefix)
    except MailgateError as exc:
        return [checks.Step("password", False, str(exc))]
    mb = factory(server, password)
    try:
        try:
            mb.connect()
        except MailgateError as exc:
            if exc.code in ("tls-untrusted", "tls-failed", "plaintext-refused"):
                if exc.code != "plaintext-refused":
                    steps.append(checks.Step("connect", True, f"TCP connection to {where}"))
                steps.append(checks.Step("tls", False, str(exc)))
            else:
                steps.append(checks.Step("connect", False, str(exc)))
            return steps
        steps.append(checks.Step("connect", True, f"TCP connection to {where}"))
        if server.security == "none":
            steps.append(checks.Step("tls", True, "no TLS: plaintext allowed on this server "
                                                  "(allow_plaintext); the password crosses the network readable"))
        else:
            how = "implicit TLS" if server.security == "ssl" else "STARTTLS"
            verified = "certificate and host name verified" if server.verify_tls else \
                "certificate NOT verified (verify_tls is off)"
            steps.append(checks.Step("tls", True, f"{how}, {verified}"))
        try:
            mb.login()
        except MailgateError as exc:
            steps.append(checks.Step("login", False, str(exc)))
            return steps
        steps.append(checks.Step("login", True, f"logged in as {server.user}"))
        try:
            count = mb.select(readonly=True)
        except MailgateError as exc:
            steps.append(checks.Step("folder", False, str(exc)))
            return steps
        if server.protocol == "imap":
            steps.append(checks.Step("folder", True, f"{server.folder or 'INBOX'} opened "
                                                     f"(UIDVALIDITY {getattr(mb, 'uidvalidity', '?')})"))
        else:
            steps.append(checks.Step("folder", True, "POP3 has a single mailbox"))
        steps.append(checks.Step("count", True, f"{count} message(s) on the server"))
        return steps
    finally:
        mb.close()
