"""An SMTP listener that plays the part of SES receiving.

For each message it does what an SES receipt rule with an S3 action then a Lambda action does:
store the raw message at `<prefix><messageId>` in the bucket, then invoke the inbound handler with
the event SES sends a Lambda action (headers only; the handler reads the raw mail from S3). Like
SES, it answers 250 once the message is stored, and the Lambda invocation is asynchronous
(InvocationType Event).
"""

from __future__ import annotations

import email
import email.policy
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any, Callable

log = logging.getLogger("mailgate.local.ses")

SES_MAX_BYTES = 40 * 1024 * 1024  # SES receiving's limit with an S3 action
RAW_PREFIX = "raw/ses/"


def ses_message_id() -> str:
    """An id shaped like SES's (lower-case alphanumerics), unique per received message."""
    return secrets.token_hex(10) + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(20))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def build_ses_event(raw: bytes, *, mail_from: str, recipients: list[str], message_id: str,
                    function_arn: str, received: float | None = None,
                    verdicts: dict[str, str] | None = None) -> dict[str, Any]:
    """The SES Lambda-action event for one received message (the shape of events/ses-inbound.json)."""
    received = received or time.time()
    verdicts = {"spam": "PASS", "virus": "PASS", "spf": "PASS", "dkim": "PASS", "dmarc": "PASS",
                **(verdicts or {})}
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    headers = [{"name": k, "value": str(v)} for k, v in msg.items()]

    def addrs(name: str) -> list[str] | None:
        values = msg.get_all(name)
        return [str(v) for v in values] if values else None

    common: dict[str, Any] = {"returnPath": mail_from, "from": addrs("From"), "date": msg.get("Date"),
                              "to": addrs("To"), "cc": addrs("Cc"), "messageId": msg.get("Message-ID"),
                              "subject": msg.get("Subject")}
    common = {k: v for k, v in common.items() if v is not None}
    return {"Records": [{
        "eventSource": "aws:ses",
        "eventVersion": "1.0",
        "ses": {
            "mail": {
                "timestamp": _iso(received), "source": mail_from, "messageId": message_id,
                "destination": list(recipients), "headersTruncated": False, "headers": headers,
                "commonHeaders": common,
            },
            "receipt": {
                "timestamp": _iso(received), "processingTimeMillis": 12, "recipients": list(recipients),
                "spamVerdict": {"status": verdicts["spam"]}, "virusVerdict": {"status": verdicts["virus"]},
                "spfVerdict": {"status": verdicts["spf"]}, "dkimVerdict": {"status": verdicts["dkim"]},
                "dmarcVerdict": {"status": verdicts["dmarc"]},
                "action": {"type": "Lambda", "functionArn": function_arn, "invocationType": "Event"},
            },
        },
    }]}


class SesReceiver:
    """aiosmtpd handler: accept mail for the configured domains, store it, invoke the handler."""

    def __init__(self, *, store: Callable[[str, bytes], None], invoke: Callable[[dict], Any],
                 accepts: Callable[[str], bool], function_arn: str, prefix: str = RAW_PREFIX,
                 asynchronous: bool = True) -> None:
        self.store = store
        self.invoke = invoke
        self.accepts = accepts
        self.function_arn = function_arn
        self.prefix = prefix
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ses-lambda") if asynchronous else None
        self.received: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.accepts(address):
            # SES answers a recipient no receipt rule covers with a 550.
            return "550 5.1.1 Recipient address rejected: no receipt rule for this domain"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        if len(raw) > SES_MAX_BYTES:
            return "552 5.3.4 Message too big for the S3 action (40 MB)"
        message_id = ses_message_id()
        try:
            self.store(self.prefix + message_id, raw)
        except Exception as exc:  # nothing stored: make the sender retry rather than lose it
            log.exception("storing %s failed", message_id)
            return f"451 4.3.0 Could not store the message, try again later ({type(exc).__name__})"
        event = build_ses_event(raw, mail_from=envelope.mail_from or "", recipients=list(envelope.rcpt_tos),
                                message_id=message_id, function_arn=self.function_arn)
        self.received.append(message_id)
        if self.pool:
            self.pool.submit(self._invoke, event, message_id)
        else:
            self._invoke(event, message_id)
        return f"250 Ok {message_id}"

    def _invoke(self, event: dict, message_id: str) -> None:
        try:
            self.invoke(event)
        except Exception:
            # Lambda would retry an async invocation twice; the raw mail is stored and can be replayed.
            log.exception("inbound handler failed for %s (stored; `mailgate replay` after a fix)", message_id)

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown(wait=True)
