"""Inbound processing: one raw message in, one recorded outcome out (exactly once).

    ingest(c, raw_key, *, source, envelope_recipients, verdicts=None) -> MessageRecord
    replay(c, key) -> MessageRecord             # route a stored message again, after a fix

The SES Lambda action (mailgate.entrypoints.inbound) and the fetch worker both call `ingest`.

Per message the store calls are (the DynamoDB adapter can make each one call):

    1. c.raw_store.get(raw_key)                         S3 GetObject
    2. store.load(keys)                                 one BatchGetItem (a second one only when
                                                        References name a thread, or an alias has
                                                        a forced thread: the thread items)
    3. store.commit(record, thread, index, follower, counter)
                                                        one TransactWriteItems, conditional on the
                                                        message key being new (exactly-once)
    4. c.events.publish(...)                            one PutEvents

plus, off the common path: attachments (S3 PutObject each), follower notifications (SQS), the
polite answer (a conditional kv write, then SQS). `PortsInboundStore` implements load/commit
over the existing ports; a store in `c.extras["inbound_store"]` replaces it.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Protocol

from .. import message as message_mod
from .. import routing
from ..domain import Alias, AliasDomain, MessageRecord, Thread, new_id
from ..errors import NotFound, PermanentError, TransientError
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
DOMAIN_CACHE_SECONDS = 60

#: a Message-ID the outbound request schema accepts as in_reply_to (others are left out)
_SIMPLE_MSGID = re.compile(r"[^<>\s\"()\\,;:]{1,200}@[^<>\s\"()\\,;:@]{1,250}")

DT_THREAD = "Message Routed To Thread"
DT_RECORD = "Record To Create"
DT_OUTCOME = "Message Outcome"


# --- the store: one batched read, one conditional write ---------------------------------------

@dataclass
class Snapshot:
    """A `routing.RoutingView` answered from what `load` read (no calls while deciding)."""

    token_key: bytes
    domains: dict[str, AliasDomain]
    aliases: dict[tuple[str, str], Any] = field(default_factory=dict)
    threads: dict[str, Thread] = field(default_factory=dict)
    index: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    known_senders: set[str] = field(default_factory=set)
    gateway_domain: str = ""

    def domain(self, name: str) -> AliasDomain | None:
        return self.domains.get(name.lower())

    def own_domains(self) -> frozenset[str]:
        return _own_domains(frozenset(self.domains), self.gateway_domain.lower())

    def alias(self, domain: str, name: str):
        return self.aliases.get((domain.lower(), name.lower()))

    def thread(self, thread_id: str) -> Thread | None:
        return self.threads.get(thread_id)

    def threads_for_message_ids(self, message_ids: list[str]) -> dict[str, str]:
        return {m: self.index[m] for m in message_ids if m in self.index}

    def is_known_sender(self, address: str) -> bool:
        return address.lower() in self.known_senders

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)


@lru_cache(maxsize=64)
def _own_domains(domains: frozenset[str], gateway: str) -> frozenset[str]:
    return domains | {gateway} if gateway else domains


class InboundStore(Protocol):
    def load(self, keys: routing.LookupKeys) -> Snapshot: ...
    def commit(self, record: MessageRecord, *, new_thread: Thread | None, index: list[tuple[str, str]],
               follower: tuple[str, str] | None, counter: tuple[str, int] | None,
               contact: str | None) -> bool: ...


def contact_key(address: str) -> str:
    """kv key of a known sender (Odoo's partner): written when someone starts a thread."""
    return f"contact#{address.strip().lower()}"


class PortsInboundStore:
    """load/commit over the existing ports (the in-memory fakes, or the AWS adapters call by call)."""

    def __init__(self, c) -> None:
        self.c = c
        self._domains: tuple[float, dict[str, AliasDomain]] | None = None

    def domains(self) -> dict[str, AliasDomain]:
        """Alias domains are few and change rarely: read once a minute per warm container."""
        now = time.monotonic()
        if self._domains is None or now - self._domains[0] > DOMAIN_CACHE_SECONDS:
            self._domains = (now, {d.name.lower(): d for d in self.c.config.list_domains()})
        return self._domains[1]

    def load(self, keys: routing.LookupKeys) -> Snapshot:
        c = self.c
        snap = Snapshot(token_key=c.token_key, domains=self.domains(), gateway_domain=c.settings.gateway_domain)
        for dom, name in keys.aliases:
            alias = c.config.get_alias(dom, name)
            if alias is not None:
                snap.aliases[(dom.lower(), name.lower())] = alias
        if keys.message_ids:
            snap.index = dict(c.threads.threads_for_message_ids(keys.message_ids))
        for key in keys.counter_keys:
            snap.counts[key] = c.counters.get(key)
        for address in keys.contacts:
            if c.kv.get_item(contact_key(address)) is not None or _follows_any(c, address):
                snap.known_senders.add(address.lower())
        # second read: the threads named by the first (tokens, index hits, forced threads)
        wanted = list(keys.thread_ids) + list(snap.index.values()) + [
            a.force_thread_id for a in snap.aliases.values() if a.force_thread_id]
        for tid in dict.fromkeys(wanted):
            thread = c.threads.get_thread(tid)
            if thread is not None:
                snap.threads[tid] = thread
        return snap

    def commit(self, record: MessageRecord, *, new_thread: Thread | None, index: list[tuple[str, str]],
               follower: tuple[str, str] | None, counter: tuple[str, int] | None, contact: str | None) -> bool:
        c = self.c
        if not c.messages.claim(record):
            return False
        if new_thread is not None:  # a fresh id: nobody else can have it
            c.threads.put_thread(new_thread)
        for message_id, thread_id in index:
            c.threads.index_message_id(message_id, thread_id)
        if follower is not None:
            c.threads.add_follower(*follower)
        if counter is not None:
            c.counters.incr(counter[0], window_seconds=counter[1])
        if contact:
            c.kv.put_item(contact_key(contact), {"address": contact, "since": time.time()}, if_absent=True)
        return True


def _follows_any(c, address: str) -> bool:
    """Optional port method (asked of the founder): does `address` follow any thread?"""
    method = getattr(c.threads, "follows_any_thread", None)
    return bool(method(address)) if callable(method) else False


def store_for(c) -> InboundStore:
    store = c.extras.get("inbound_store")
    if store is None:
        store = c.extras["inbound_store"] = PortsInboundStore(c)
    return store


# --- keys ------------------------------------------------------------------------------------

def message_key(parsed: ParsedMessage) -> str:
    """The idempotency key: the Message-ID when there is one, else the raw digest."""
    if parsed.message_id:
        return "in:mid:" + hashlib.sha256(parsed.message_id.encode("utf-8", "replace")).hexdigest()[:40]
    return "in:raw:" + parsed.digest[:40]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:100] or "part"


# --- decide ----------------------------------------------------------------------------------

def route_message(c, parsed: ParsedMessage, envelope_recipients: Iterable[str], *,
                  verdicts: dict[str, Any] | None = None) -> routing.Route:
    """Read what the decision needs (one batch) and decide. No writes: `mailgate route` uses it."""
    store = store_for(c)
    domains = store.domains() if hasattr(store, "domains") else {d.name.lower(): d for d in c.config.list_domains()}
    recipients = list(envelope_recipients or [])
    keys = routing.lookup_keys(parsed, recipients, domains, c.token_key)
    snapshot = store.load(keys)
    return routing.decide(parsed, recipients, snapshot, verdicts=verdicts)


# --- ingest ----------------------------------------------------------------------------------

def ingest(c, raw_key: str, *, source: str, envelope_recipients: Iterable[str] = (),
           verdicts: dict[str, Any] | None = None) -> MessageRecord:
    """Route the raw message stored at `raw_key`; idempotent (a second delivery returns the first's record)."""
    record, _ = _ingest(c, raw_key, source=source, envelope_recipients=envelope_recipients, verdicts=verdicts)
    return record


def _ingest(c, raw_key: str, *, source: str, envelope_recipients: Iterable[str],
            verdicts: dict[str, Any] | None, replay_of: MessageRecord | None = None) -> tuple[MessageRecord, bool]:
    envelope = [str(r) for r in (envelope_recipients or [])][:1000]
    try:
        raw = c.raw_store.get(raw_key)
    except NotFound as exc:
        record = MessageRecord(key="in:missing:" + hashlib.sha256(raw_key.encode()).hexdigest()[:40],
                               raw_key=raw_key, source=source, recipients=envelope[:MAX_RECORD_RECIPIENTS],
                               outcome="failed", reason=f"raw message not found: {exc}")
        created = c.messages.claim(record)
        return (record if created else c.messages.get(record.key) or record), created

    parsed = message_mod.parse(raw)
    key = message_key(parsed)
    record = replay_of or MessageRecord(key=key, raw_key=raw_key)
    previous_thread = replay_of.thread_id if replay_of is not None and replay_of.outcome == "new-record" else ""
    record.source = record.source or source
    record.message_id, record.digest = parsed.message_id, parsed.digest
    record.sender, record.subject = parsed.sender, parsed.subject[:500]
    record.recipients = routing.candidate_recipients(parsed, envelope)[:MAX_RECORD_RECIPIENTS]
    record.detail = {"verdicts": dict(verdicts or {}), "defects": parsed.defects[:10],
                     "recipients_total": len(envelope) + len(parsed.header_recipients)}
    try:
        route = route_message(c, parsed, envelope, verdicts=verdicts)
    except TransientError:
        raise  # the store is unreachable: let the invocation be retried
    except Exception as exc:  # noqa: BLE001 - a bug or hostile input must not lose the message
        log.exception("routing failed for %s", raw_key)
        record.outcome, record.reason = "failed", f"routing failed: {type(exc).__name__}: {exc}"
        created = _commit_plain(c, record, replay=replay_of is not None)
        return (record if created else c.messages.get(record.key) or record), created

    route = _apply_server_options(c, route, record)
    record.outcome, record.reason, record.thread_id = route.kind, route.reason, route.thread_id
    record.detail["route"] = route.to_dict()

    new_thread = None
    if route.kind == "new-record":
        thread_id = previous_thread or new_id()  # a replay keeps the thread it created before
        record.thread_id = thread_id
        new_thread = Thread(thread_id=thread_id, model=route.alias.model, subject=parsed.subject[:500],
                            followers=[parsed.sender] if parsed.sender else [])
        record.detail["model"], record.detail["defaults"] = route.alias.model, dict(route.alias.defaults)
    if route.kind in ("thread", "new-record"):
        record.detail["attachments"] = _store_attachments(c, record.key, parsed)

    index = [(parsed.message_id, record.thread_id)] if parsed.message_id and record.thread_id else []
    counter = (route.counter_key, route.counter_window_seconds) if route.counter_key and replay_of is None else None
    contact = parsed.sender if route.kind == "new-record" and parsed.sender else None
    follower = None  # a new thread is created with its author as follower
    store = store_for(c)
    if replay_of is not None:
        c.messages.update(record)
        created = True
        if new_thread is not None and c.threads.get_thread(new_thread.thread_id) is None:
            c.threads.put_thread(new_thread)
        for mid, tid in index:
            c.threads.index_message_id(mid, tid)
        if contact:  # as the first delivery's commit would have: the author is now a known contact
            c.kv.put_item(contact_key(contact), {"address": contact, "since": time.time()}, if_absent=True)
    else:
        try:
            created = store.commit(record, new_thread=new_thread, index=index, follower=follower,
                                   counter=counter, contact=contact)
        except PermanentError as exc:
            # The store refuses these items for good (hostile sizes): retrying would lose the
            # message for ever, so record a plain "failed" outcome that `mailgate replay` can redo.
            log.exception("recording the route of %s failed", raw_key)
            record.outcome, record.thread_id = "failed", ""
            record.reason = f"recording the route ({route.kind}) failed: {exc}"[:1000]
            record.detail = {"verdicts": dict(verdicts or {}), "defects": parsed.defects[:10],
                             "error": getattr(exc, "code", "error")}
            created = c.messages.claim(record)
            return (record if created else c.messages.get(record.key) or record), created
    if not created:
        existing = c.messages.get(record.key) or record
        if existing.detail.get("effects_error") and replay_of is None:
            # the first invocation recorded the outcome but could not publish or notify (and
            # asked to be retried): this retry finishes its job, with the same idempotency keys
            return replay(c, existing.key), False
        return existing, False

    try:
        _effects(c, record, parsed, route, raw, new_thread)
    except Exception as exc:  # noqa: BLE001 - the outcome is recorded; a retry or `mailgate replay` redoes effects
        log.exception("after-routing effects failed for %s", key)
        record.detail["effects_error"] = f"{type(exc).__name__}: {exc}"
        c.messages.update(record)
        if isinstance(exc, TransientError):
            raise  # EventBridge/SQS unreachable: the invocation is retried and finishes the effects
        return record, True
    if replay_of is not None and record.detail.pop("effects_error", None):
        c.messages.update(record)
    return record, True


def _apply_server_options(c, route: routing.Route, record: MessageRecord) -> routing.Route:
    """The options of the incoming server a fetched message came from (Odoo's fetchmail.server):

    - "fallback model": mail that matches no alias opens a record of that model instead of going
      unanswered;
    - "keep original" off: the application's events do not point at the original .eml (it is
      still stored, so nothing is lost and `mailgate replay` works).
    """
    protocol, _, name = (record.source or "").partition(":")
    if protocol not in ("imap", "pop") or not name:
        return route
    server = c.config.get_incoming(name)
    if server is None:
        return route
    if not server.keep_original:
        record.detail["keep_original"] = False
    if route.kind != "unknown-recipient" or not server.fallback_model:
        return route
    mailbox = server.user if "@" in server.user else f"{server.name}@{server.host}"
    local, _, domain = mailbox.rpartition("@")
    route.kind = "new-record"
    route.alias = Alias(domain=domain, name=local, model=server.fallback_model)
    route.answer, route.answer_to, route.answer_text = False, "", ""
    route.reason = (f"fetched from {name} ({mailbox}) and matching no alias: a new "
                    f"{server.fallback_model} record (the server's fallback model)")
    return route


def _commit_plain(c, record: MessageRecord, *, replay: bool) -> bool:
    if replay:
        c.messages.update(record)
        return True
    return c.messages.claim(record)


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
    from . import feedback

    feedback.handle_inbound_bounce(c, record, parsed)
    return record


def _note_alive(c, sender: str) -> None:
    """Mail from a person proves the address works: reset its bounce score (Odoo's rule)."""
    from .. import bounce_policy

    store = store_for(c)
    check = getattr(store, "has_bounce_state", None)
    if callable(check) and not check(sender):
        return  # the route's batched read found nothing to reset
    bounce_policy.note_inbound_from(c, sender)


class _Publisher:
    """c.events, minus the link to the original when its server says not to keep it."""

    def __init__(self, c, record: MessageRecord) -> None:
        self.c, self.hide = c, record.detail.get("keep_original") is False

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        if self.hide:
            detail = {k: v for k, v in detail.items() if k != "raw_key"}
        self.c.events.publish(detail_type, detail)


def _effects(c, record: MessageRecord, parsed: ParsedMessage, route: routing.Route, raw: bytes,
             new_thread: Thread | None) -> None:
    events = _Publisher(c, record)
    if route.kind == "bounce":
        _handle_bounce(c, record, parsed)
        return
    if route.kind in ("thread", "new-record") and parsed.sender:
        _note_alive(c, parsed.sender)
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
    store = store_for(c)
    own = set(store.domains()) if hasattr(store, "domains") else set()
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

def replay(c, key: str) -> MessageRecord:
    """Route a stored message again (after a configuration or code fix): same record, new outcome.

    `key` is a message key (`in:...`) or a raw key. Effects are redone with the same
    idempotency keys, so the outbound path can drop the notifications it already sent."""
    existing = c.messages.get(key)
    if existing is None:
        if c.raw_store.exists(key):
            parsed = message_mod.parse(c.raw_store.get(key))
            existing = c.messages.get(message_key(parsed))
            if existing is None:
                return ingest(c, key, source="replay")
        else:
            raise NotFound(f"no message with key {key!r}: see `mailgate messages list` for keys")
    if existing.direction != "in":
        raise NotFound(f"{key!r} is an outbound message; only inbound messages can be replayed")
    previous = {"outcome": existing.outcome, "reason": existing.reason, "at": time.time()}
    history = list(existing.detail.get("replays", []))[-9:] + [previous]
    record, _ = _ingest(c, existing.raw_key, source=existing.source or "replay",
                        envelope_recipients=existing.recipients, verdicts=existing.detail.get("verdicts"),
                        replay_of=existing)
    record.detail["replays"] = history
    c.messages.update(record)
    return record
