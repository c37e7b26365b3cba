"""What the HTTP API does, as plain functions over the container (the Lambda handler in
`mailgate.entrypoints.api` only turns requests into calls and values into answers; docs/openapi.yaml
describes both).

    send(c, request, idempotency_key) -> dict          POST /v1/messages
    message(c, key) -> dict                            GET /v1/messages/{key}
    raw_url(c, key) -> dict                            GET /v1/messages/{key}/raw
    link_thread(c, thread_id, model, record_id) -> dict  POST /v1/threads/{id}/link
    suppression_of(c, address, domain=None) -> dict    GET /v1/suppressions/{address}
    lift_suppression(c, address, domain=None) -> dict  DELETE /v1/suppressions/{address}

Errors are the core's: InvalidRequest / InvalidInput (400), NotFound (404), Conflict (409).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from typing import Any

from .. import compose, suppression
from ..errors import InvalidInput, NotFound, PermanentError
from ..validate import domain_name
from .outbound import claim_ref, recorded_ref

#: how long the URL of a raw message works
RAW_URL_SECONDS = 900
#: a record's model and id, as Odoo names them (`crm.lead`, 42)
MAX_NAME = 128


class Conflict(PermanentError):
    """The request contradicts what is recorded (a thread already linked to another record)."""

    code = "conflict"


def send(c, request: Any, idempotency_key: str | None) -> dict[str, Any]:
    """Validate a send request (docs/outbound.md) and queue it for the outbound function. The
    `Idempotency-Key` header is the request's idempotency key: the same key never sends twice, and
    asking again answers with what is recorded."""
    if not isinstance(request, dict):
        raise compose.InvalidRequest("the body must be a JSON object (a send request)", code="bad-request",
                                     field="body")
    request = dict(request)
    given = request.get("idempotency_key")
    key = (idempotency_key or "").strip() or given
    if idempotency_key and given and given != idempotency_key.strip():
        raise compose.InvalidRequest("the Idempotency-Key header and the body's idempotency_key differ: send one",
                                     code="bad-request", field="idempotency_key")
    request["idempotency_key"] = key
    compose.parse_request(request)  # refused at the door: the outbound function would refuse it too
    ref = recorded_ref(c, key)
    existing = c.messages.get("out:" + ref) if ref else None
    if existing is not None:
        return {"message_key": existing.key, "ref": ref, "status": existing.outcome, "duplicate": True}
    # the ref the outbound function will use (drawn once per key and recorded), so that the
    # answer names the ledger record to read
    ref = ref or claim_ref(c, key)
    c.outbound_queue.send(request, dedup_id=hashlib.sha256(f"api:{key}".encode()).hexdigest()[:64])
    return {"message_key": "out:" + ref, "ref": ref, "status": "queued", "duplicate": False}


def message(c, key: str) -> dict[str, Any]:
    """A ledger record (inbound `in:…` or outbound `out:…`) with its outcome."""
    record = c.messages.get(key)
    if record is None:
        raise NotFound(f"no message {key!r}")
    data = asdict(record)
    return {k: data[k] for k in ("key", "direction", "source", "message_id", "sender", "recipients", "subject",
                                 "outcome", "reason", "thread_id", "received_at", "raw_key", "detail")}


def raw_url(c, key: str) -> dict[str, Any]:
    """A short-lived URL of the message's raw bytes (inbound as received, outbound as sent)."""
    record = c.messages.get(key)
    if record is None:
        raise NotFound(f"no message {key!r}")
    if record.detail.get("keep_original") is False or not c.raw_store.exists(record.raw_key):
        raise NotFound(f"the raw message of {key!r} is not kept")
    return {"key": key, "url": c.raw_store.presigned_url(record.raw_key, expires_seconds=RAW_URL_SECONDS),
            "expires_at": int(time.time()) + RAW_URL_SECONDS}


def link_thread(c, thread_id: str, model: Any, record_id: Any) -> dict[str, Any]:
    """Bind the thread a "Record To Create" opened to the record the application created: replies
    in it then name (model, record_id), and outbound requests for that record use it."""
    model, record_id = _name(model, "model"), _name(record_id, "record_id")
    thread = c.threads.get_thread(thread_id)
    if thread is None:
        raise NotFound(f"no thread {thread_id!r}")
    if thread.record_id and (thread.model, thread.record_id) != (model, record_id):
        raise Conflict(f"thread {thread_id} is linked to {thread.model} {thread.record_id} already")
    other = c.threads.find_thread_for_record(model, record_id)
    if other is not None and other.thread_id != thread_id:
        raise Conflict(f"{model} {record_id} has thread {other.thread_id} already")
    if not c.threads.link_record(thread_id, model, record_id):  # another link got there first
        raise Conflict(f"thread {thread_id} is linked to another record already")
    thread = c.threads.get_thread(thread_id) or thread
    return {"thread_id": thread.thread_id, "model": thread.model, "record_id": thread.record_id,
            "followers": list(thread.followers), "subject": thread.subject}


def _name(value: Any, field: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or any(
            ch in value for ch in "#\r\n\x00"):
        raise InvalidInput(f"{field} must be a non-empty string of at most {MAX_NAME} characters without '#' "
                           "or line breaks (an integer id is taken too)")
    return value.strip()


def _domains(c, domain: str | None) -> list[str]:
    if domain:
        return [domain_name(domain)]
    return [d.name for d in c.config.list_domains()]


def suppression_of(c, address: str, domain: str | None = None) -> dict[str, Any]:
    """Whether mail to `address` is suppressed, per alias domain it is sent from."""
    address = compose.normalize_address(address, "address").lower()
    entries = [e for d in _domains(c, domain) if (e := suppression.is_suppressed(c.kv, d, address))]
    return {"address": address, "suppressed": bool(entries), "entries": entries}


def lift_suppression(c, address: str, domain: str | None = None) -> dict[str, Any]:
    """Lift the suppression of `address` (for one alias domain, or all); 404 when there was none."""
    address = compose.normalize_address(address, "address").lower()
    lifted = [d for d in _domains(c, domain) if suppression.unsuppress(c.kv, d, address)]
    if not lifted:
        raise NotFound(f"{address} is not suppressed")
    return {"address": address, "suppressed": False, "lifted": lifted}
