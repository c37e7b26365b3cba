"""Inbound processing: one raw message in, one recorded outcome out (exactly once).

    ingest(c, raw_key, *, source, envelope_recipients, verdicts=None) -> MessageRecord
    replay(c, key) -> MessageRecord             # route a stored message again, after a fix

The SES Lambda action (mailgate.entrypoints.inbound) and the fetch worker both call `ingest`.

Per message the store calls are (the DynamoDB adapter makes each one call):

    1. c.raw_store.get(raw_key)                         S3 GetObject
    2. c.inbound.load(keys)                             one BatchGetItem (a second one only when
                                                        References name a thread, or an alias has
                                                        a forced thread: the thread items)
    3. c.inbound.commit(record, thread, index, follower, counter)
                                                        one TransactWriteItems, conditional on the
                                                        message key being new (exactly-once); for
                                                        a replay, on the record's version
    4. c.events.publish(...)                            one PutEvents

plus, off the common path: attachments (S3 PutObject each), follower notifications (SQS), the
polite answer (a conditional kv write, then SQS). A replay writes through the same commit.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import re
import time
from typing import Any, Iterable

from .. import bounce_policy, routing
from .. import message as message_mod
from ..domain import AliasDomain, IncomingServer, MessageRecord, Thread, new_id
from ..errors import NotFound, PermanentError, TransientError
from ..inbound_model import Snapshot, message_key, previous_message_key
from ..message import ParsedMessage

log = logging.getLogger(__name__)

#: Where the SES S3 action stores raw mail: objectKeyPrefix + mail.messageId. The prefix is
#: `settings.ses_raw_prefix` (MAILGATE_SES_RAW_PREFIX); this is its default.
RAW_PREFIX = "raw/ses/"
ATTACHMENT_PREFIX = "att/"
#: EventBridge entries are limited to 256 KB: text fields are cut (UTF-8 worst case 4 bytes/char)
#: and flagged; the full message stays in S3 under raw_key.
MAX_EVENT_TEXT, MAX_EVENT_HTML, MAX_EVENT_REPLY = 16_000, 16_000, 8_000
#: attachments listed in an event (the rest are in S3 under att/<message key>/, and counted)
MAX_EVENT_ATTACHMENTS = 50
#: SQS messages are limited to 256 KB as well.
MAX_NOTIFY_TEXT, MAX_NOTIFY_HTML = 60_000, 60_000
MAX_RECORD_RECIPIENTS = 200
#: One polite answer per sender per day at most (and never to an automatic message).
ANSWER_WINDOW_SECONDS = 24 * 3600
#: a replayed record keeps the outcomes of its last replays
REPLAYS_KEPT = 10

#: a Message-ID the outbound request schema accepts as in_reply_to (others are left out)
_SIMPLE_MSGID = re.compile(r"[^<>\s\"()\\,;:]{1,200}@[^<>\s\"()\\,;:@]{1,250}")

DT_THREAD = "Message Routed To Thread"
DT_RECORD = "Record To Create"
DT_OUTCOME = "Message Outcome"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100] or "part"


# --- decide ----------------------------------------------------------------------------------

def route_message(c, parsed: ParsedMessage, envelope_recipients: Iterable[str], *,
                  verdicts: dict[str, Any] | None = None) -> routing.Route:
    """Read what the decision needs (one batch) and decide. No writes: `mailgate route` uses it."""
    route, _ = _decide(c, parsed, list(envelope_recipients or []), verdicts, None)
    return route


def _decide(c, parsed: ParsedMessage, recipients: list[str], verdicts: dict[str, Any] | None,
            fetched_from: IncomingServer | None) -> tuple[routing.Route, Snapshot]:
    token_key = c.token_key
    # in the same read: this message's record under the key of an earlier version, if any
    keys = routing.lookup_keys(parsed, recipients, c.inbound.domains(), token_key,
                               ledger_keys=[previous_message_key(parsed)])
    snapshot = c.inbound.load(keys)
    route = routing.decide(parsed, recipients, snapshot, token_key=token_key, verdicts=verdicts,
                           fetched_from=fetched_from)
    return route, snapshot


def _fetched_from(c, source: str) -> IncomingServer | None:
    """The incoming server a fetched message came from (source "imap:NAME" / "pop:NAME")."""
    protocol, _, name = (source or "").partition(":")
    if protocol not in ("imap", "pop") or not name:
        return None
    return c.config.get_incoming(name)


# --- ingest ----------------------------------------------------------------------------------

def ingest(c, raw_key: str, *, source: str, envelope_recipients: Iterable[str] = (),
           verdicts: dict[str, Any] | None = None) -> MessageRecord:
    """Route the raw message stored at `raw_key`; idempotent (a second delivery returns the first's record)."""
    record, _ = _ingest(c, raw_key, source=source, envelope_recipients=envelope_recipients, verdicts=verdicts)
    return record


def _ingest(c, raw_key: str, *, source: str, envelope_recipients: Iterable[str],
            verdicts: dict[str, Any] | None, replay_of: MessageRecord | None = None) -> tuple[MessageRecord, bool]:
    """Route and record one message (a replay rewrites `replay_of`); (the record, whether this call
    recorded it)."""
    envelope = [str(r) for r in (envelope_recipients or [])][:1000]
    replace = replay_of is not None
    try:
        raw = c.raw_store.get(raw_key)
    except NotFound as exc:
        record = MessageRecord(key="in:missing:" + hashlib.sha256(raw_key.encode()).hexdigest()[:40],
                               raw_key=raw_key, source=source, recipients=envelope[:MAX_RECORD_RECIPIENTS],
                               outcome="failed", reason=f"raw message not found: {exc}")
        return _record_outcome(c, record, replace=False)

    parsed = message_mod.parse(raw)
    # a replay keeps the thread its first route created
    previous_thread = replay_of.thread_id if replay_of is not None and replay_of.outcome == "new-record" else ""
    record = _record_for(parsed, message_key(raw), raw_key, source, envelope, verdicts, replay_of)
    try:
        server = _fetched_from(c, record.source)
        route, snapshot = _decide(c, parsed, envelope, verdicts, server)
    except TransientError:
        raise  # the store is unreachable: let the invocation be retried
    except Exception as exc:  # noqa: BLE001 - a bug or hostile input must not lose the message
        log.exception("routing failed for %s", raw_key)
        record.outcome, record.reason = "failed", f"routing failed: {type(exc).__name__}: {exc}"
        return _record_outcome(c, record, replace=replace)
    earlier = _recorded_earlier(parsed, snapshot)
    if earlier and replay_of is None:
        record.key = earlier  # a redelivery of a message recorded before the key changed
        return _recorded_before(c, record, finish=True)
    if server is not None and not server.keep_original:
        record.detail["keep_original"] = False
    writes = _apply_route(c, record, parsed, route, previous_thread, replay=replace)
    try:
        created = c.inbound.commit(record, **writes, replace=replace)
    except PermanentError as exc:
        # The store refuses these items for good (hostile sizes): retrying would lose the
        # message for ever, so record a plain "failed" outcome that `mailgate replay` can redo.
        log.exception("recording the route of %s failed", raw_key)
        return _record_outcome(c, _refused(record, parsed, route, verdicts, exc), replace=replace)
    if not created:
        return _recorded_before(c, record, finish=replay_of is None)
    try:
        _effects(c, record, parsed, route, snapshot)
    except Exception as exc:  # noqa: BLE001 - the outcome is recorded; a retry or `mailgate replay` redoes effects
        log.exception("after-routing effects failed for %s", record.key)
        record.detail["effects_error"] = f"{type(exc).__name__}: {exc}"
        c.messages.update(record)
        if isinstance(exc, TransientError):
            raise  # EventBridge/SQS unreachable: the invocation is retried and finishes the effects
    return record, True


def _recorded_earlier(parsed: ParsedMessage, snapshot: Snapshot) -> str:
    """The key of this message's record under the previous key rule (Message-ID alone), if the
    record holds these very bytes: a Message-ID alone proves nothing (docs/security.md)."""
    return next((k for k, digest in snapshot.recorded.items() if digest == parsed.digest), "")


def _record_for(parsed: ParsedMessage, key: str, raw_key: str, source: str, envelope: list[str],
                verdicts: dict[str, Any] | None, replay_of: MessageRecord | None) -> MessageRecord:
    """The ledger record before routing: a new one, or the replayed one with its history."""
    record = replay_of or MessageRecord(key=key, raw_key=raw_key)
    history = {}
    if replay_of is not None:
        previous = {"outcome": replay_of.outcome, "reason": replay_of.reason, "at": time.time()}
        history = {"replays": list(replay_of.detail.get("replays", []))[-(REPLAYS_KEPT - 1):] + [previous]}
    record.source = record.source or source
    record.message_id, record.digest = parsed.message_id, parsed.digest
    record.sender, record.subject = parsed.sender, parsed.subject[:500]
    record.recipients = routing.candidate_recipients(parsed, envelope)[:MAX_RECORD_RECIPIENTS]
    record.detail = {"verdicts": dict(verdicts or {}), "defects": parsed.defects[:10],
                     "recipients_total": len(envelope) + len(parsed.header_recipients), **history}
    return record


def _refused(record: MessageRecord, parsed: ParsedMessage, route: routing.Route, verdicts: dict[str, Any] | None,
             exc: PermanentError) -> MessageRecord:
    """The record of a route the store refused to write: failed, with the reason."""
    record.outcome, record.thread_id = "failed", ""
    record.reason = f"recording the route ({route.kind}) failed: {exc}"[:1000]
    replays = {"replays": record.detail["replays"]} if "replays" in record.detail else {}
    record.detail = {"verdicts": dict(verdicts or {}), "defects": parsed.defects[:10],
                     "error": getattr(exc, "code", "error"), **replays}
    return record


def _recorded_before(c, record: MessageRecord, *, finish: bool) -> tuple[MessageRecord, bool]:
    """Another delivery (or replay) recorded this message first: its record."""
    existing = c.messages.get(record.key) or record
    if finish and existing.detail.get("effects_error"):
        # the first invocation recorded the outcome but could not publish or notify (and
        # asked to be retried): this retry finishes its job, with the same idempotency keys
        return replay(c, existing.key), False
    return existing, False


def _apply_route(c, record: MessageRecord, parsed: ParsedMessage, route: routing.Route, previous_thread: str, *,
                 replay: bool) -> dict[str, Any]:
    """The route on the record (attachments stored), and what its commit writes besides."""
    record.outcome, record.reason, record.thread_id = route.kind, route.reason, route.thread_id
    record.detail["route"] = route.to_dict()
    new_thread = None
    if route.kind == "new-record":
        record.thread_id = previous_thread or new_id()
        new_thread = Thread(thread_id=record.thread_id, model=route.alias.model, subject=parsed.subject[:500],
                            followers=[parsed.sender] if parsed.sender else [])
        record.detail["model"], record.detail["defaults"] = route.alias.model, dict(route.alias.defaults)
        if previous_thread and c.threads.get_thread(previous_thread) is not None:
            new_thread = None  # replayed: the thread is there, with the followers it has gained since
    if route.kind in ("thread", "new-record"):
        record.detail["attachments"] = _store_attachments(c, record.key, parsed)
    return {
        "new_thread": new_thread,
        "index": [(parsed.message_id, record.thread_id)] if parsed.message_id and record.thread_id else [],
        "follower": None,  # a new thread is created with its author as follower
        # a replay counts nothing: the first delivery counted the message
        "counter": (route.counter_key, route.counter_window_seconds) if route.counter_key and not replay else None,
        # the author of a new record is a known contact now (Odoo's partner)
        "contact": parsed.sender if route.kind == "new-record" and parsed.sender else None,
    }


def _record_outcome(c, record: MessageRecord, *, replace: bool) -> tuple[MessageRecord, bool]:
    """Record an outcome that writes nothing else (a failure), through the same commit."""
    created = c.inbound.commit(record, new_thread=None, index=[], follower=None, counter=None, contact=None,
                               replace=replace)
    return (record if created else c.messages.get(record.key) or record), created


def _store_attachments(c, key: str, parsed: ParsedMessage) -> list[dict[str, Any]]:
    """Each attachment to S3 under a key derived from the message key (a retry rewrites the same objects)."""
    stored = []
    for i, att in enumerate(parsed.attachments):
        if att.content_type in ("message/delivery-status", "message/disposition-notification"):
            continue
        data = att.data()
        akey = f"{ATTACHMENT_PREFIX}{key}/{i + 1}-{_safe_name(att.filename)}"
        c.raw_store.put(akey, data, content_type=att.content_type or "application/octet-stream")
        stored.append({**att.to_dict(), "size": len(data), "key": akey})
        del data
    return stored


# --- after the commit: bounce handling, events, notifications, the polite answer --------------

def _handle_bounce(c, record: MessageRecord, parsed: ParsedMessage) -> MessageRecord:
    """Mail to the bounce alias, DSNs and mailer-daemon mail: classified and counted by the
    feedback service (VERP token first, else the DSN itself), which updates the record's outcome
    and publishes "Bounce" / "Complaint" events. Never answered (RFC 3834 §2)."""
    # Imported on the first bounce: the bounce classifier costs ~30 ms of cold start that
    # the common path (replies, new records) does not need.
    from . import feedback

    feedback.handle_inbound_bounce(c, record, parsed)
    return record


def _note_alive(c, sender: str, snapshot: Snapshot) -> None:
    """Mail from a person proves the address works: reset its bounce score (Odoo's rule)."""
    if not snapshot.may_have_bounce_state(sender):
        return  # the route's batched read found nothing to reset
    bounce_policy.note_inbound_from(c.kv, sender)


class _Publisher:
    """c.events, minus the link to the original when its server says not to keep it."""

    def __init__(self, c, record: MessageRecord) -> None:
        self.c, self.hide = c, record.detail.get("keep_original") is False

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        if self.hide:
            detail = {k: v for k, v in detail.items() if k != "raw_key"}
        self.c.events.publish(detail_type, detail)


def _effects(c, record: MessageRecord, parsed: ParsedMessage, route: routing.Route, snapshot: Snapshot) -> None:
    events = _Publisher(c, record)
    if route.kind == "bounce":
        _handle_bounce(c, record, parsed)
        return
    if route.kind in ("thread", "new-record") and parsed.sender:
        _note_alive(c, parsed.sender, snapshot)
    if route.kind == "thread":
        thread = route.thread if route.thread is not None else (
            c.threads.get_thread(route.thread_id) if route.thread_id else None)
        events.publish(DT_THREAD, thread_event(record, parsed, thread))
        _notify_followers(c, record, parsed, route, thread)
        return
    if route.kind == "new-record":
        events.publish(DT_RECORD, record_event(record, parsed, route))
        return
    answered = None
    if route.answer:
        answered = _answer(c, record, parsed, route)
    events.publish(DT_OUTCOME, outcome_event(record, route, answered))


def _cut(text: str, limit: int) -> tuple[str, bool]:
    return (text, False) if len(text) <= limit else (text[:limit], True)


def message_payload(record: MessageRecord, parsed: ParsedMessage) -> dict[str, Any]:
    text, text_cut = _cut(parsed.text or message_mod.html_to_text(parsed.html), MAX_EVENT_TEXT)
    html, html_cut = _cut(parsed.html, MAX_EVENT_HTML)
    reply, reply_cut = _cut(parsed.reply_text, MAX_EVENT_REPLY)
    attachments = record.detail.get("attachments", [])
    return {
        "message_key": record.key, "raw_key": record.raw_key, "message_id": parsed.message_id,
        "from": parsed.sender, "from_name": parsed.sender_name, "to": parsed.to[:50], "cc": parsed.cc[:50],
        "subject": parsed.subject, "date": parsed.date, "in_reply_to": parsed.in_reply_to,
        "reply_text": reply, "text": text, "html": html or None,
        "truncated": text_cut or html_cut or reply_cut or len(attachments) > MAX_EVENT_ATTACHMENTS,
        "attachments": attachments[:MAX_EVENT_ATTACHMENTS], "attachments_total": len(attachments), "spam": bool(record.detail.get("route", {}).get("spam")),
    }


def thread_event(record: MessageRecord, parsed: ParsedMessage, thread: Thread | None) -> dict[str, Any]:
    return {**message_payload(record, parsed), "thread_id": record.thread_id,
            "model": thread.model if thread else "", "record_id": thread.record_id if thread else "",
            "reason": record.reason, "source": record.source}


def record_event(record: MessageRecord, parsed: ParsedMessage, route: routing.Route) -> dict[str, Any]:
    return {"message_key": record.key, "raw_key": record.raw_key, "thread_id": record.thread_id,
            "model": route.alias.model, "defaults": dict(route.alias.defaults), "alias": route.alias.address,
            "reason": record.reason, "source": record.source, "message": message_payload(record, parsed)}


def outcome_event(record: MessageRecord, route: routing.Route | None, answered: bool | None) -> dict[str, Any]:
    return {"message_key": record.key, "raw_key": record.raw_key, "message_id": record.message_id,
            "outcome": record.outcome, "reason": record.reason, "from": record.sender,
            "subject": record.subject, "recipients": record.recipients[:20],
            "notes": (route.notes if route else [])[:20], "answered": answered, "source": record.source}


def _notify_domain(c, route: routing.Route) -> AliasDomain:
    if route.domain is not None:
        return route.domain
    gateway = c.settings.gateway_domain or "localhost"
    return c.config.get_domain(gateway) or AliasDomain(name=gateway)


def _notify_followers(c, record: MessageRecord, parsed: ParsedMessage, route: routing.Route,
                      thread: Thread | None) -> None:
    """As Odoo notifies followers: each follower but the author gets the message, with the
    thread's reply address so that an answer comes back to the same thread."""
    if thread is None:
        return
    domain = _notify_domain(c, route)
    own = set(c.inbound.domains())
    sender = parsed.sender.lower()
    text, _ = _cut(parsed.reply_text or parsed.text or message_mod.html_to_text(parsed.html), MAX_NOTIFY_TEXT)
    html, html_cut = _cut(parsed.html, MAX_NOTIFY_HTML)
    from_ = email.utils.formataddr((parsed.sender_name or parsed.sender or "", domain.default_from_address))
    for follower in dict.fromkeys(f.strip().lower() for f in thread.followers):
        if not follower or follower == sender or follower.rpartition("@")[2] in own:
            continue
        c.outbound_queue.send({
            "idempotency_key": f"{record.key}:notify:{follower}", "from": from_, "to": [follower],
            "subject": parsed.subject, "text": text, "html": None if html_cut else (html or None),
            # Reply-To is the thread's reply address: outbound sets it from thread_id.
            "thread_id": thread.thread_id, "notification": True,
        }, dedup_id=hashlib.sha256(f"{record.key}:notify:{follower}".encode()).hexdigest()[:64])


def _answer(c, record: MessageRecord, parsed: ParsedMessage, route: routing.Route) -> bool:
    """The polite answer, at most one per sender per ANSWER_WINDOW_SECONDS (a conditional write)."""
    to = route.answer_to.lower()
    if not c.kv.put_item(f"answered#{to}", {"message_key": record.key, "at": time.time()},
                         ttl_seconds=ANSWER_WINDOW_SECONDS, if_absent=True):
        record.detail["answer"] = f"not sent: {to} was already answered within {ANSWER_WINDOW_SECONDS // 3600} h"
        c.messages.update(record)
        return False
    domain = route.domain or _notify_domain(c, route)
    subject = parsed.subject if parsed.subject.lower().startswith("re:") else f"Re: {parsed.subject}".strip()
    request = {
        "idempotency_key": f"{record.key}:answer", "from": domain.default_from_address, "to": [to],
        "subject": subject[:250], "text": route.answer_text, "html": None,
        # RFC 3834 §5.2: Auto-Submitted: auto-replied, so that responders do not answer us
        "auto_reply": True,
    }
    if _SIMPLE_MSGID.fullmatch(parsed.message_id or ""):
        request["in_reply_to"] = f"<{parsed.message_id}>"
    c.outbound_queue.send(request, dedup_id=hashlib.sha256(f"{record.key}:answer".encode()).hexdigest()[:64])
    record.detail["answer"] = f"sent to {to}"
    c.messages.update(record)
    return True


# --- replay ----------------------------------------------------------------------------------

def _stored_record(c, raw: bytes, parsed: ParsedMessage) -> MessageRecord | None:
    """The ledger record of a raw message: under its key, else under the previous key rule when
    that record holds the same bytes."""
    found = c.messages.get(message_key(raw))
    if found is None:
        found = c.messages.get(previous_message_key(parsed))
        if found is not None and found.digest != parsed.digest:
            found = None
    return found


def replay(c, key: str) -> MessageRecord:
    """Route a stored message again (after a configuration or code fix): same record, new outcome,
    written through the same commit as a first delivery (conditional on the record's version).

    `key` is a message key (`in:...`) or a raw key. Effects are redone with the same
    idempotency keys, so the outbound path can drop the notifications it already sent."""
    existing = c.messages.get(key)
    if existing is None:
        if c.raw_store.exists(key):
            raw = c.raw_store.get(key)
            parsed = message_mod.parse(raw)
            existing = _stored_record(c, raw, parsed)
            if existing is None:
                return ingest(c, key, source="replay")
        else:
            raise NotFound(f"no message with key {key!r}: see `mailgate messages list` for keys")
    if existing.direction != "in":
        raise NotFound(f"{key!r} is an outbound message; only inbound messages can be replayed")
    record, _ = _ingest(c, existing.raw_key, source=existing.source or "replay",
                        envelope_recipients=existing.recipients, verdicts=existing.detail.get("verdicts"),
                        replay_of=existing)
    return record
