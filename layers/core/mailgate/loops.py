"""Auto-reply, bounce, list and mail-loop signals of a parsed message (pure).

A message with any of these signals is never answered: answering an automatic message is how
mail loops start (RFC 3834 §2, §5). Bounces, auto-replies and our own mail coming back never
open a new record either; list and bulk mail (`bulk`) is not an auto-reply: a reply that comes
through a list reaches its thread, other list mail is recorded as `bulk` (routing rule 5b), and
none of it is ever answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import automatic
from .message import ParsedMessage

#: Our own outbound mail carries this header (SES rewrites Message-ID, so this survives).
OWN_HEADER = "x-mailgate-id"
#: Our own Message-IDs are `<ref@domain>` with `ref = domain.new_id()`: 16 base32 characters.
_OWN_REF = re.compile(r"^[a-z2-7]{16}$")


@dataclass(frozen=True)
class Signals:
    """Why a message must not be answered (empty lists: a message from a person)."""

    bounce: list[str] = field(default_factory=list)
    auto_reply: list[str] = field(default_factory=list)
    own: list[str] = field(default_factory=list)
    #: list or bulk mail (RFC 3834 §2): never answered, but not an automatic reply
    bulk: list[str] = field(default_factory=list)

    @property
    def automatic(self) -> bool:
        """Not to be answered: any sign of automatic, list or bulk mail."""
        return bool(self.bounce or self.auto_reply or self.own or self.bulk)

    def to_dict(self) -> dict:
        return {"bounce": self.bounce, "auto_reply": self.auto_reply, "own": self.own, "bulk": self.bulk}


def is_own_message_id(message_id: str, own_domains: set[str] | frozenset[str]) -> bool:
    local, _, domain = message_id.lower().rpartition("@")
    return domain in own_domains and bool(_OWN_REF.match(local))


def bounce_signals(p: ParsedMessage) -> list[str]:
    """A delivery status notification or a message from a mailer daemon (never a reply)."""
    found = []
    if p.content_type == automatic.REPORT_TYPE:
        # RFC 6522 report: RFC 3464 delivery-status, RFC 5965 feedback-report (ARF), RFC 8098 MDN
        found.append(f"multipart/report ({p.report_type or 'no report-type'})")
    if p.sender and automatic.local_part(p.sender) in automatic.MAILER_DAEMON_LOCALS:
        found.append(f"sender {p.sender} is a mail system")
    if p.return_path and automatic.local_part(p.return_path) in automatic.MAILER_DAEMON_LOCALS:
        found.append(f"envelope sender {p.return_path} is a mail system")
    if not found and automatic.MAILER_DAEMON_NAME.search(p.header("from")):
        found.append("From names a mailer daemon")
    if not found and (p.return_path == "" or not p.sender) and automatic.BOUNCE_SUBJECT.search(p.subject):
        # RFC 5321 §4.5.5: bounces are sent with the null reverse-path
        found.append("null sender and a delivery-failure subject")
    if not found and p.content_type.startswith("multipart/") and any(
            part.content_type in automatic.DELIVERY_STATUS_TYPES for part in p.parts()):
        found.append("carries a delivery-status part")
    return found


def auto_reply_signals(p: ParsedMessage) -> list[str]:
    """Signs of an automatic message that is not a bounce: RFC 3834 Auto-Submitted and the
    responders' headers, and what marks an out-of-office notice, an acknowledgment or a
    challenge (`automatic.auto_reply_signs`). List mail is not one (`bulk_signals`)."""
    return list(dict.fromkeys(automatic.machine_signs(p) + automatic.auto_reply_signs(p)))


def bulk_signals(p: ParsedMessage) -> list[str]:
    """List and bulk mail (Precedence: bulk/junk/list, RFC 2369 / RFC 2919 list headers)."""
    return automatic.list_signs(p)


def own_mail_signals(p: ParsedMessage, own_domains: set[str] | frozenset[str]) -> list[str]:
    """Our own outbound mail coming back to us (a forward, a redirect, a misconfigured MX)."""
    found = []
    if OWN_HEADER in p.headers:
        found.append(f"X-Mailgate-Id {p.header(OWN_HEADER)[:40]} (our own outbound mail)")
    if p.message_id and is_own_message_id(p.message_id, own_domains):
        found.append(f"Message-ID {p.message_id} is one of ours")
    return found


def signals(p: ParsedMessage, own_domains: set[str] | frozenset[str] = frozenset()) -> Signals:
    return Signals(bounce=bounce_signals(p), auto_reply=auto_reply_signals(p),
                   own=own_mail_signals(p, own_domains), bulk=bulk_signals(p))


def may_answer(address: str | None, sig: Signals, own_domains: set[str] | frozenset[str]) -> str | None:
    """Why we must not send an automatic answer to `address`, else None (RFC 3834 §2)."""
    if not address:
        return "null sender (RFC 5321 §4.5.5): nobody to answer"
    if sig.automatic:
        return "automatic message: " + "; ".join(sig.bounce + sig.auto_reply + sig.own + sig.bulk)
    if automatic.local_part(address) in automatic.MAILER_DAEMON_LOCALS:
        return f"{address} is a mail system"
    if automatic.local_part(address) in automatic.NO_REPLY_LOCALS:
        return f"{address} reads no answers"
    if address.rpartition("@")[2] in own_domains:
        return f"{address} is one of our own addresses (answering would loop)"
    return None
