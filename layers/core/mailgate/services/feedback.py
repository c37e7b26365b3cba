"""Feedback: bounces and complaints, from DSNs at the bounce alias and from SES (via SNS).

Both entry points (`handle_inbound_bounce`, `handle_feedback`) classify what came in
(`mailgate.bounces`), find which message we sent and to whom (the signed VERP token, else our
ledger), count and suppress (`mailgate.bounce_policy`), publish "Bounce" / "Complaint" events,
and return what they did. They never send mail: a bounce is never answered (RFC 3834 §2,
RFC 3464 §2: no DSN about a DSN).

Trust: a report received by mail counts against a recipient only with proof for that recipient:
a genuine VERP token, an HMAC over (message ref, recipient index) that only that recipient's copy
carried, as its envelope sender. A DSN (RFC 3464) is sent to that envelope sender, so the token
is in the envelope recipient. A feedback-loop complaint (RFC 5965) goes to the address registered
with the mailbox provider instead; the token is then in the report's Original-Mail-From field or
in the Return-Path of the copy it attaches. The token's recipient index decides who is counted,
never an address in the report. X-Mailgate-Id and Message-ID prove nothing: every recipient of a
message sees them. A report without proof is recorded ("unproven", with its kind and reason) and
counts against no one. SES notifications are trusted: they come from SES through our SNS topic.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from .. import bounce_policy, failpoints, suppression, tokens
from ..bounces import BounceRecipient, BounceReport, classify_parsed, classify_ses_notification
from ..bounces.dsn import feedback_report
from ..bounces.notification import Notification
from ..domain import MessageRecord
from ..errors import TransientError
from ..message import ParsedMessage
from ..mime import addr_spec

#: addresses read for a VERP token in one report (a report is about one copy: a few suffice)
MAX_PROOF_ADDRESSES = 20
#: how long an SES feedback id / a (message, recipient, kind) bounce is remembered for dedup
DEDUP_TTL = 30 * 24 * 3600


def _domain_of(address: str) -> str:
    """The domain of an address value (SES's mail.source is the From header: a display name,
    RFC 2047 encoded words, comments may come with it)."""
    return addr_spec(address).rpartition("@")[2]


def _sending_domain(out: MessageRecord | None, fallback: str) -> str:
    if out is not None:
        d = str((out.detail or {}).get("domain") or "")
        if d:
            return d.lower()
        m = re.search(r"@([^>@\s]+)>?$", out.message_id or "")
        if m:
            return m.group(1).lower()
        if out.sender and "@" in out.sender:
            return _domain_of(out.sender)
    return fallback.lower()


def _ledger(c, ref: str) -> MessageRecord | None:
    if not ref:
        return None
    try:
        rec = c.messages.get("out:" + ref)
    except TransientError:
        raise  # the ledger is unreachable, not the message unknown: the notification is retried
    except Exception:  # noqa: BLE001 - a key the table refuses (a hostile ref) names no message
        return None
    return rec if rec is not None and rec.direction == "out" else None


# --------------------------------------------------------------------------------------------
# DSNs and ARF reports that reach the bounce alias


def handle_inbound_bounce(c, record: MessageRecord, parsed: ParsedMessage) -> dict[str, Any]:
    """Process a message that reached the bounce alias (or looks like a DSN). Never replies.

    Returns {"outcome", "kind", "verified", "recipients": [...], "reason"} and records it on
    `record`: the ledger's outcome stays "bounce" (the inbound vocabulary: how the message was
    routed); what feedback made of it follows the routing reason and is kept whole in detail["feedback"].
    """
    report = classify_parsed(parsed)
    result = _handle_report(c, record, parsed, report)
    try:
        record.outcome = "bounce"
        said = f"{result['outcome']}: {result['reason']}"
        record.reason = f"{record.reason}; {said}" if record.reason else said
        record.detail = {**(record.detail or {}), "feedback": result}
        c.messages.update(record)
    except Exception as exc:  # the ledger write must not lose the decision already made
        result["ledger_error"] = str(exc)[:200]
    return result


def _proof_addresses(record: MessageRecord, parsed: ParsedMessage, report: BounceReport) -> list[str]:
    """Where a VERP token may prove a report: the envelope recipients (a DSN is sent to the
    envelope sender), and for a complaint the ARF Original-Mail-From (RFC 5965 §3.2) and the
    Return-Path of the attached copy (added at delivery: the envelope sender of that copy)."""
    found = list(record.recipients or [])
    if report.kind == "complaint":
        note = Notification(parsed)
        arf = feedback_report(note)
        original = note.original
        for value in ((arf.get_all("original-mail-from") if arf is not None else []) +
                      (original.get_all("return-path") if original is not None else [])):
            # a path or an address list: `<bounce+TOKEN@domain>`; only a token's words matter
            found += [w for w in re.split(r"[\s<>,;()\"]+", value[:1000]) if "@" in w]
    return found[:MAX_PROOF_ADDRESSES]


def _verp_targets(c, addresses: list[str]) -> list[tuple[str, int, MessageRecord, str, str]]:
    """(ref, index, outbound record, recipient address, sending domain) for each genuine VERP
    address, once per recipient."""
    out, seen = [], set()
    for rcpt in addresses:
        try:
            parsed = tokens.parse_verp_address(c.token_key, rcpt)
        except Exception:
            parsed = None
        if not parsed or parsed in seen:
            continue
        seen.add(parsed)
        ref, index = parsed
        sent = _ledger(c, ref)
        if sent is None or not 0 <= index < len(sent.recipients):
            continue
        out.append((ref, index, sent, addr_spec(sent.recipients[index]), _sending_domain(sent, _domain_of(rcpt))))
    return out


def _handle_report(c, record: MessageRecord, parsed: ParsedMessage, report: BounceReport) -> dict[str, Any]:
    base = {"kind": report.kind, "verified": False, "recipients": [], "method": report.method}
    if report.error:
        base["classify_error"] = report.error
    if report.kind in ("normal", "auto-reply", "delivery-report"):
        why = {"normal": "not a bounce: recorded, not routed as a reply",
               "auto-reply": "automatic reply (RFC 3834): recorded, never answered",
               "delivery-report": "delivery-success notification: nothing failed"}[report.kind]
        return {**base, "outcome": "ignored", "reason": why}

    targets = _verp_targets(c, _proof_addresses(record, parsed, report))
    if not targets:
        named = [{"address": e.address, "action": "none",
                  "why": "unproven: named by the report, which carries no token of ours for it"} for e in report.recipients if e.address]
        return {**base, "recipients": named[:50], "outcome": "unproven",
                "reason": f"a {report.kind} without a genuine VERP token of ours (in the envelope recipient"
                          f"{', the report or the attached copy' if report.kind == 'complaint' else ''}): it "
                          "proves nothing about who received our mail, so it counts against no one"}
    base["verified"] = True
    actions = [_apply(c, report, _entry_for(report, address), address, domain, sent, ref, index, via="verp")
               for ref, index, sent, address, domain in targets]
    base["recipients"] = actions
    applied = [a for a in actions if a.get("action") != "duplicate"]
    if not applied:
        return {**base, "outcome": "duplicate", "reason": "already counted"}
    return {**base, "outcome": "complaint" if report.kind == "complaint" else "bounced",
            "reason": "; ".join(f"{a['address']}: {a['action']}" for a in applied)[:500]}


def _entry_for(report: BounceReport, address: str) -> BounceRecipient:
    for e in report.recipients:
        if e.address == address:
            return e
    if len(report.recipients) == 1:
        # Forwarded mail: the DSN names the final mailbox, VERP names the one we sent to.
        e = report.recipients[0]
        return BounceRecipient(address, e.permanent, e.status, e.diagnostic, e.reason, e.action)
    failed = report.failed
    permanent = bool(failed) and all(e.permanent for e in failed)
    diag = failed[0].diagnostic if failed else ""
    # RFC 3464 Action: delayed is a notice, not a failure: it stays one whatever address it names
    action = "delayed" if failed and all(e.action == "delayed" for e in failed) else "failed"
    return BounceRecipient(address, permanent, failed[0].status if failed else "", diag,
                           failed[0].reason if failed else "undefined", action)


def _apply(c, report: BounceReport, entry: BounceRecipient, address: str, domain: str,
           sent: MessageRecord | None, ref: str, index: int, *, via: str, source: str = "dsn",
           feedback_id: str = "", notification: str = "") -> dict[str, Any]:
    """Count one recipient's bounce or complaint and publish its event: counted once, published
    at least once under a stable `event_id`.

    The marker that makes a repeat a duplicate is written last, after the event is published: a
    process that dies before it (a timeout, a kill) leaves nothing that would make its retry
    skip the event. The retry counts again under the same key, which adds nothing and gives back
    what the first count did (`bounce_policy`), and publishes the same event under the same id,
    which the application drops if it had it already. `notification` names an SES notification
    (for a recipient not found in our ledger, which has no marker of its own)."""
    kind = "complaint" if report.kind == "complaint" else "bounce"
    dedup = f"bdedup#{ref}#{index}#{kind}#{entry.action}#{int(entry.permanent)}" if ref else ""
    if dedup and c.kv.get_item(dedup) is not None:
        return {"address": address, "action": "duplicate", "why": "this bounce of this message was already counted"}
    # One name per bounce of one recipient (of one message, whichever way the report came; else
    # of one SES notification): the count's key and the event's id.
    key = hashlib.sha256((dedup or f"{notification}#{address}#{kind}").encode()).hexdigest()[:32]
    outcome = _count(c, report, entry, address, domain, kind, source, key)
    failpoints.hit("feedback.before-publish")
    result = _publish(c, report, entry, address, domain, sent, ref, index, kind, outcome, via=via, source=source,
                      feedback_id=feedback_id, event_id=f"{kind}:{key}")
    failpoints.hit("feedback.after-publish")
    if dedup:
        c.kv.put_item(dedup, {"at": time.time()}, ttl_seconds=DEDUP_TTL)
    return result


def _count(c, report: BounceReport, entry: BounceRecipient, address: str, domain: str, kind: str,
           source: str, key: str) -> dict[str, Any]:
    policy = c.bounce_policy
    if kind == "complaint":
        outcome = bounce_policy.record_complaint(c.kv, domain, address, feedback_type=report.feedback_type,
                                                 policy=policy, key=key)
    elif entry.action == "delayed":
        # A delay warning (RFC 3464 Action: delayed) is news, not a failure: the final DSN, if
        # any, is what counts. The application still hears of it.
        existing = suppression.is_suppressed(c.kv, domain, address)
        outcome = {"score": bounce_policy.score(c.kv, domain, address, policy=policy),
                   "suppressed": existing is not None, "newly_suppressed": False,
                   "why": (existing or {}).get("reason", "")}
    else:
        outcome = bounce_policy.record_bounce(c.kv, domain, address, permanent=entry.permanent, reason=entry.reason,
                                              status=entry.status, source=source, policy=policy, key=key)
    return outcome


def _publish(c, report: BounceReport, entry: BounceRecipient, address: str, domain: str,
             sent: MessageRecord | None, ref: str, index: int, kind: str, outcome: dict[str, Any], *,
             via: str, source: str, feedback_id: str, event_id: str) -> dict[str, Any]:
    detail = {
        "domain": domain, "address": address, "message_ref": ref, "recipient_index": index,
        "thread_id": sent.thread_id if sent is not None else "",
        "message_id": sent.message_id if sent is not None else report.original_message_id,
        "verified_by": via, "source": source,
        "suppressed": outcome["suppressed"], "newly_suppressed": outcome["newly_suppressed"],
        "suppression_reason": outcome["why"], "event_id": event_id,
    }
    if feedback_id:
        detail["feedback_id"] = feedback_id
    if kind == "complaint":
        detail["feedback_type"] = report.feedback_type
        c.events.publish("Complaint", detail)
    else:
        detail.update({"permanent": entry.permanent, "status": entry.status, "diagnostic": entry.diagnostic[:500],
                       "reason": entry.reason, "action": entry.action, "score": outcome.get("score", 0)})
        c.events.publish("Bounce", detail)
    action = "suppressed" if outcome["newly_suppressed"] else "delay-noted" if (
        kind == "bounce" and entry.action == "delayed") else "counted"
    return {"address": address, "action": action,
            "permanent": entry.permanent, "status": entry.status, "domain": domain, **(
                {"score": outcome["score"]} if "score" in outcome else {})}


# --------------------------------------------------------------------------------------------
# SES notifications (the feedback function receives them through SNS)


def handle_feedback(c, notification: Any) -> dict[str, Any]:
    """One SES bounce / complaint / delivery notification (the JSON SNS carries), processed once.

    Idempotent: keyed by SES's feedbackId (else the SES message id and type), marked done only
    once every recipient's event is published. Returns what was done ({"outcome": "bounced" |
    "complaint" | "duplicate" | "ignored", ...}). Trouble of the stores raises TransientError:
    nothing is marked done yet, so SNS's retry of the invocation counts the notification (once)
    instead of taking it for a duplicate.
    """
    return _handle_notification(c, notification)


def _handle_notification(c, notification: Any) -> dict[str, Any]:
    report = classify_ses_notification(notification)
    if report.kind not in ("bounce", "complaint"):
        return {"outcome": "ignored", "kind": report.kind, "reason": report.error or f"{report.kind} notification"}
    body = notification.get(report.kind) if isinstance(notification.get(report.kind), dict) else {}
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    feedback_id = str(body.get("feedbackId") or "")
    key = f"sesfb#{feedback_id or (str(mail.get('messageId') or '') + '#' + report.kind)}"
    if c.kv.get_item(key) is not None:
        return {"outcome": "duplicate", "kind": report.kind, "feedback_id": feedback_id,
                "reason": "this SES notification was already processed"}
    result = _process_ses(c, report, body, mail, feedback_id, key)
    # Last, as each recipient's marker (`_apply`): a crash before it is retried whole.
    c.kv.put_item(key, {"at": time.time(), "kind": report.kind}, ttl_seconds=DEDUP_TTL)
    return result


def _process_ses(c, report: BounceReport, body: dict, mail: dict, feedback_id: str,
                 notification: str) -> dict[str, Any]:
    sent = _ledger(c, report.original_mailgate_id.lower())
    ref = sent.key[4:] if sent is not None else ""
    source_addr = str(mail.get("source") or "")
    domain = _sending_domain(sent, _domain_of(source_addr))
    actions = []
    for entry in report.recipients:
        if not entry.address:
            continue
        index = next((i for i, r in enumerate(sent.recipients) if addr_spec(r) == entry.address), -1) \
            if sent is not None else -1
        actions.append(_apply(c, report, entry, entry.address, domain, sent, ref if index >= 0 else "", index,
                              via="ses", source="ses", feedback_id=feedback_id, notification=notification))
    return {"outcome": "complaint" if report.kind == "complaint" else "bounced", "kind": report.kind,
            "feedback_id": feedback_id, "domain": domain, "recipients": actions,
            "reason": "; ".join(f"{a['address']}: {a['action']}" for a in actions)[:500]}
