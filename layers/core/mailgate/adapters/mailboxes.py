"""NetMailboxes: the `MailboxFactory` port over the IMAP and POP3 adapters.

Constructed once (in `bootstrap`) with what every mailbox of the process shares: the CA file to
trust besides the system's (a local Dovecot's, say), the socket factory (the test seam that
points a host name at 127.0.0.1) and the time limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..domain import IncomingServer
from ..ports import Mailbox, Timeouts

if TYPE_CHECKING:
    from .netmail import SocketFactory


class NetMailboxes:
    def __init__(self, *, cafile: str | None = None, socket_factory: SocketFactory | None = None,
                 timeouts: Timeouts = Timeouts()) -> None:
        self.cafile = cafile
        self.socket_factory = socket_factory
        self.timeouts = timeouts

    def __call__(self, server: IncomingServer, password: str) -> Mailbox:
        # The IMAP and POP3 clients load with the first mailbox: every function builds this
        # factory at cold start, and only the fetch worker opens mailboxes.
        from .imap import ImapMailbox
        from .pop import PopMailbox

        kind = PopMailbox if server.protocol == "pop" else ImapMailbox
        return kind(server, password, cafile=self.cafile, timeouts=self.timeouts,
                    socket_factory=self.socket_factory)
