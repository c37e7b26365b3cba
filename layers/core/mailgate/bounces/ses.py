"""Amazon SES notifications (the JSON SNS carries, or an SNS e-mail subscription mails) as reports.

https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html
"""

from __future__ import annotations

import json
from typing import Any

from .addresses import clean_id, field_address
from .reasons import diag_clean, find_status, is_permanent, reason_for
from .report import BounceRecipient, BounceReport

_SES_PERMANENT_SUBTYPES = {"noemail": "userunknown", "suppressed": "suppressed",
                           "onaccountsuppressionlist": "suppressed"}
_SES_SOFT_SUBTYPES = {"mailboxfull": "mailboxfull", "messagetoolarge": "mesgtoobig",
                      "contentrejected": "filtered", "attachmentrejected": "filtered"}


def classify_ses_notification(notification: Any) -> BounceReport:
    """An SES bounce / complaint / delivery notification (the JSON SNS carries) as a report.

    Accepts both notification shapes: `notificationType` (identity notifications) and
    `eventType` (configuration-set event publishing). Never raises.
    """
    try:
        return _ses(notification)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against odd JSON
        return BounceReport(kind="normal", method="ses", error=f"unreadable SES notification: {exc}"[:300])


def _object(n: dict, key: str) -> dict:
    value = n.get(key)
    return value if isinstance(value, dict) else {}


def _ses(n: Any) -> BounceReport:
    if not isinstance(n, dict):
        return BounceReport(kind="normal", method="ses", error="SES notification is not a JSON object")
    ntype = str(n.get("notificationType") or n.get("eventType") or "").lower()
    mail = _object(n, "mail")
    report = BounceReport(method="ses")
    report.original_message_id = str(mail.get("messageId") or "")
    for h in mail.get("headers") or []:
        if isinstance(h, dict) and str(h.get("name", "")).lower() == "x-mailgate-id":
            report.original_mailgate_id = clean_id(h.get("value", ""))
    if ntype == "bounce":
        _bounce(report, _object(n, "bounce"))
    elif ntype == "complaint":
        _complaint(report, _object(n, "complaint"))
    elif ntype == "delivery":
        _delivery(report, _object(n, "delivery"))
    else:
        report.error = f"not a bounce, complaint or delivery notification: {ntype or 'no type'}"
    return report


def _bounce(report: BounceReport, b: dict) -> None:
    btype = str(b.get("bounceType", "")).lower()
    subtype = str(b.get("bounceSubType", "")).replace(" ", "").lower()
    report.kind = "bounce"
    for r in b.get("bouncedRecipients") or []:
        if not isinstance(r, dict):
            continue
        address = field_address(r.get("emailAddress"))
        status = find_status(str(r.get("status", "")))
        diag = diag_clean(str(r.get("diagnosticCode", "")))
        if btype == "permanent" and subtype in _SES_PERMANENT_SUBTYPES:
            reason, permanent = _SES_PERMANENT_SUBTYPES[subtype], True
        elif subtype in _SES_SOFT_SUBTYPES:
            reason, permanent = _SES_SOFT_SUBTYPES[subtype], False
        else:
            reason = reason_for(diag, status)
            # SES says "Permanent" for General bounces it could not explain: trust it then.
            permanent = is_permanent(reason, status, diag) or (
                btype == "permanent" and reason in ("undefined", "onhold", ""))
        if btype == "transient":
            permanent = False
        report.recipients.append(BounceRecipient(address, permanent, status, diag[:1000], reason,
                                                 str(r.get("action") or "failed").lower()))


def _complaint(report: BounceReport, c: dict) -> None:
    report.kind = "complaint"
    report.feedback_type = str(c.get("complaintFeedbackType") or c.get("complaintSubType") or "abuse").lower()
    for r in c.get("complainedRecipients") or []:
        if isinstance(r, dict):
            report.recipients.append(BounceRecipient(field_address(r.get("emailAddress")), False,
                                                     "", str(c.get("userAgent") or "")[:200], "feedback",
                                                     "complained"))


def _delivery(report: BounceReport, d: dict) -> None:
    report.kind = "delivery-report"
    resp = str(d.get("smtpResponse", ""))
    for r in d.get("recipients") or []:
        report.recipients.append(BounceRecipient(field_address(r), False, find_status(resp), resp[:1000],
                                                 "delivered", "delivered"))


def ses_json_in_body(text: str) -> BounceReport | None:
    """An SES notification mailed by an SNS e-mail subscription (JSON in the body), else None."""
    text = text.lstrip()
    if not text.startswith("{") or "notificationType" not in text[:200] and "eventType" not in text[:200]:
        return None
    # SNS e-mail wraps long lines as "!\n " (RFC 5322's 998-character limit).
    body = text.replace("!\n ", "")
    try:
        data, _ = json.JSONDecoder().raw_decode(body)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        try:
            data = json.loads(data["Message"])
        except ValueError:
            return None
    report = classify_ses_notification(data)
    return report if report.kind != "normal" else None
