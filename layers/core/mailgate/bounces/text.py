"""Bounces that are not RFC 3464 reports: the texts of mail systems that predate or ignore it
(qmail, Exim, old Sendmail and Postfix, Exchange, Notes, Japanese carriers, ...).

Whether a message is a bounce at all is read from its sender, subject and text together; the
failed addresses are read from the notification text (never from the quoted original), with
flufl.bounce's detectors as one more source where it is installed.
"""

from __future__ import annotations

import re

from .. import automatic
from ..message import ParsedMessage
from ..mime import Fields
from .addresses import ADDRESS, all_addresses, header_addresses, norm_address, valid_address
from .autoreply import auto_reply_reason
from .lines import TextLines
from .notification import MAX_TEXT, Notification, split_notification
from .reasons import find_status, is_permanent, reason_for
from .report import BounceRecipient

#: failed recipients read per notification (a notice listing thousands is cut here)
MAX_RECIPIENTS = 100
#: addresses collected from the text before the list is cut
MAX_FOUND = 10 * MAX_RECIPIENTS
TOO_MANY = f"more than {MAX_RECIPIENTS} failed recipients: the first {MAX_RECIPIENTS} read"

_BOUNCE_BODY_STRONG = re.compile(
    r"could not be delivered|couldn't be delivered|delivery to the following recipient|"
    r"permanent(ly)? (error|fatal)|unable to deliver|delivery has failed|failed permanently|"
    r"following address(es)? failed|this is the qmail-send program|transcript of session follows|"
    r"did not reach the following|was not delivered|smtp error|\b[45]\d\d[- ][245]\.\d{1,3}\.\d", re.I)
_BOUNCE_BODY = re.compile(
    r"could not be delivered|couldn't be delivered|delivery to the following recipient|"
    r"undeliverable|permanent(ly)? (error|fatal)|user unknown|unknown user|"
    r"unable to deliver|delivery has failed|failed permanently|message could not be sent|"
    r"following address(es)? failed|returned to sender|no such user|"
    r"hi\. this is the qmail-send program|transcript of session follows|"
    r"delivery failed|not be delivered|could not deliver|delivery failure|"
    r"was not delivered|nicht zugestellt|non remis|no ha podido ser entregado|"
    r"smtp error|\b5\d\d[- ]\d\.\d|\b55\d\b|did not reach the following|"
    r"failed addresses follow", re.I)
_ML_REJECT = re.compile(r"not (a )?member|loop alert|reject|denied|error|not allowed", re.I)
#: list-manager control addresses (RFC 2142 -request, fml's -ctl/-admin, owner-): never a recipient
_LIST_CONTROL = re.compile(r"-(ctl|request|admin|owner)$|^owner-", re.I)
#: addresses of mail systems, and where senders collect bounces: never the failed recipient
_MACHINE_LOCALS = automatic.MAILER_DAEMON_LOCALS | automatic.NO_REPLY_LOCALS | automatic.BOUNCE_COLLECTOR_LOCALS
#: lines that name other addresses than the failed ones (headers, the envelope sender, contacts);
#: no two white-space runs stand side by side, so a line of spaces is read once
_SKIP_LINE = re.compile(r"message-?id|in-reply-to|references:|^\s*(to|cc|subject|sent|date):\s|^\s*((<<<|>>>)\s*)?mail from|"
                        r"envelope-from|return-path|^\s*from:|^\s*sender:|^\s*reply-to:|"
                        r"\bsent by\b|please contact|further assistance|please send mail to|\bfrom:? *<|your message .{0,40} from|"
                        r"^\s*received:|\bby [\w.-]+ with\b|\bid [\w.-]+@", re.I)
_DELAYED = re.compile(r"has not yet been delivered|delivery (is|has been) delayed|will (continue|keep) trying|"
                      r"will retry|still trying|warning: message .{0,200}? delayed|not been delivered yet", re.I)
_STATUS_5 = re.compile(r"\b5\d\d\b|\b5\.\d+\.\d+")


def looks_like_bounce(p: ParsedMessage, note: Notification) -> bool:
    """A delivery failure notice, standard or not (a person writing "rejected" is not one)."""
    if note.dsn_parts or p.headers.first("x-failed-recipients"):
        return True
    if p.content_type == automatic.REPORT_TYPE and p.report_type in ("delivery-status", ""):
        return True
    subject, from_ = p.subject, p.header("from")
    bounce_subject = bool(automatic.BOUNCE_SUBJECT.search(subject))
    # RFC 3464 §2 / RFC 5321 §4.5.5: DSNs are sent with the null reverse-path, "<>".
    daemon = bool(automatic.MAIL_SYSTEM_FROM.search(from_)) or automatic.null_reverse_path(p)
    body = note.body_text[:20000]
    if daemon and (bounce_subject or _BOUNCE_BODY.search(body)):
        return True
    if bounce_subject and automatic.AUTOMATED_FROM.search(from_):
        return True
    # From a person: a bounce-like subject alone ("Re: rejected proposal") is not enough.
    if bounce_subject and _BOUNCE_BODY_STRONG.search(body) and not auto_reply_reason(p):
        return True
    # A mailing-list manager (fml and kin) refusing the post: the list did not take it.
    return bool((p.headers.first("x-mlserver") or p.headers.first("x-ml-server")) and _ML_REJECT.search(subject))


def notification_text(note: Notification) -> str:
    """The text of the notification itself, without the original it quotes."""
    chunks = []
    for text in note.texts or [""]:
        chunks.append(split_notification(text)[0])
        if note.original_parts:
            # With a separate MIME part for the original, later text parts are often the original body.
            break
    return "\n".join(chunks)[:MAX_TEXT]


def excluded_addresses(p: ParsedMessage, original: Fields | None) -> set[str]:
    """Addresses that are never the failed recipient: ours, the original sender's, daemons'.
    (The bounce's own To is the original sender; X-Original-To on a bounce may be the recipient.)"""
    out: set[str] = set()
    for name in ("to", "delivered-to", "return-path", "from", "reply-to", "sender"):
        for value in p.headers.get_all(name):
            out.update(all_addresses(value))
    if original is not None:
        for name in ("from", "return-path", "sender", "reply-to", "message-id", "references",
                     "in-reply-to", "x-mailgate-id"):
            for value in original.get_all(name):
                out.update(all_addresses(value))
    return out


def failed_addresses(p: ParsedMessage, notification: TextLines, excluded: set[str]) -> list[str]:
    """The failed recipients a notification names: X-Failed-Recipients (Exim and others: not
    RFC, but widely used), else the addresses in its lines."""
    found = header_addresses(p.headers.get_all("x-failed-recipients"))
    if not found:
        for line, addrs in zip(notification.lines, notification.line_addresses):
            if addrs and not _SKIP_LINE.search(line):
                found += [a for a in _line_addresses(line, addrs) if a not in excluded and not _machine_address(a)]
                if len(found) > MAX_FOUND:
                    break
    if len(set(found)) > 1:
        # MTAs list failed recipients one per line, address first ("<a@b>: 550 ...", qmail,
        # Postfix, Exim, Sendmail alike); an address only met mid-sentence ("please contact
        # <support@...>") is not one of them when such a list exists.
        leading = [a for a in found if a in notification.leading]
        if leading:
            found = leading
    return found


def _line_addresses(line: str, addrs: list[str]) -> list[str]:
    if len(addrs) >= 2:
        low = line.lower()
        i = low.find(addrs[0])
        j = low.find(f"<{addrs[1]}>", i + 1) if i >= 0 else -1
        if j > 0 and not low[i + len(addrs[0]):j].strip():
            # "a@x <b@y>" is one mailbox (RFC 5322 name-addr): b@y, with a@x as its display name.
            addrs = [x for x in addrs if x != addrs[0]]
    return addrs


def _machine_address(address: str) -> bool:
    local = address.split("@", 1)[0]
    return local in _MACHINE_LOCALS or bool(_LIST_CONTROL.search(local))


def fallback_addresses(p: ParsedMessage, original: Fields | None, excluded: set[str]) -> list[str]:
    """When the notification names no address (old Sendmail: a host only): the original's To,
    else the bounce's X-Original-To."""
    if original is not None:
        tos = all_addresses(original.first("to"))
        found = [a for a in tos if a not in excluded][:1] or tos[:1]
        if found:
            return found
    found = []
    for value in p.headers.get_all("x-original-to"):
        found += all_addresses(value)
    return found


def text_recipients(found: list[str], notification: TextLines) -> list[BounceRecipient]:
    """One entry per address, with the status and reason its part of the text gives."""
    out: list[BounceRecipient] = []
    addresses = list(dict.fromkeys(found))[:MAX_RECIPIENTS]
    delayed = bool(_DELAYED.search(notification.text))
    for address in addresses:
        diag = notification.near(address)
        status = find_status(diag) or notification.status
        reason = reason_for(diag, status, notification.text, "", address, context_reason=len(addresses) == 1,
                            command=notification.commands.get(address, ""))
        action = "delayed" if delayed and not _STATUS_5.search(diag) else "failed"
        out.append(BounceRecipient(address, is_permanent(reason, status), status, diag[:1000], reason, action))
    return out


def flufl_recipients(p: ParsedMessage, note: Notification) -> list[BounceRecipient]:
    """flufl.bounce's detectors as a fallback source of failed addresses (where it is installed)."""
    if p.email_message is None:
        return []
    # flufl.bounce is a development dependency (the Lambda layer classifies without it) and
    # takes ~40 ms to import: imported on this rare path only, not when the module loads.
    try:
        from flufl.bounce import all_failures
    except ImportError:  # pragma: no cover - installed by the dev extra
        return []
    try:
        permanent, temporary = all_failures(p.email_message)
    except Exception:  # noqa: BLE001 - its detectors have failed on odd input
        return []
    body = note.body_lines
    out: list[BounceRecipient] = []
    for raw_addr, temp in ([(a, False) for a in permanent] + [(a, True) for a in temporary])[:MAX_RECIPIENTS]:
        address = norm_address(raw_addr.decode("utf-8", "replace") if isinstance(raw_addr, bytes) else str(raw_addr))
        if not ADDRESS.fullmatch(address) or not valid_address(address) or any(r.address == address for r in out):
            # RFC 5321 §4.5.3.1: 64-octet local part, 254-octet address; anything else is noise.
            continue
        diag = body.near(address)
        status = find_status(diag)
        reason = reason_for(diag, status, body.text, command=body.commands.get(address, ""))
        out.append(BounceRecipient(address, is_permanent(reason, status), status, diag[:1000], reason,
                                   "delayed" if temp else "failed"))
    return out
