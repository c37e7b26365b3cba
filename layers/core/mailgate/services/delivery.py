"""Delivery of routed mail to the application's targets: Odoo and signed webhooks (DESIGN.md flow 5).

    targeting.target_of(c, route) -> str        # the target a route's message goes to, if any
    enqueue(c, message_key, target)             # record "queued", one job on the delivery queue
    deliver(c, job, attempt=n) -> dict          # one attempt (the delivery function calls it)
    retry(c, delivery_id) -> dict               # a failed delivery, queued again
    list_deliveries(c, failed=False) -> list    # the records, newest first

Exactly once per (message key, target): each pair has one delivery record (kv item
`delivery#<message key>#<target>`); an attempt takes it with a conditional write (its version),
a delivered record makes every later job a no-op, and a concurrent attempt finds it taken. A
retry after a crash mid-call may hand the same message over a second time: Odoo then drops the
Message-ID it already has (`message_process` returns False, recorded "duplicate"), and a webhook
receiver gets the same `webhook-id` and drops the repeat (Standard Webhooks).

Per delivery: DynamoDB reads the record and the target (the config item), S3 the raw message,
Secrets Manager the credential (kept 5 minutes by the store), then **one HTTP call** to the target
(XML-RPC keeps Odoo's user id; JSON-2 and webhooks need no login), and two kv writes (the take
and the result).

Retries: a timeout, a refused connection, 408, 429 (after its Retry-After) and 5xx are retried,
`first_retry` seconds after the first attempt, doubling, at most 11.5 h apart (SQS's longest
visibility timeout, 12 h from receipt, less the attempt), MAX_ATTEMPTS times: about 28.5 hours with the default 60 s, so a target down
for a day loses nothing. An XML-RPC fault or another 4xx is permanent: recorded with the answer,
and `mailgate deliveries retry` queues it again after the fix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict
from typing import Any

from ..domain import DeliveryTarget, MessageRecord
from ..effects import Effect
from ..errors import NotFound, PermanentError, TransientError
from ..ports import Delivery, DeliveryAnswer
from ..targeting import AUTOMATIC, ROUTED, UNROUTED, keeps, target_for, target_of  # noqa: F401 - this module's API too
from . import outbox

log = logging.getLogger(__name__)

PREFIX = "delivery#"
#: attempts before a delivery is given up (then recorded failed; SQS moves the job to the DLQ)
MAX_ATTEMPTS = 12
#: SQS keeps a message invisible at most 12 h from its receipt, and the attempt took some of that
#: (ChangeMessageVisibility past it is refused and the retry falls back to the queue's default)
MAX_RETRY_SECONDS = 11 * 3600 + 30 * 60
#: an attempt in flight holds the record this long (a crashed worker's take expires)
LEASE_SECONDS = 300
ATTEMPTS_KEPT = 20
#: how long the presigned URL of the raw message in a webhook payload works
RAW_URL_SECONDS = 900
DONE = ("delivered", "kept")


def delivery_id(message_key: str, target: str) -> str:
    return f"{message_key}#{target}"


def webhook_id(message_key: str, target: str) -> str:
    """The Standard Webhooks `webhook-id`: the same for every attempt of one message to one target."""
    return "msg_" + hashlib.sha256(f"{message_key}#{target}".encode()).hexdigest()[:32]


def _kv_key(message_key: str, target: str) -> str:
    return PREFIX + delivery_id(message_key, target)


# --- enqueue -----------------------------------------------------------------------------------

def job(message_key: str, target: str) -> dict[str, str]:
    """The delivery queue's message body for one message and target."""
    return {"message_key": message_key, "target": target}


@outbox.kind("deliver")
def _deliver_effect(c, effect: Effect, src: outbox.Source) -> None:
    """The outbox effect of a routed message for a target: its delivery job, queued once."""
    enqueue(c, src.record.key, str(effect.args["target"]))


def enqueue(c, message_key: str, target: str) -> bool:
    """Queue the delivery of a recorded message to `target`, once: a pair already delivered,
    kept or failed is not queued again (a replay redoes effects; `retry` is for failures)."""
    state = c.kv.get_item(_kv_key(message_key, target))
    if state is not None and state.get("status") in (*DONE, "failed"):
        return False
    if state is None:
        c.kv.put_item(_kv_key(message_key, target), _new_state(message_key, target), if_absent=True)
    c.delivery_queue.send(job(message_key, target), dedup_id=webhook_id(message_key, target))
    return True


def _new_state(message_key: str, target: str) -> dict[str, Any]:
    now = time.time()
    return {"id": delivery_id(message_key, target), "message_key": message_key, "target": target,
            "status": "queued", "attempts": [], "created": now, "updated": now, "version": 0}


# --- deliver -----------------------------------------------------------------------------------

def deliver(c, body: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
    """One attempt of one job. Returns the record with `status`: delivered, kept (automatic mail
    the target keeps out), retrying (with `retry_in` seconds), failed, or busy (another attempt
    holds it: retry later); a job for a pair already done returns its record unchanged."""
    message_key, target_name = str(body.get("message_key", "")), str(body.get("target", ""))
    if not message_key or not target_name:
        raise PermanentError(f"not a delivery job: {json.dumps(body, default=str)[:200]}", code="bad-job")
    state = _take(c, message_key, target_name)
    if state.get("status") in DONE or state.get("status") == "busy":
        return state
    try:
        target, record = _load(c, message_key, target_name)
        if keeps(target, record.outcome):
            return _finish(c, state, DeliveryAnswer("kept", detail=f"{record.outcome}: the target {target.name} "
                                                    "does not take this kind of mail", calls=0), attempt)
        answer = c.targets.deliver(target, _secrets(c, target), _delivery(c, record, target))
    except PermanentError as exc:  # the message, the target or its secret is gone
        answer = DeliveryAnswer("failed", detail=str(exc), calls=0)
    except TransientError as exc:  # S3, DynamoDB or Secrets Manager unreachable: the same backoff
        answer = DeliveryAnswer("retry", detail=str(exc), calls=0)
    except Exception as exc:  # noqa: BLE001 - a fault of ours or of hand-edited data (a secret, an
        # item): kept as an attempt with its reason and retried on the same backoff, so it shows in
        # `mailgate deliveries list` and the DeliveryFailures alarm while someone fixes it
        log.exception("delivery %s to %s failed unexpectedly", message_key, target_name)
        answer = DeliveryAnswer("retry", detail=f"unexpected error: {type(exc).__name__}: {exc}", calls=0)
    return _finish(c, state, answer, attempt)


def _take(c, message_key: str, target: str) -> dict[str, Any]:
    """The record, taken for this attempt with a conditional write; "busy" when another attempt
    holds it, unchanged when it is done."""
    key = _kv_key(message_key, target)
    state = c.kv.get_item(key) or _new_state(message_key, target)
    if state.get("status") in DONE:
        return state
    now = time.time()
    if state.get("status") == "delivering" and state.get("lease_until", 0) > now:
        return {**state, "status": "busy", "retry_in": int(state["lease_until"] - now) + 1}
    version = int(state.get("version", 0))
    taken = {**state, "status": "delivering", "lease_until": now + LEASE_SECONDS, "version": version + 1}
    if not c.kv.put_item(key, taken, if_version=version):
        return {**state, "status": "busy", "retry_in": LEASE_SECONDS}
    return taken


def _load(c, message_key: str, target_name: str) -> tuple[DeliveryTarget, MessageRecord]:
    target = c.config.get_target(target_name)
    if target is None:
        raise NotFound(f"there is no delivery target {target_name!r} any more (`mailgate target list`)")
    record = c.messages.get(message_key)
    if record is None:
        raise NotFound(f"there is no message {message_key!r} in the ledger")
    return target, record


def _secrets(c, target: DeliveryTarget) -> list[str]:
    """The Odoo API key, or the webhook's signing secrets still valid (two during a rotation)."""
    value = c.secrets.get(target.secret_id)
    if target.kind != "webhook":
        return [value]
    return valid_secrets(value)


def valid_secrets(value: str, now: float | None = None) -> list[str]:
    """The secrets of a webhook's stored value that are still valid, newest first."""
    now = time.time() if now is None else now
    try:
        entries = json.loads(value)["secrets"]
    except (ValueError, KeyError, TypeError):
        raise PermanentError("the webhook's signing secret is unreadable: `mailgate target rotate-secret`",
                             code="bad-secret") from None
    return [e["secret"] for e in entries if not e.get("until") or e["until"] > now]


def _delivery(c, record: MessageRecord, target: DeliveryTarget) -> Delivery:
    raw = c.raw_store.get(record.raw_key)  # NotFound: the raw message is gone (lifecycle)
    wid = webhook_id(record.key, target.name)
    if target.kind == "odoo":
        # byte-identical to what SES stored (or the fetch worker), as if the MTA had piped it in
        return Delivery(message_key=record.key, delivery_id=wid, raw=raw)
    return Delivery(message_key=record.key, delivery_id=wid, payload=webhook_payload(c, record, raw))


def _finish(c, state: dict[str, Any], answer: DeliveryAnswer, attempt: int) -> dict[str, Any]:
    """Record the attempt and what it leads to."""
    status = {"delivered": "delivered", "duplicate": "delivered", "kept": "kept", "failed": "failed"}.get(
        answer.outcome, "retrying")
    entry = {"at": time.time(), "attempt": attempt, "outcome": answer.outcome, "status": answer.status,
             "detail": answer.detail[:500], "calls": answer.calls}
    final = dict(state, status=status, updated=entry["at"], detail=answer.detail[:500], lease_until=0,
                 attempts=(list(state.get("attempts", [])) + [entry])[-ATTEMPTS_KEPT:],
                 version=int(state.get("version", 0)) + 1)
    if status == "retrying" and attempt >= MAX_ATTEMPTS:
        final["status"] = "failed"
        final["detail"] = f"gave up after {attempt} attempts: {answer.detail}"[:500]
    elif status == "retrying":
        final["retry_in"] = retry_delay(c.settings.delivery_first_retry, attempt, answer.retry_after)
    c.kv.put_item(_kv_key(state["message_key"], state["target"]), final)
    return final


def retry_delay(first: int, attempt: int, retry_after: float | None = None) -> int:
    """Seconds before the next attempt: `first` doubling per attempt, at least what the target
    asked for (Retry-After), at most MAX_RETRY_SECONDS."""
    delay = first * 2 ** max(0, attempt - 1)
    return int(min(MAX_RETRY_SECONDS, max(delay, retry_after or 0)))


# --- the webhook payload -----------------------------------------------------------------------

def webhook_payload(c, record: MessageRecord, raw: bytes) -> dict[str, Any]:
    """Standard Webhooks' recommended shape: {type, timestamp, data}; `data` is the EventBridge
    event's detail (docs/, events/eventbridge/) plus a short-lived URL of the raw message."""
    from . import inbound  # the event builders (loaded with the first webhook)

    parsed = inbound.message_mod.parse(raw)
    if record.outcome == "thread":
        thread = c.threads.get_thread(record.thread_id) if record.thread_id else None
        detail_type, detail = inbound.DT_THREAD, inbound.thread_event(record, parsed, thread)
    elif record.outcome == "new-record":
        detail_type, detail = inbound.DT_RECORD, inbound.record_event(record, parsed)
    else:
        detail_type, detail = inbound.DT_OUTCOME, inbound.outcome_event(record)
    data = dict(detail)
    if record.detail.get("keep_original") is False:
        data.pop("raw_key", None)  # its incoming server says not to keep the original
    else:
        data["raw_url"] = c.raw_store.presigned_url(record.raw_key, expires_seconds=RAW_URL_SECONDS)
        data["raw_url_expires_at"] = int(time.time()) + RAW_URL_SECONDS
    return {"type": "mailgate." + detail_type.lower().replace(" ", "_"), "detail_type": detail_type,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "data": data}


# --- operations --------------------------------------------------------------------------------

def list_deliveries(c, *, failed: bool = False, limit: int = 100) -> list[dict[str, Any]]:
    rows = [value for _, value in c.kv.scan_prefix(PREFIX)]
    if failed:
        rows = [r for r in rows if r.get("status") == "failed"]
    return sorted(rows, key=lambda r: r.get("updated", 0), reverse=True)[:limit]


def get(c, ident: str) -> dict[str, Any] | None:
    return c.kv.get_item(PREFIX + ident)


def retry(c, ident: str) -> dict[str, Any]:
    """Queue a delivery again (a failed one, after the fix; or one stuck in the DLQ). A delivered
    pair is left alone: the target has it."""
    state = get(c, ident)
    if state is None:
        raise NotFound(f"no delivery {ident!r}: see `mailgate deliveries list`")
    if state.get("status") in DONE:
        return state
    state = dict(state, status="queued", updated=time.time(), version=int(state.get("version", 0)) + 1,
                 lease_until=0)
    c.kv.put_item(PREFIX + ident, state)
    c.delivery_queue.send(job(state["message_key"], state["target"]))
    return state


def test_target(c, target: DeliveryTarget):
    """Odoo's Test Connection for a target: reach, authenticate, message_process callable."""
    return c.targets.test_connection(target, _secrets(c, target))


def describe(target: DeliveryTarget) -> dict[str, Any]:
    """A target as people and --json see it (its secret never)."""
    data = asdict(target)
    data.pop("uid", None)
    return data
