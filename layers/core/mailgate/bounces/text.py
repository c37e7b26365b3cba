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
from .reasons import find_status, implied_status, is_permanent, reason_for
from .report import BounceRecipient

#: failed recipients read per notification (a notice listing thousands is cut here)
MAX_RECIPIENTS = 100
#: addresses collected from the text before the list is cut
MAX_FOUND = 10 * MAX_RECIPIENTS
TOO_MANY = f"more than {MAX_RECIPIENTS} failed recipients: the first {MAX_RECIPIENTS} read"

_BOUNCE_BODY_STRONG = re.compile(
    r"could not be delivered|couldn't be delivered|delivery to the following recipient|could not deliver|"
    r"permanent(ly)? (error|fatal)|unable to deliver|delivery has failed|failed permanently|failed recipient|"
    r"following address(es)? failed|this is the qmail-send program|transcript of session follows|"
    r"did not reach the following|was not delivered|smtp error|not yet been delivered|"
    r"\b[45]\d\d[- ][245]\.\d{1,3}\.\d", re.I)
_BOUNCE_BODY = re.compile(
    r"could not be delivered|couldn't be delivered|delivery to the following recipient|"
    r"undeliverable|permanent(ly)? (error|fatal)|user unknown|unknown user|"
    r"unable to deliver|delivery has failed|failed permanently|message could not be sent|"
    r"following address(es)? failed|returned to sender|no such user|failed recipient|"
    r"hi\. this is the qmail-send program|transcript of session follows|"
    r"delivery failed|not be delivered|could not deliver|delivery failure|not yet been delivered|"
    r"has been postponed|delivery attempts will continue|has been returned because|"
    r"was not delivered|nicht zugestellt|non remis|no ha podido ser entregado|"
    r"smtp error|\b5\d\d[- ]\d\.\d|\b55\d\b|did not reach the following|"
    r"failed addresses follow", re.I)
#: local parts that only a mail system's own notices come from (not postmaster: people answer as postmaster)
_DAEMONS = frozenset({"mailer-daemon", "mailerdaemon", "mailer_daemon", "mail-daemon", "maildaemon"})
_ML_REJECT = re.compile(r"not (a )?member|loop alert|reject|denied|error|not allowed", re.I)
#: list-manager control addresses (RFC 2142 -request, fml's -ctl/-admin, owner-): never a recipient
_LIST_CONTROL = re.compile(r"-(ctl|request|admin|owner)$|^owner-", re.I)
#: addresses of mail systems, and where senders collect bounces: never the failed recipient
_MACHINE_LOCALS = automatic.MAILER_DAEMON_LOCALS | automatic.NO_REPLY_LOCALS | automatic.BOUNCE_COLLECTOR_LOCALS
#: lines that name other addresses than the failed ones (headers, the envelope sender, contacts);
#: no two white-space runs stand side by side, so a line of spaces is read once
_SKIP_LINE = re.compile(
    r"message-?id|in-reply-to|references:|^\s*(to|cc|subject|sent|date):\s|^\s*((<<<|>>>)\s*)?mail from|"
    r"envelope-from|return-path|^\s*from:|^\s*sender:|^\s*reply-to:|\bsent by\b|please contact|"
    r"further assistance|please send mail to|(?<!expanded )(?<!generated )\bfrom:? *<|your message .{0,40} from|"
    # the original's trace fields, quoted or folded into the notice (RFC 5321 §4.4)
    r"^[\s>]*received:|\bby [\w.-]+ with\b|\bid [\w.-]+@|^\s*for <?[^\s<>@]+@|\(orcpt\b|"
    # the postmaster's advice: where else to write, what an address should look like
    r"\be\.g\.|for example|\btry (sending|emailing|writing|to)\b|\binstead\b|standard form|"
    r"\bif\b.{0,60}\bfails\b|\bfails?,? try\b|reply to postmaster|\bcontact(ing)? (the )?(postmaster|administrator)",
    re.I)
#: an alias expansion or forward names the address it started from (Sendmail, Exim, Postfix)
_EXPANDED = re.compile(r"expanded|generated|forwarded|redirected|alias")
#: words of an error, for telling a failed address from one the notice only mentions
_FAILURE_WORDS = re.compile(r"\b[45]\d\d[ -](?!\d+(\s|$))|fail|error|unknown|reject|invalid|denied|not (be )?deliver|"
                            r"did not|could not|couldn't|unable|no such|does not|doesn't|not exist|not found|"
                            r"undeliver|bounced|refused|disabled|suspended|full|quota", re.I)
#: delay warnings (RFC 3464 Action: delayed, in words): a notice, not a failure
_DELAYED = re.compile(r"has not yet been delivered|delivery (is|has been) delayed|will (continue|keep) trying|"
                      r"will retry|still trying|warning: message .{0,200}? delayed|not been delivered yet|"
                      r"has been postponed|delivery attempts will continue|will continue to (try|attempt)|"
                      r"this is (just )?a warning|warning only|advisory[- ]only", re.I)
_STATUS_5 = re.compile(r"\b5\d\d\b|\b5\.\d+\.\d+")


def looks_like_bounce(p: ParsedMessage, note: Notification) -> bool:
    """A delivery failure notice, standard or not (a person writing "rejected" is not one)."""
    if note.dsn_parts or p.headers.first("x-failed-recipients"):
        return True
    if p.content_type == automatic.REPORT_TYPE and p.report_type in ("delivery-status", ""):
        return True
    subject, from_ = p.subject, p.header("from")
    if automatic.MAILER_DAEMON_NAME.search(from_) or automatic.local_part(p.sender or "") in _DAEMONS:
        return True   # the mail system itself (RFC 5321 §4.5.5): whatever the subject says
    bounce_subject = bool(automatic.BOUNCE_SUBJECT.search(subject))
    # RFC 3464 §2 / RFC 5321 §4.5.5: DSNs are sent with the null reverse-path, "<>".
    daemon = bool(automatic.MAIL_SYSTEM_FROM.search(from_)) or automatic.null_reverse_path(p)
    body = " ".join(note.body_text[:20000].split())   # a phrase may be folded over two lines
    if daemon and (bounce_subject or _BOUNCE_BODY.search(body)):
        return True
    if bounce_subject and automatic.AUTOMATED_FROM.search(from_):
        return True
    # From a person: a bounce-like subject alone ("Re: rejected proposal") is not enough.
    if bounce_subject and _BOUNCE_BODY_STRONG.search(body) and not auto_reply_reason(p, note.first_text):
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
        out.update(header_addresses(p.headers.get_all(name)))
    if original is not None:
        for name in ("from", "return-path", "sender", "reply-to"):
            out.update(header_addresses(original.get_all(name)))
        for name in ("message-id", "references", "in-reply-to", "x-mailgate-id"):
            for value in original.get_all(name):
                out.update(all_addresses(value))   # message ids look like addresses in running text
    return out


def failed_addresses(p: ParsedMessage, notification: TextLines, excluded: set[str]) -> list[str]:
    """The failed recipients a notification names: X-Failed-Recipients (Exim and others: not
    RFC, but widely used), else the addresses in its lines."""
    found = header_addresses(p.headers.get_all("x-failed-recipients"))
    origins: set[str] = set()   # "(expanded from <a@b>)": the address we mailed, beside the one it became
    if not found:
        for line, addrs in zip(notification.lines, notification.line_addresses):
            if addrs and not _SKIP_LINE.search(line):
                for a in _line_addresses(line, addrs):
                    if a in excluded or _machine_address(a):
                        continue
                    origin = _origin(line, a)
                    if origin is None:
                        continue
                    found.append(a)
                    if origin:
                        origins.add(a)
                if len(found) > MAX_FOUND:
                    break
    if len(set(found)) > 1:
        # MTAs list failed recipients one per line, address first ("<a@b>: 550 ...", qmail,
        # Postfix, Exim, Sendmail alike); an address only met mid-sentence ("please contact
        # <support@...>") is not one of them when such a list exists; without such a list, the
        # failed ones are those the notice says an error about.
        leading = [a for a in found if a in notification.leading or a in origins]
        found = leading or [a for a in found if notification.says(a, _FAILURE_WORDS)]
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


def _origin(line: str, address: str) -> bool | None:
    """None when the address follows "from" ("not accepting mail from <a@b>": the sender, not a
    recipient); True when it is where an alias expansion or a forward started ("expanded from
    <a@b>": the address we mailed); else False."""
    low = line.lower()
    at = low.find(address)
    if at <= 0 or "from" not in low[max(0, at - 8):at]:
        return False
    return True if _EXPANDED.search(low[max(0, at - 30):at]) else None


def _machine_address(address: str) -> bool:
    local = address.split("@", 1)[0]
    return local in _MACHINE_LOCALS or bool(_LIST_CONTROL.search(local))


def fallback_addresses(p: ParsedMessage, original: Fields | None, excluded: set[str]) -> list[str]:
    """When the notification names no address (old Sendmail: a host only): the original's To,
    else the bounce's X-Original-To. A list's post names the list in its To, not whoever's
    mailbox refused it (RFC 2369 List-Post, RFC 2919 List-Id): no recipient then."""
    if original is not None and any(original.get(name) for name in ("list-id", "list-post", "x-beenthere")):
        return []
    if original is not None:
        tos = header_addresses(original.get_all("to"))
        found = [a for a in tos if a not in excluded][:1] or tos[:1]
        if found:
            return found
    return header_addresses(p.headers.get_all("x-original-to"))


def text_recipients(found: list[str], notification: TextLines) -> list[BounceRecipient]:
    """One entry per address, with the status and reason its part of the text gives."""
    out: list[BounceRecipient] = []
    addresses = list(dict.fromkeys(found))[:MAX_RECIPIENTS]
    delayed = bool(_DELAYED.search(notification.text))
    # The whole notice speaks for a lone recipient; for a list, what it says before the list
    # speaks for the recipients that have no error of their own.
    first = min((notification.first_line.get(a, len(notification.lines)) for a in addresses), default=0)
    context = notification.text if len(addresses) == 1 else "\n".join(notification.lines[:first])
    for address in addresses:
        diag = notification.near(address)
        status = find_status(diag) or notification.status
        reason = reason_for(diag, status, context, "", address, context_reason=bool(context),
                            command=notification.commands.get(address, ""))
        status = status or implied_status(reason)
        action = "delayed" if delayed and not _STATUS_5.search(diag) else "failed"
        out.append(BounceRecipient(address, is_permanent(reason, status, diag), status, diag[:1000], reason, action))
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
        # flufl.bounce's "temporary" includes refusals; a delay is what the notice says is one
        delayed = temp and bool(_DELAYED.search(body.text))
        out.append(BounceRecipient(address, is_permanent(reason, status, diag), status, diag[:1000], reason,
                                   "delayed" if delayed else "failed"))
    return out
