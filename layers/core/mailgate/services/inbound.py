"""Inbound processing: one raw message in, one recorded outcome out (exactly once), and the
effects of that outcome (events, follower notifications, the polite answer) carried out at least
once, each with a stable id.

    ingest(c, raw_key, *, source, envelope_recipients, verdicts=None, deadline=None) -> MessageRecord
    replay(c, key) -> MessageRecord             # route a stored message again, after a fix

The SES Lambda action (mailgate.entrypoints.inbound) and the fetch worker both call `ingest`.

Per message the store calls are (the DynamoDB adapter makes each one call):

    1. c.raw_store.get(raw_key)                         S3 GetObject
    2. c.inbound.begin(raw_key, ...)                    one UpdateItem: the attempt marker, which
                                                        tells a retry that the attempt before it
                                                        was killed while routing
    3. c.inbound.load(keys)                             one BatchGetItem (a second one only when
                                                        References name a thread, or an alias has
                                                        a forced thread: the thread items)
    4. c.inbound.commit(record, ..., effects, attempt)  one TransactWriteItems, conditional on the
                                                        message key being new (exactly-once; for a
                                                        replay, on the record's version), with the
                                                        outcome's effects as pending (the outbox)
                                                        and the marker removed
    5. the effects (services.outbox.run)                one PutEvents
    6. c.outbox.settle(owner, [])                       one DeleteItem: the effects are done

plus, off the common path: attachments (S3 PutObject each), follower notifications (SQS), the
polite answer (a conditional kv write, then SQS). A replay writes through the same commit.

Routing runs under a time limit (budget.time_limit) that ends COMMIT_RESERVE_SECONDS before the
invocation's `deadline`: a message that does not route in time is recorded `failed` with the
reason, replayable, instead of timing the invocation out. What the limit cannot stop (one C call
that never returns, memory exhausted) kills the process; the marker then makes the retry record
`failed: routing did not finish within N s (attempt k)` without routing it again.
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import re
import time
from typing import Any, Iterable

from .. import bounce_policy, budget, failpoints, jsonfit, routing, targeting
from .. import message as message_mod
from ..domain import AliasDomain, IncomingServer, MessageRecord, Thread, new_id
from ..effects import Effect, owner_of
from ..errors import NotFound, PermanentError, TransientError
from ..inbound_model import Attempt, Snapshot, message_key, previous_message_key
from ..message import ParsedMessage
from . import outbox

log = logging.getLogger(__name__)

#: Where the SES S3 action stores raw mail: objectKeyPrefix + mail.messageId. The prefix is
#: `settings.ses_raw_prefix` (MAILGATE_SES_RAW_PREFIX); this is its default.
RAW_PREFIX = "raw/ses/"
ATTACHMENT_PREFIX = "att/"
#: Text fields of an event are cut to these many characters first; then the whole entry is cut
#: to fit EventBridge's 256 KB in bytes of the JSON sent (jsonfit), and flagged `truncated`. The
#: full message stays in S3 under raw_key.
MAX_EVENT_TEXT, MAX_EVENT_HTML, MAX_EVENT_REPLY = 16_000, 16_000, 8_000
#: attachments listed in an event (the rest are in S3 under att/<message key>/, and counted)
MAX_EVENT_ATTACHMENTS = 50
#: SQS messages are limited to 256 KB as well (counted in bytes of the body sent).
MAX_NOTIFY_TEXT, MAX_NOTIFY_HTML = 60_000, 60_000
MAX_RECORD_RECIPIENTS = 200
#: followers notified of one message at most (the outbox entry stays far below 400 KB)
MAX_NOTIFIED = 1000
#: One polite answer per sender per day at most (and never to an automatic message).
ANSWER_WINDOW_SECONDS = 24 * 3600
#: a replayed record keeps the outcomes of its last replays
REPLAYS_KEPT = 10
#: routing stops this long before the invocation's deadline: the commit and the effects need it
COMMIT_RESERVE_SECONDS = 5.0
#: an attempt without a deadline (the command line) counts as killed after this long (Lambda's
#: longest timeout)
DEFAULT_ATTEMPT_SECONDS = 900.0
#: an attempt counts as killed this long after its soft deadline (the margin the handlers leave
#: before Lambda's own timeout, entrypoints._runtime.deadline_from)
KILL_GRACE_SECONDS = 15.0

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
           verdicts: dict[str, Any] | None = None, deadline: float | None = None,
           raw: bytes | None = None) -> MessageRecord:
    """Route the raw message stored at `raw_key`; idempotent (a second delivery returns the first's
    record, and carries out what the first left pending). `deadline` is the time.monotonic() time
    the caller must be done by (a Lambda's soft deadline): routing stops before it. `raw`: the
    bytes stored at `raw_key`, when the caller has just stored them (the fetch worker)."""
    record, _ = _ingest(c, raw_key, source=source, envelope_recipients=envelope_recipients, verdicts=verdicts,
                        deadline=deadline, raw=raw)
    return record


def _ingest(c, raw_key: str, *, source: str, envelope_recipients: Iterable[str],
            verdicts: dict[str, Any] | None, replay_of: MessageRecord | None = None,
            deadline: float | None = None, raw: bytes | None = None) -> tuple[MessageRecord, bool]:
    """Route and record one message (a replay rewrites `replay_of`), then carry out its effects;
    (the record, whether this call recorded it)."""
    envelope = [str(r) for r in (envelope_recipients or [])][:1000]
    try:
        raw = c.raw_store.get(raw_key) if raw is None else raw
    except NotFound as exc:
        record = MessageRecord(key="in:missing:" + hashlib.sha256(raw_key.encode()).hexdigest()[:40],
                               raw_key=raw_key, source=source, recipients=envelope[:MAX_RECORD_RECIPIENTS],
                               outcome="failed", reason=f"raw message not found: {exc}")
        return _record_outcome(c, record, replace=False)
    # A replay (an operator's command, no invocation to be killed) writes no marker.
    attempt = None if replay_of is not None else _begin(c, raw_key, source, envelope, verdicts, deadline)
    if attempt is not None and attempt.recorded:
        # an attempt after a kill recorded it (failed, replayable): never routed from here again
        return c.messages.get(attempt.recorded) or MessageRecord(key=attempt.recorded, raw_key=raw_key), False
    try:
        if attempt is not None and attempt.killed is not None:
            record, created = _record_outcome(c, _killed(raw, raw_key, source, envelope, verdicts, attempt),
                                              replace=False, attempt=attempt)
            effects, src = [], outbox.Source(c, record)
        else:
            failpoints.hit("inbound.routing")
            record, created, effects, src = _route_and_commit(c, raw, raw_key, source, envelope, verdicts,
                                                              replay_of, deadline, attempt)
    except TransientError:
        _abandon(c, attempt)  # a retry of this invocation is no sign of a kill
        raise
    if not created:
        _abandon(c, attempt)  # the cancelled commit left the marker: another attempt recorded it
        return _recorded_before(c, record, finish=replay_of is None)
    failpoints.hit("inbound.after-commit")
    left = outbox.run(c, owner_of(record.key, record.version), effects, src)
    if left:
        # EventBridge/SQS unreachable: the invocation is retried and finishes them (the sweep
        # would too)
        raise TransientError(f"effects of {record.key} left pending: {left[0].error}", code="aws-transient")
    return record, True


def _begin(c, raw_key: str, source: str, envelope: list[str], verdicts: dict[str, Any] | None,
           deadline: float | None) -> Attempt:
    """The attempt marker, good until this invocation is surely over (killed or not)."""
    budget_s = DEFAULT_ATTEMPT_SECONDS if deadline is None else max(0.0, deadline - time.monotonic())
    left = budget_s + (KILL_GRACE_SECONDS if deadline is not None else 0.0)
    facts = {"source": source, "recipients": envelope[:50], "verdicts": dict(verdicts or {}),
             "seconds": round(budget_s)}
    return c.inbound.begin(raw_key, until=time.time() + left, facts=facts)


def _abandon(c, attempt: Attempt | None) -> None:
    if attempt is None:
        return
    try:
        c.inbound.abandon(attempt)
    except Exception:  # noqa: BLE001 - best effort: the store is already failing
        log.warning("could not remove the routing marker of %s", attempt.raw_key, exc_info=True)


def _routing_seconds(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(1.0, deadline - time.monotonic() - COMMIT_RESERVE_SECONDS)


def _killed(raw: bytes, raw_key: str, source: str, envelope: list[str], verdicts: dict[str, Any] | None,
            attempt: Attempt) -> MessageRecord:
    """The record of a message whose previous attempt was killed while routing: failed, not routed
    again (whatever killed it would again). Its key is read from the raw bytes without parsing
    them (parsing may be what killed it)."""
    killed = attempt.killed or {}
    took = float(killed.get("seconds") or 0)
    return MessageRecord(
        key=message_key(raw), raw_key=raw_key, source=killed.get("source") or source,
        recipients=(killed.get("recipients") or envelope)[:MAX_RECORD_RECIPIENTS], outcome="failed",
        reason=f"routing did not finish within {max(took, 0):.0f} s (attempt {attempt.number - 1}): "
               "not routed again; `mailgate replay` routes it after a fix",
        detail={"verdicts": dict(killed.get("verdicts") or verdicts or {}), "attempts": attempt.number,
                "error": "killed"})


def _route_and_commit(c, raw: bytes, raw_key: str, source: str, envelope: list[str],
                      verdicts: dict[str, Any] | None, replay_of: MessageRecord | None, deadline: float | None,
                      attempt: Attempt | None) -> tuple[MessageRecord, bool, list[Effect], outbox.Source]:
    """Parse, decide, store attachments (within the time limit), then record the outcome with its
    effects; (record, created, effects, what the effects are about)."""
    replace = replay_of is not None
    # a replay keeps the thread its first route created
    previous_thread = replay_of.thread_id if replay_of is not None and replay_of.outcome == "new-record" else ""
    parsed = record = None
    limit = _routing_seconds(deadline)
    try:
        with budget.time_limit(limit):
            parsed = message_mod.parse(raw)
            record = _record_for(parsed, message_key(raw), raw_key, source, envelope, verdicts, replay_of)
            server = _fetched_from(c, record.source)
            route, snapshot = _decide(c, parsed, envelope, verdicts, server)
            earlier = _recorded_earlier(parsed, snapshot)
            if earlier and replay_of is None:
                record.key = earlier  # a redelivery of a message recorded before the key changed
                return record, False, [], outbox.Source(c, record)
            if server is not None and not server.keep_original:
                record.detail["keep_original"] = False
            writes = _apply_route(c, record, parsed, route, previous_thread, replay=replace)
            effects = plan_effects(c, record, parsed, route, snapshot, version=record.version + int(replace))
    except TransientError:
        raise  # the store is unreachable: let the invocation be retried
    except (Exception, budget.OutOfTime) as exc:  # noqa: BLE001 - a bug or hostile input must not lose the message
        log.exception("routing failed for %s", raw_key)
        why = (f"routing did not finish within {limit:.0f} s (attempt {attempt.number if attempt else 1})"
               if isinstance(exc, budget.OutOfTime) else f"routing failed: {type(exc).__name__}: {exc}")
        failed = _failed(record, raw, raw_key, source, envelope, verdicts, replay_of, why[:1000])
        return (*_record_outcome(c, failed, replace=replace, attempt=attempt), [], outbox.Source(c, failed))
    try:
        created = c.inbound.commit(record, **writes, replace=replace, effects=effects, attempt=attempt)
    except PermanentError as exc:
        # The store refuses these items for good (hostile sizes): retrying would lose the
        # message for ever, so record a plain "failed" outcome that `mailgate replay` can redo.
        log.exception("recording the route of %s failed", raw_key)
        refused = _refused(record, parsed, route, verdicts, exc)
        return (*_record_outcome(c, refused, replace=replace, attempt=attempt), [], outbox.Source(c, refused))
    thread = route.thread if route.kind == "thread" else None
    return record, created, effects, outbox.Source(c, record, parsed=parsed, thread=thread)


def _failed(record: MessageRecord | None, raw: bytes, raw_key: str, source: str, envelope: list[str],
            verdicts: dict[str, Any] | None, replay_of: MessageRecord | None, reason: str) -> MessageRecord:
    """The record of a message routing failed on (without a parse, keyed from the raw bytes)."""
    if record is None:
        record = replay_of or MessageRecord(key=message_key(raw), raw_key=raw_key, source=source,
                                            recipients=envelope[:MAX_RECORD_RECIPIENTS],
                                            detail={"verdicts": dict(verdicts or {})})
    record.outcome, record.reason, record.thread_id = "failed", reason, ""
    return record


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
    """Another delivery (or replay) recorded this message first: its record, and (for a delivery)
    the effects its outcome still has pending, carried out unless their writer still holds them."""
    existing = c.messages.get(record.key) or record
    if finish and outbox.finish(c, existing):
        raise TransientError(f"effects of {existing.key} still pending: retried", code="aws-transient")
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


def _record_outcome(c, record: MessageRecord, *, replace: bool,
                    attempt: Attempt | None = None) -> tuple[MessageRecord, bool]:
    """Record an outcome that writes nothing else and causes nothing (a failure), through the same
    commit (which removes the attempt's marker)."""
    created = c.inbound.commit(record, new_thread=None, index=[], follower=None, counter=None, contact=None,
                               replace=replace, attempt=attempt)
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


# --- the effects of an outcome: planned with it, carried out after it ---------------------------

def plan_effects(c, record: MessageRecord, parsed: ParsedMessage, route: routing.Route, snapshot: Snapshot, *,
                 version: int) -> list[Effect]:
    """What the outcome causes, in the order it is carried out, recorded with the outcome (the
    outbox): small values only, the payloads are built when each is carried out. One more effect
    of a routed message is one more entry here and its kind registered with `outbox.kind`, as the
    delivery to the application's target is ("deliver", services.delivery)."""
    owner = owner_of(record.key, version)

    def effect(name: str, kind: str, **args: Any) -> Effect:
        return Effect(id=f"{owner}:{name}", kind=kind, args=args)

    # the application's own target (Odoo, a webhook): one delivery job per message and target, last
    target = targeting.target_of(c, route)
    deliver = [effect(f"deliver:{target}", "deliver", target=target)] if target else []
    if target and route.kind in targeting.UNROUTED:
        # Odoo routes it by its own aliases and threads, and answers what it cannot route itself
        route.answer = False
        record.detail["answer"] = f"not sent: left to the delivery target {target}"
    if route.kind == "bounce":
        return [effect("bounce", "bounce")] + deliver
    planned = []
    if route.kind in ("thread", "new-record") and parsed.sender and snapshot.may_have_bounce_state(parsed.sender):
        # mail from a person proves the address works: its bounce score is reset (Odoo's rule)
        planned.append(effect("alive", "note-alive", address=parsed.sender))
    if route.kind == "thread":
        thread = route.thread if route.thread is not None else (
            c.threads.get_thread(route.thread_id) if route.thread_id else None)
        route.thread = thread
        planned.append(effect("event", "thread-event"))
        planned += [effect(f"notify:{to}", "notify", to=to, **args)
                    for to, args in _followers_to_notify(c, record, parsed, route, thread)]
    elif route.kind == "new-record":
        planned.append(effect("event", "record-event"))
    else:
        if route.answer:
            planned.append(effect("answer", "answer", **_answer_args(c, parsed, route)))
        planned.append(effect("event", "outcome-event"))
    return planned + deliver


def _visible(record: MessageRecord, detail: dict[str, Any]) -> dict[str, Any]:
    """The event minus the link to the original when its server says not to keep it."""
    if record.detail.get("keep_original") is False:
        return {k: v for k, v in detail.items() if k != "raw_key"}
    return detail


@outbox.kind("thread-event")
def _publish_thread_event(c, effect: Effect, src: outbox.Source) -> None:
    detail = thread_event(src.record, src.parsed, src.thread)
    outbox.publish_event(c, effect, DT_THREAD, _visible(src.record, detail), flag=("truncated",))


@outbox.kind("record-event")
def _publish_record_event(c, effect: Effect, src: outbox.Source) -> None:
    detail = record_event(src.record, src.parsed)
    outbox.publish_event(c, effect, DT_RECORD, _visible(src.record, detail), flag=("message", "truncated"))


@outbox.kind("outcome-event")
def _publish_outcome_event(c, effect: Effect, src: outbox.Source) -> None:
    outbox.publish_event(c, effect, DT_OUTCOME, _visible(src.record, outcome_event(src.record)))


@outbox.kind("note-alive")
def _note_alive(c, effect: Effect, src: outbox.Source) -> None:
    bounce_policy.note_inbound_from(c.kv, effect.args["address"])


@outbox.kind("bounce")
def _handle_bounce(c, effect: Effect, src: outbox.Source) -> None:
    """Mail to the bounce alias, DSNs and mailer-daemon mail: classified and counted by the
    feedback service (VERP token first, else the DSN itself), which updates the record's outcome
    and publishes "Bounce" / "Complaint" events. Never answered (RFC 3834 §2)."""
    # Imported on the first bounce: the bounce classifier costs ~30 ms of cold start that
    # the common path (replies, new records) does not need.
    from . import feedback

    feedback.handle_inbound_bounce(c, src.record, src.parsed)


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
        "attachments": attachments[:MAX_EVENT_ATTACHMENTS], "attachments_total": len(attachments),
        "spam": bool(record.detail.get("route", {}).get("spam")),
    }


def thread_event(record: MessageRecord, parsed: ParsedMessage, thread: Thread | None) -> dict[str, Any]:
    return {**message_payload(record, parsed), "thread_id": record.thread_id,
            "model": thread.model if thread else "", "record_id": thread.record_id if thread else "",
            "reason": record.reason, "source": record.source}


def record_event(record: MessageRecord, parsed: ParsedMessage) -> dict[str, Any]:
    route = record.detail.get("route", {})
    return {"message_key": record.key, "raw_key": record.raw_key, "thread_id": record.thread_id,
            "model": record.detail.get("model", route.get("model", "")),
            "defaults": dict(record.detail.get("defaults") or {}), "alias": route.get("alias", ""),
            "reason": record.reason, "source": record.source, "message": message_payload(record, parsed)}


def outcome_event(record: MessageRecord) -> dict[str, Any]:
    route = record.detail.get("route", {})
    answer = record.detail.get("answer")
    answered = None if not route.get("answer") else bool(answer and answer.startswith("sent"))
    return {"message_key": record.key, "raw_key": record.raw_key, "message_id": record.message_id,
            "outcome": record.outcome, "reason": record.reason, "from": record.sender,
            "subject": record.subject, "recipients": record.recipients[:20],
            "notes": list(route.get("notes") or [])[:20], "answered": answered, "source": record.source}


def _notify_domain(c, route: routing.Route) -> AliasDomain:
    if route.domain is not None:
        return route.domain
    gateway = c.settings.gateway_domain or "localhost"
    return c.config.get_domain(gateway) or AliasDomain(name=gateway)


def _followers_to_notify(c, record: MessageRecord, parsed: ParsedMessage, route: routing.Route,
                         thread: Thread | None) -> list[tuple[str, dict[str, Any]]]:
    """As Odoo notifies followers: each follower but the author gets the message, with the
    thread's reply address so that an answer comes back to the same thread."""
    if thread is None:
        return []
    domain = _notify_domain(c, route)
    own = set(c.inbound.domains())
    sender = parsed.sender.lower()
    from_ = email.utils.formataddr((parsed.sender_name or parsed.sender or "", domain.default_from_address))
    followers = [f for f in dict.fromkeys(f.strip().lower() for f in thread.followers)
                 if f and f != sender and f.rpartition("@")[2] not in own]
    if len(followers) > MAX_NOTIFIED:
        record.detail["notified"] = f"the first {MAX_NOTIFIED} of {len(followers)} followers"
    return [(f, {"from": from_, "thread_id": thread.thread_id}) for f in followers[:MAX_NOTIFIED]]


@outbox.kind("notify")
def _notify(c, effect: Effect, src: outbox.Source) -> None:
    record, parsed, follower = src.record, src.parsed, effect.args["to"]
    text, _ = _cut(parsed.reply_text or parsed.text or message_mod.html_to_text(parsed.html), MAX_NOTIFY_TEXT)
    html, html_cut = _cut(parsed.html, MAX_NOTIFY_HTML)
    request = {
        "idempotency_key": f"{record.key}:notify:{follower}", "from": effect.args["from"], "to": [follower],
        "subject": parsed.subject, "text": text, "html": None if html_cut else (html or None),
        # Reply-To is the thread's reply address: outbound sets it from thread_id.
        "thread_id": effect.args["thread_id"], "notification": True,
    }
    c.outbound_queue.send(_fit_request(request), dedup_id=_dedup(request["idempotency_key"]))


def _fit_request(request: dict[str, Any]) -> dict[str, Any]:
    """A send request within SQS's 256 KB (bytes of the JSON sent): the HTML goes first (a cut
    HTML is broken markup), then the longest texts are cut."""
    if jsonfit.size(request) > jsonfit.QUEUE_BODY_BYTES and request.get("html"):
        request = {**request, "html": None}
    request, _ = jsonfit.fit(request, jsonfit.QUEUE_BODY_BYTES)
    return request


def _dedup(idempotency_key: str) -> str:
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:64]


def _answer_args(c, parsed: ParsedMessage, route: routing.Route) -> dict[str, Any]:
    """The polite answer's request, but for the text of the message (small: what the outbox keeps)."""
    domain = route.domain or _notify_domain(c, route)
    subject = parsed.subject if parsed.subject.lower().startswith("re:") else f"Re: {parsed.subject}".strip()
    args = {"to": route.answer_to.lower(), "from": domain.default_from_address, "subject": subject[:250],
            "text": route.answer_text[:20_000]}
    if _SIMPLE_MSGID.fullmatch(parsed.message_id or ""):
        args["in_reply_to"] = f"<{parsed.message_id}>"
    return args


@outbox.kind("answer")
def _answer(c, effect: Effect, src: outbox.Source) -> None:
    """The polite answer, at most one per sender per ANSWER_WINDOW_SECONDS (a conditional write,
    which this same effect may have made before a crash)."""
    record, args = src.record, effect.args
    to, mark = args["to"], f"answered#{args['to']}"
    if not c.kv.put_item(mark, {"message_key": record.key, "at": time.time()},
                         ttl_seconds=ANSWER_WINDOW_SECONDS, if_absent=True) and \
            (c.kv.get_item(mark) or {}).get("message_key") != record.key:
        record.detail["answer"] = f"not sent: {to} was already answered within {ANSWER_WINDOW_SECONDS // 3600} h"
        c.messages.update(record)
        return
    request = {
        "idempotency_key": f"{record.key}:answer", "from": args["from"], "to": [to],
        "subject": args["subject"], "text": args["text"], "html": None,
        # RFC 3834 §5.2: Auto-Submitted: auto-replied, so that responders do not answer us
        "auto_reply": True,
    }
    if args.get("in_reply_to"):
        request["in_reply_to"] = args["in_reply_to"]
    c.outbound_queue.send(_fit_request(request), dedup_id=_dedup(request["idempotency_key"]))
    record.detail["answer"] = f"sent to {to}"
    c.messages.update(record)


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
