"""The standard reports: RFC 3464 delivery status notifications and RFC 5965 feedback reports (ARF).

Both are header-style fields in a MIME part (message/delivery-status, message/feedback-report);
MTAs that build no multipart/report paste the same fields into a text part, and those are read too.
"""

from __future__ import annotations

import re

from ..automatic import REPORT_TYPE
from ..mime import Fields, field_lines, parse_fields
from .addresses import clean_id, field_address, header_addresses
from .notification import Notification, part_text
from .reasons import SES_RELAYED, diag_clean, find_status, is_permanent, reason_for, squash
from .report import BounceRecipient, BounceReport
from .text import MAX_RECIPIENTS, TOO_MANY

_INLINE_DSN = re.compile(r"^(Final|Original)-Recipient:\s*\S", re.M | re.I)
_INLINE_FIELDS = re.compile(r"^(Status|Action):", re.M | re.I)

# --- RFC 5965 feedback reports ------------------------------------------------------------------


def feedback_report(note: Notification) -> Fields | None:
    """The ARF fields: a message/feedback-report part, or its fields in a text part."""
    for part in note.arf_parts:
        return parse_fields(part_text(part))
    p = note.parsed
    if p.content_type == REPORT_TYPE and p.report_type == "feedback-report":
        for text in note.texts:
            fields = parse_fields(text)
            if "feedback-type" in fields:
                return fields
    for text in note.texts[:3]:
        fields = parse_fields(text)
        if "feedback-type" in fields and ("user-agent" in fields or "version" in fields):
            return fields
    return None


def fill_complaint(report: BounceReport, note: Notification, arf: Fields) -> None:
    """A complaint (RFC 5965): who complained, the feedback type, the original's id."""
    original = note.original
    report.kind, report.method = "complaint", "arf"
    report.feedback_type = (arf.first("feedback-type") or "abuse").strip().lower()[:40]
    addresses: list[str] = []
    for name in ("original-rcpt-to", "removal-recipient"):
        addresses += [a for a in map(field_address, arf.get_all(name)) if a]
    if not addresses and original is not None:
        # RFC 6650: reports should say who complained; many only quote the original's To.
        addresses = header_addresses(original.get_all("to"))[:1]
    if not addresses:
        addresses = header_addresses(note.parsed.headers.get_all("x-original-to"))[:1] or [""]
    for a in dict.fromkeys(addresses):
        report.recipients.append(BounceRecipient(a, False, "", report.feedback_type, "feedback", "complained"))
    if not report.original_message_id and original is None:
        for value in arf.get_all("original-message-id"):
            report.original_message_id = clean_id(value)


# --- RFC 3464 delivery status notifications -----------------------------------------------------


def delivery_status(note: Notification) -> str:
    """The delivery-status fields as text: the message/delivery-status parts, else RFC 3464
    fields pasted into a text part by MTAs that do not build multipart/report."""
    if note.dsn_parts:
        return "\n\n".join(part_text(p) for p in note.dsn_parts)
    for text in note.texts:
        m = _INLINE_DSN.search(text)
        if m and _INLINE_FIELDS.search(text, m.start()):
            return text[m.start():]
    return ""


def dsn_recipients(text: str, note: Notification) -> list[BounceRecipient]:
    """One entry per recipient of a delivery-status body (RFC 3464 §2.3), each address once."""
    out: list[BounceRecipient] = []
    seen: set[str] = set()
    for rec in _recipient_blocks(text):
        if len(out) >= MAX_RECIPIENTS:
            note.note_defect(TOO_MANY)
            break
        entry = _recipient(rec, note)
        # The same address twice (original + final): keep the first.
        if entry is not None and entry.address not in seen:
            seen.add(entry.address)
            out.append(entry)
    return out


def _recipient_blocks(text: str) -> list[dict[str, str]]:
    """The field blocks, first value of each name; a second Final-/Original-Recipient in one
    block starts the next (some MTAs leave out the blank line between recipients)."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for name, value in field_lines(text):
        if not name or name in ("final-recipient", "original-recipient") and name in current:
            if current:
                records.append(current)
            current = {}
            if not name:
                continue
        current.setdefault(name, value)
    if current:
        records.append(current)
    return records


def _recipient(rec: dict[str, str], note: Notification) -> BounceRecipient | None:
    if not any(name in rec for name in ("final-recipient", "original-recipient", "x-actual-recipient")):
        return None  # the per-message block (Reporting-MTA, Arrival-Date, ...)
    address, final = _addresses_of(rec, note)
    if not address:
        return None
    status = _status(rec.get("status", ""))
    diagnostic = diag_clean(rec.get("diagnostic-code", ""))
    action = _action(rec.get("action", ""), status, diagnostic)
    if action not in ("failed", "delayed"):
        return BounceRecipient(address, False, status, diagnostic[:1000], "delivered", action or "delivered")
    body = note.body_lines
    named = address if address in body.first_line or final not in body.first_line else final
    text_diag = diagnostic or body.near(named)
    relayed = SES_RELAYED.match(squash(rec.get("diagnostic-code", "")).split(";", 1)[-1].strip())
    if (status in ("", "5.0.0", "4.0.0") or status != find_status(text_diag) and relayed) \
            and find_status(text_diag):
        status = find_status(text_diag)
    near = body.near(named, fallback=False)
    # The whole text speaks for this recipient only when the DSN says nothing itself.
    reason = reason_for(text_diag, status, body.text, near, named, context_reason=not diagnostic,
                        command=body.commands.get(named, ""))
    return BounceRecipient(address, is_permanent(reason, status, text_diag), status, text_diag[:1000], reason, action)


def _addresses_of(rec: dict[str, str], note: Notification) -> tuple[str, str]:
    """(the address we mailed, the one the report ended at). RFC 3464 §2.3.1: Original-Recipient
    is the address as the sender gave it (ORCPT); Final-Recipient the one delivery last tried,
    after any forward or alias expansion. Suppression must act on the one we mailed."""
    final = _dsn_address(rec.get("final-recipient", "")) or _dsn_address(rec.get("x-actual-recipient", ""))
    original = _dsn_address(rec.get("original-recipient", ""))
    if not (original or final) and note.original is not None:
        # "Final-Recipient: rfc822; @host" (old Sendmail): the original's To names it.
        tos = header_addresses(note.original.get_all("to"))
        final = tos[0] if len(tos) == 1 else ""
    return original or final, final or original


_REPLY_CODE = re.compile(r"\s*([245])\d\d\b")


def _status(value: str) -> str:
    """The Status field (RFC 3464 §2.3.4): an RFC 3463 code; an SMTP reply code written in its
    place ("Status: 553") gives its class, "5.0.0"."""
    status = find_status(value)
    if not status:
        m = _REPLY_CODE.match(value)
        status = f"{m.group(1)}.0.0" if m else ""
    return status


def _action(value: str, status: str, diagnostic: str) -> str:
    """The Action field (RFC 3464 §2.3.3), repaired where MTAs write it wrong or not at all."""
    action = (value.split() or [""])[0].lower().strip(".;")
    if not action:
        action = "failed" if status[:1] in ("4", "5") or diagnostic else "delivered" if status[:1] == "2" else ""
    if action == "failure":
        action = "failed"
    if action == "deliverable" or status[:1] == "2" and action not in ("relayed", "expanded"):
        action = "delivered"  # Sendmail says "deliverable" for verified addresses (-bv)
    if action == "delayed" and status[:1] == "5":
        action = "failed"
    return action


def _dsn_address(value: str) -> str:
    """The address of a Final-/Original-Recipient field ("rfc822; a@b", RFC 3464 §2.3.1-2)."""
    return field_address(value)
