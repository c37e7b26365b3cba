"""The classifier's order of reading (see the package docstring)."""

from __future__ import annotations

from .. import automatic
from ..message import ParsedMessage, parse
from ..mime import Fields
from .addresses import clean_id, first_address
from .autoreply import auto_reply_reason
from .dsn import delivery_status, dsn_recipients, feedback_report, fill_complaint
from .notification import Notification
from .report import BounceRecipient, BounceReport
from .ses import ses_json_in_body
from .text import (MAX_RECIPIENTS, TOO_MANY, excluded_addresses, failed_addresses, fallback_addresses, flufl_recipients,
                   looks_like_bounce, notification_text, text_recipients)


def classify(raw: bytes) -> BounceReport:
    """Classify any bytes as a bounce / complaint / auto-reply / delivery report / normal mail."""
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        return classify_parsed(parse(bytes(raw)))
    except Exception as exc:  # noqa: BLE001 - the last line of defence, exercised by fuzzing
        return BounceReport(kind="normal", error=f"unreadable message: {type(exc).__name__}: {exc}"[:300])


def classify_parsed(parsed: ParsedMessage) -> BounceReport:
    """`classify` for a message already parsed (`message.parse`): it is not parsed again."""
    try:
        note = Notification(parsed)
        report = _classify(parsed, note)
        report.defects += [d for d in note.defects if d not in report.defects]
        return report
    except Exception as exc:  # noqa: BLE001 - the last line of defence, exercised by fuzzing
        return BounceReport(kind="normal", error=f"unreadable message: {type(exc).__name__}: {exc}"[:300])


def _classify(p: ParsedMessage, note: Notification) -> BounceReport:
    report = BounceReport()
    original = note.original
    if original is not None:
        report.original_message_id = clean_id(original.first("message-id"))
        report.original_mailgate_id = clean_id(original.first("x-mailgate-id"))
    # 1. RFC 5965 ARF: a message/feedback-report part (or its fields in a text part).
    arf = feedback_report(note)
    if arf is not None:
        fill_complaint(report, note, arf)
        return report
    # SES notifications delivered by e-mail (an SNS e-mail subscription): JSON in the body.
    ses = ses_json_in_body(note.body_text)
    if ses is not None:
        return ses
    if _other_complaint(report, p, original):
        return report
    challenge = automatic.challenge_signs(p, note.first_text)
    if challenge:
        # RFC 3834 §1: a challenge is an automatic response, even dressed as a DSN (Boxbe)
        return _auto_reply(report, p, "; ".join(challenge), "challenge-response")
    # 2. RFC 3464: message/delivery-status.
    dsn = delivery_status(note)
    bounce_like = looks_like_bounce(p, note)
    if dsn and _dsn_outcome(report, dsn, note):
        return report
    auto = "" if bounce_like else auto_reply_reason(p, note.first_text)
    if auto:
        return _auto_reply(report, p, auto, "headers")
    # 3. non-standard bounce texts.
    if bounce_like or dsn:
        _text_outcome(report, p, note)
    return report


def _auto_reply(report: BounceReport, p: ParsedMessage, why: str, method: str) -> BounceReport:
    """An automatic reply: the sender is who answered (RFC 3834 §3.1.1), not a failed recipient."""
    report.kind, report.method = "auto-reply", method
    sender = first_address(p.headers.first("from")) or first_address(p.headers.first("return-path"))
    if sender:
        report.recipients = [BounceRecipient(sender, False, "", why, "vacation", "auto-replied")]
    return report


def _other_complaint(report: BounceReport, p: ParsedMessage, original: Fields | None) -> bool:
    """Complaints in a non-ARF shape: Apple's unsubscribe, Hotmail/Outlook.com's JMRP."""
    if p.headers.first("x-apple-unsubscribe").strip().lower() == "true":
        report.kind, report.method, report.feedback_type = "complaint", "headers", "opt-out"
        sender = first_address(p.headers.first("from"))
        report.recipients = [BounceRecipient(sender, False, "", "X-Apple-Unsubscribe", "feedback", "complained")]
        return True
    if original is not None and original.first("x-hmxmroriginalrecipient"):
        report.kind, report.method, report.feedback_type = "complaint", "jmrp", "abuse"
        addr = first_address(original.first("x-hmxmroriginalrecipient"))
        report.recipients = [BounceRecipient(addr, False, "", "Outlook.com junk report (JMRP)", "feedback",
                                             "complained")]
        return True
    return False


def _dsn_outcome(report: BounceReport, dsn: str, note: Notification) -> bool:
    """A bounce when the DSN names a failed (or delayed) recipient, else a delivery report when
    it names a delivered one; False when it names neither."""
    recipients = dsn_recipients(dsn, note)
    failed = [r for r in recipients if r.action in ("failed", "delayed")]
    if failed:
        report.kind, report.recipients, report.method = "bounce", failed, "dsn"
        return True
    delivered = [r for r in recipients if r.action in ("delivered", "relayed", "expanded")]
    if delivered:
        report.kind, report.recipients, report.method = "delivery-report", delivered, "dsn"
        return True
    return False


def _text_outcome(report: BounceReport, p: ParsedMessage, note: Notification) -> None:
    """A bounce read from its text, else from flufl.bounce's detectors; a bounce that names
    nobody is still a bounce (never routed as a reply), with no recipient."""
    recipients, method = _text_recipients(p, note), "text"
    if not recipients:
        recipients, method = flufl_recipients(p, note), "flufl"
    if recipients:
        report.kind, report.recipients, report.method = "bounce", recipients[:MAX_RECIPIENTS], method
    else:
        report.kind, report.method = "bounce", "headers"


def _text_recipients(p: ParsedMessage, note: Notification) -> list[BounceRecipient]:
    notification = note.lines_of(notification_text(note))
    excluded = excluded_addresses(p, note.original)
    found = failed_addresses(p, notification, excluded)
    if not found:
        inner = _inner_bounce(p, note)
        if inner:
            return inner
        found = fallback_addresses(p, note.original, excluded)
    if len(dict.fromkeys(found)) > MAX_RECIPIENTS:
        note.note_defect(TOO_MANY)
    return text_recipients(found, notification)


def _inner_bounce(p: ParsedMessage, note: Notification) -> list[BounceRecipient]:
    """A bounce forwarded inside another (a relay wrapped the DSN it got): read the inner one."""
    for part in note.original_parts[:3]:
        inner = p.attached(part)
        if inner is None:
            continue
        inner_note = Notification(inner)
        if inner_note.dsn_parts or looks_like_bounce(inner, inner_note):
            report = _classify(inner, inner_note)
            if report.kind == "bounce" and report.recipients:
                return report.recipients
    return []
