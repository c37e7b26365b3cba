"""Feedback: bounces and complaints, from DSNs at the bounce alias and from SES (via SNS).

Both entry points (`handle_inbound_bounce`, `handle_feedback`) classify what came in
(`mailgate.bounces`), find which message we sent and to whom (the signed VERP token, else our
ledger), count and suppress (`mailgate.bounce_policy`), publish "Bounce" / "Complaint" events,
and return what they did. They never send mail: a bounce is never answered (RFC 3834 §2,
RFC 3464 §2: no DSN about a DSN).

Trust: a VERP token is an HMAC over (message ref, recipient index), so a bounce that carries a
genuine one names a recipient we really mailed, and nobody else. A DSN without a genuine token is
read for its recipients, but only acts on those our ledger shows we sent to (the original's
X-Mailgate-Id or Message-ID quoted in the DSN); a forged DSN cannot get an arbitrary address
suppressed.
"""

from __future__ import annotations

import re
import time
from typing import Any

from .. import bounce_policy, suppression, tokens
from ..bounces import BounceRecipient, BounceReport, classify_parsed, classify_ses_notification
from ..domain import MessageRecord
from ..errors import TransientError
from ..message import ParsedMessage

#: how long an SES feedback id / a (message, recipient, kind) bounce is remembered for dedup
DEDUP_TTL = 30 * 24 * 3600


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].strip().lower()


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


def _ref_from_message_id(message_id: str) -> str:
    """Our Message-ID is `<ref@alias-domain>`: the ref, if it looks like one of ours."""
    local = message_id.strip("<> ").partition("@")[0]
    return local.lower() if local and re.fullmatch(r"[a-z0-9-]{4,64}", local.lower()) else ""


def _ledger(c, ref: str) -> MessageRecord | None:
    if not ref:
        return None
    try:
        rec = c.messages.get("out:" + ref)
    except Exception:
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
    result = _handle_report(c, record, report)
    try:
        record.outcome = "bounce"
        said = f"{result['outcome']}: {result['reason']}"
        record.reason = f"{record.reason}; {said}" if record.reason else said
        record.detail = {**(record.detail or {}), "feedback": result}
        c.messages.update(record)
    except Exception as exc:  # the ledger write must not lose the decision already made
        result["ledger_error"] = str(exc)[:200]
    return result


def _verp_targets(c, record: MessageRecord) -> list[tuple[str, int, MessageRecord, str, str]]:
    """(ref, index, outbound record, recipient address, sending domain) for each genuine VERP
    envelope recipient."""
    out = []
    for rcpt in record.recipients or []:
        try:
            parsed = tokens.parse_verp_address(c.token_key, rcpt)
        except Exception:
            parsed = None
        if not parsed:
            continue
        ref, index = parsed
        sent = _ledger(c, ref)
        if sent is None or not 0 <= index < len(sent.recipients):
            continue
        out.append((ref, index, sent, sent.recipients[index].strip().lower(), _sending_domain(sent, _domain_of(rcpt))))
    return out


def _handle_report(c, record: MessageRecord, report: BounceReport) -> dict[str, Any]:
    base = {"kind": report.kind, "verified": False, "recipients": [], "method": report.method}
    if report.error:
        base["classify_error"] = report.error
    if report.kind in ("normal", "auto-reply", "delivery-report"):
        why = {"normal": "not a bounce: recorded, not routed as a reply",
               "auto-reply": "automatic reply (RFC 3834): recorded, never answered",
               "delivery-report": "delivery-success notification: nothing failed"}[report.kind]
        return {**base, "outcome": "ignored", "reason": why}

    targets = _verp_targets(c, record)
    actions: list[dict[str, Any]] = []
    if targets:
        base["verified"] = True
        for ref, index, sent, address, domain in targets:
            entry = _entry_for(report, address)
            actions.append(_apply(c, report, entry, address, domain, sent, ref, index, via="verp"))
    else:
        # No genuine token: act only on recipients the ledger shows we mailed.
        sent = _ledger(c, report.original_mailgate_id.lower()) or \
            _ledger(c, _ref_from_message_id(report.original_message_id))
        ref = sent.key[4:] if sent is not None else ""
        sent_to = {r.strip().lower(): i for i, r in enumerate(sent.recipients)} if sent is not None else {}
        for entry in report.recipients:
            if not entry.address:
                continue
            if entry.address in sent_to:
                domain = _sending_domain(sent, "")
                actions.append(_apply(c, report, entry, entry.address, domain, sent, ref, sent_to[entry.address],
                                      via="ledger"))
                base["verified"] = True
            else:
                actions.append({"address": entry.address, "action": "none",
                                "why": "not verified: no genuine VERP token, and the ledger shows no message "
                                       "of ours to this address"})
    base["recipients"] = actions
    applied = [a for a in actions if a.get("action") not in ("none", "duplicate")]
    if not actions:
        return {**base, "outcome": "unresolved",
                "reason": "a bounce that names no recipient and carries no genuine VERP token"}
    if not applied:
        dup = all(a.get("action") == "duplicate" for a in actions)
        return {**base, "outcome": "duplicate" if dup else "unverified",
                "reason": "already counted" if dup else "no recipient could be verified as one we mailed"}
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
    return BounceRecipient(address, permanent, failed[0].status if failed else "", diag,
                           failed[0].reason if failed else "undefined")


def _apply(c, report: BounceReport, entry: BounceRecipient, address: str, domain: str,
           sent: MessageRecord | None, ref: str, index: int, *, via: str, source: str = "dsn",
           feedback_id: str = "") -> dict[str, Any]:
    kind = "complaint" if report.kind == "complaint" else "bounce"
    dedup = f"bdedup#{ref or 'noref'}#{index}#{kind}#{entry.action}#{int(entry.permanent)}"
    if ref and not c.kv.put_item(dedup, {"at": time.time()}, ttl_seconds=DEDUP_TTL, if_absent=True):
        return {"address": address, "action": "duplicate", "why": "this bounce of this message was already counted"}
    try:
        outcome = _count(c, report, entry, address, domain, kind, source)
    except Exception as exc:
        if ref and _is_transient(exc):
            _forget(c, dedup)  # nothing was counted: the retry must count it
        raise
    return _publish(c, report, entry, address, domain, sent, ref, index, kind, outcome, via=via, source=source,
                    feedback_id=feedback_id)


def _count(c, report: BounceReport, entry: BounceRecipient, address: str, domain: str, kind: str,
           source: str) -> dict[str, Any]:
    policy = c.bounce_policy
    if kind == "complaint":
        outcome = bounce_policy.record_complaint(c.kv, domain, address, feedback_type=report.feedback_type,
                                                 policy=policy)
    elif entry.action == "delayed":
        # A delay warning (RFC 3464 Action: delayed) is news, not a failure: the final DSN, if
        # any, is what counts. The application still hears of it.
        existing = suppression.is_suppressed(c.kv, domain, address)
        outcome = {"score": bounce_policy.score(c.kv, domain, address, policy=policy),
                   "suppressed": existing is not None, "newly_suppressed": False,
                   "why": (existing or {}).get("reason", "")}
    else:
        outcome = bounce_policy.record_bounce(c.kv, domain, address, permanent=entry.permanent, reason=entry.reason,
                                              status=entry.status, source=source, policy=policy)
    return outcome


def _publish(c, report: BounceReport, entry: BounceRecipient, address: str, domain: str,
             sent: MessageRecord | None, ref: str, index: int, kind: str, outcome: dict[str, Any], *,
             via: str, source: str, feedback_id: str) -> dict[str, Any]:
    detail = {
        "domain": domain, "address": address, "message_ref": ref, "recipient_index": index,
        "thread_id": sent.thread_id if sent is not None else "",
        "message_id": sent.message_id if sent is not None else report.original_message_id,
        "verified_by": via, "source": source,
        "suppressed": outcome["suppressed"], "newly_suppressed": outcome["newly_suppressed"],
        "suppression_reason": outcome["why"],
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

    Idempotent: keyed by SES's feedbackId (else the SES message id and type). Returns what was
    done ({"outcome": "bounced" | "complaint" | "duplicate" | "ignored", ...}). Trouble of the
    stores raises TransientError, after removing the marker this call wrote, so that a retry
    counts the notification instead of taking it for a duplicate.
    """
    try:
        return _handle_notification(c, notification)
    except TransientError:
        raise
    except Exception as exc:
        if _is_transient(exc):
            raise TransientError(f"processing an SES notification failed: {type(exc).__name__}: {exc}"[:300],
                                 code="aws-transient") from exc
        raise


def _is_transient(exc: Exception) -> bool:
    """Trouble of the stores rather than of the record: the adapters say so (TransientError);
    a refused item (PermanentError) or any other error is the record's fault."""
    return isinstance(exc, TransientError)


def _forget(c, key: str) -> None:
    """Remove a dedup marker this invocation wrote, so that its retry is not taken for a duplicate."""
    try:
        c.kv.delete_item(key)
    except Exception:  # noqa: BLE001 - best effort: the store is already failing
        pass


def _handle_notification(c, notification: Any) -> dict[str, Any]:
    report = classify_ses_notification(notification)
    if report.kind not in ("bounce", "complaint"):
        return {"outcome": "ignored", "kind": report.kind, "reason": report.error or f"{report.kind} notification"}
    body = notification.get(report.kind) if isinstance(notification.get(report.kind), dict) else {}
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    feedback_id = str(body.get("feedbackId") or "")
    key = f"sesfb#{feedback_id or (str(mail.get('messageId') or '') + '#' + report.kind)}"
    if not c.kv.put_item(key, {"at": time.time(), "kind": report.kind}, ttl_seconds=DEDUP_TTL, if_absent=True):
        return {"outcome": "duplicate", "kind": report.kind, "feedback_id": feedback_id,
                "reason": "this SES notification was already processed"}
    try:
        return _process_ses(c, report, body, mail, feedback_id)
    except Exception as exc:
        if _is_transient(exc):
            _forget(c, key)
        raise


def _process_ses(c, report: BounceReport, body: dict, mail: dict, feedback_id: str) -> dict[str, Any]:
    sent = _ledger(c, report.original_mailgate_id.lower())
    ref = sent.key[4:] if sent is not None else ""
    source_addr = str(mail.get("source") or "")
    domain = _sending_domain(sent, _domain_of(source_addr))
    actions = []
    for entry in report.recipients:
        if not entry.address:
            continue
        index = next((i for i, r in enumerate(sent.recipients) if r.strip().lower() == entry.address), -1) \
            if sent is not None else -1
        actions.append(_apply(c, report, entry, entry.address, domain, sent, ref if index >= 0 else "", index,
                              via="ses", source="ses", feedback_id=feedback_id))
    return {"outcome": "complaint" if report.kind == "complaint" else "bounced", "kind": report.kind,
            "feedback_id": feedback_id, "domain": domain, "recipients": actions,
            "reason": "; ".join(f"{a['address']}: {a['action']}" for a in actions)[:500]}
