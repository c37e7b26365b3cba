"""Transports: the `SenderFactory` port over SES (adapters.ses) and SMTP (adapters.smtp).

Constructed once (in `bootstrap`) with what every transport of the process shares: the SES
client (made on first use, from the container's AWS session) and its configuration set, and for
SMTP the TLS trust (a CA file besides the system's, or a whole SSL context) and the connection
factory (the test seam that points a relay at a local server).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any, Callable

from ..checks import Step
from ..domain import OutgoingServer
from ..ports import Sender

if TYPE_CHECKING:
    from .smtp import Connect

# The SMTP and SES adapters load with the first transport (in the methods below): every function
# builds this factory at cold start, and only the outbound one sends.


class Transports:
    def __init__(self, *, ses_client: Any = None, make_ses_client: Callable[[], Any] | None = None,
                 configuration_set: str = "", ssl_context: ssl.SSLContext | None = None,
                 cafile: str | None = None, connect: Connect | None = None) -> None:
        """SES is reached through `ses_client`, else the client `make_ses_client()` makes when SES
        is first used (else boto3's default SESv2 client)."""
        self._ses_client = ses_client
        self.make_ses_client = make_ses_client
        self.configuration_set = configuration_set
        self.ssl_context = ssl_context
        self.cafile = cafile
        self.connect = connect

    def ses_client(self) -> Any:
        if self._ses_client is None:
            from .ses import ses_client

            self._ses_client = (self.make_ses_client or ses_client)()
        return self._ses_client

    def _context(self, server: OutgoingServer) -> ssl.SSLContext:
        """The context given, else one that verifies (the system's CAs, or `cafile`)."""
        from .smtp import ssl_context_for

        return self.ssl_context or ssl_context_for(server, cafile=self.cafile)

    def open(self, server: OutgoingServer | None, password: str | None) -> Sender:
        if server is None:
            from .ses import SesSender

            return SesSender(self.ses_client(), configuration_set=self.configuration_set)
        from .smtp import SmtpSender

        return SmtpSender(server, password, ssl_context=self._context(server), connect=self.connect)

    def test_connection(self, server: OutgoingServer, password: str | None, *, mail_from: str,
                        rcpt_to: str) -> list[Step]:
        from .smtp import test_connection

        return test_connection(server, password, mail_from=mail_from, rcpt_to=rcpt_to,
                               ssl_context=self._context(server), connect=self.connect)

