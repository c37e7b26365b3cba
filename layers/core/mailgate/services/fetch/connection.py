"""An incoming server's password, and Odoo's Test Connection (TEST & CONFIRM) for it."""

from __future__ import annotations

from ... import checks
from ...domain import IncomingServer, server_secret_id
from ...errors import MailgateError, NotFound, PermanentError
from ...ports import MailboxFactory


def secret_id_for(server: IncomingServer, prefix: str = "mailgate/server/") -> str:
    return server.secret_id or server_secret_id(prefix, server.protocol, server.name)


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
        factory = mailbox_factory or c_or_secrets.mailboxes
    else:  # a bare secret store: the caller names the mailbox factory
        secrets, prefix = c_or_secrets, "mailgate/server/"
        factory = mailbox_factory
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
