"""The outbound path: a send request in, a DKIM-signed message out through SMTP or SES.

`send(c, request)` is idempotent by the request's `idempotency_key`: the message ledger record
`out:<ref>` (a random ref, recorded for the key the first time) is claimed before anything is sent, each recipient's state
is written *before* its SMTP transaction ("sending") and after it ("sent", "failed", "deferred",
"suppressed", "unknown"), and a retry only sends to recipients still "pending" or "deferred".
A recipient left in "sending" by a crash is never re-sent (marked "unknown"): a possible loss is
reported, a duplicate is impossible. A short lease keeps two workers off the same message.

Each recipient gets its own envelope sender, a VERP address naming the message and the
recipient, so the message is sent in one transaction per recipient over one connection: the
DKIM-signed bytes are the same for all of them (Return-Path is not part of the message), and a
bounce names exactly one recipient without parsing the DSN (DESIGN.md "Feedback").

Transport selection follows Odoo's `ir.mail_server._find_mail_server`: the server whose
from_filter names the exact From address, then one naming its domain (by priority), then a server
without a filter, else SES for the domains SES may send for (alias domains and the gateway
domain). If none may send for the From domain, the From becomes the alias domain's default sender
(`notifications@`), keeping the author's name, and the selection is made again for it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from .. import compose as C
from .. import dkim as D
from .. import failpoints, jsonfit, suppression, tokens
from ..checks import Step
from ..domain import AliasDomain, MessageRecord, OutgoingServer, Thread, new_id, server_secret_id
from ..effects import EVENT_SOURCE, Effect, owner_of
from ..errors import ConfigError, MailgateError, NotFound, PermanentError, TransientError
from ..ports import Envelope, RecipientResult, Sender
from . import outbox

log = logging.getLogger(__name__)

SEND_RESULT = "Send Result"
#: a request's attachments are uploaded under UPLOAD_PREFIX + its quoted idempotency key + "/"
UPLOAD_PREFIX = "outbound/uploads/"
LEASE_SECONDS = 300
#: a Send Result kept pending in the outbox is cut to this (the event is cut again to fit
#: EventBridge when it is published)
MAX_PENDING_RESULT_BYTES = 64 * 1024
THREAD_IDS_KEPT = 20  # References: the newest ids of the thread (RFC 5322 §3.6.4 allows trimming)
FINAL = {"sent", "failed", "suppressed", "unknown"}


# --------------------------------------------------------------------------- refs
#
# A request's ref names its ledger record (`out:<ref>`), Message-ID (`<ref@domain>`),
# X-Mailgate-Id and VERP tokens. It is random (domain.new_id, 80 bits): the idempotency key is the
# application's, often guessable ("invoice-42-reminder-1"), and a ref derived from it would let a
# stranger compute a Message-ID and answer into the thread. Idempotency comes from the ledger: the
# ref drawn for a key the first time is recorded (`outref#<sha256(key)>`) and every retry reads it.


def _ref_item(idempotency_key: str) -> str:
    return "outref#" + hashlib.sha256(idempotency_key.encode()).hexdigest()


def _derived_ref(idempotency_key: str) -> str:
    """The ref the previous version derived from the key: only to find the records it made."""
    digest = hashlib.sha256(b"mailgate-out:" + idempotency_key.encode()).digest()
    return base64.b32encode(digest).decode().lower()[:16]


def recorded_ref(c, idempotency_key: str) -> str | None:
    """The ref of the request with this key, if it was seen before."""
    item = c.kv.get_item(_ref_item(idempotency_key))
    if item and item.get("ref"):
        return str(item["ref"])
    old = _derived_ref(idempotency_key)
    if c.messages.get("out:" + old) is not None:  # recorded before refs were random: finish it
        c.kv.put_item(_ref_item(idempotency_key), {"ref": old, "at": time.time()}, if_absent=True)
        return old
    return None


def claim_ref(c, idempotency_key: str) -> str:
    """The ref recorded for this key the first time, else a new random one, recorded now (a
    conditional write: two first attempts at once agree on one)."""
    ref = recorded_ref(c, idempotency_key)
    if ref:
        return ref
    ref = new_id()
    if c.kv.put_item(_ref_item(idempotency_key), {"ref": ref, "at": time.time()}, if_absent=True):
        return ref
    return str(c.kv.get_item(_ref_item(idempotency_key))["ref"])


# --------------------------------------------------------------------------- transport selection


@dataclass(frozen=True)
class Selection:
    server: OutgoingServer | None      # None: SES
    author: C.Address                  # the From actually used
    rewritten: bool
    reason: str

    @property
    def transport(self) -> str:
        return self.server.name if self.server else "ses"


def _filters(server: OutgoingServer) -> list[str]:
    return [f.strip().lower() for f in server.from_filter.split(",") if f.strip()]


def match_server(servers: list[OutgoingServer], address: str) -> tuple[OutgoingServer | None, str]:
    """Odoo's from_filter rule: exact address first, then the domain, each by priority."""
    address = address.lower()
    domain = address.rpartition("@")[2]
    ordered = sorted(servers, key=lambda s: (s.priority, s.name))
    for s in ordered:
        if address in _filters(s):
            return s, f"from_filter of {s.name} names {address}"
    for s in ordered:
        if domain in _filters(s):
            return s, f"from_filter of {s.name} names the domain {domain}"
    return None, ""


def select_transport(servers: list[OutgoingServer], author: C.Address, *, ses_domains: set[str],
                     default_from: str) -> Selection:
    server, why = match_server(servers, author.address)
    if server:
        return Selection(server, author, False, why)
    unfiltered = sorted((s for s in servers if not s.from_filter), key=lambda s: (s.priority, s.name))
    if unfiltered:
        return Selection(unfiltered[0], author, False, f"{unfiltered[0].name} has no from_filter (sends any From)")
    if author.domain in ses_domains:
        return Selection(None, author, False, f"SES may send for {author.domain}")
    # nobody may send as this domain: send as notifications@ with the author's name (Odoo's
    # encapsulate_email), so SPF/DKIM/DMARC pass for a domain we do control
    rewritten = C.Address(author.name or author.address, default_from)
    server, why = match_server(servers, default_from)
    if server:
        return Selection(server, rewritten, True, f"no transport may send for {author.domain}; {why}")
    return Selection(None, rewritten, True, f"no transport may send for {author.domain}; From becomes {default_from}")


# --------------------------------------------------------------------------- senders


class Senders:
    """The open transports of one batch: one sender per server (its SMTP connection reused), SES."""

    def __init__(self, c, overrides: dict[str, Sender] | None = None) -> None:
        self.c = c
        self.open: dict[str, Sender] = dict(overrides or {})
        self._owned: list[Sender] = []

    def get(self, server: OutgoingServer | None) -> Sender:
        name = server.name if server else "ses"
        sender = self.open.get(name)
        if sender is None:
            password = _server_password(self.c, server) if server is not None else None
            sender = self.open[name] = self.c.transports.open(server, password)
            self._owned.append(sender)
        return sender

    def close(self) -> None:
        for s in self._owned:
            try:
                s.close()
            except Exception:  # closing must never hide the batch's result
                log.warning("closing sender %s failed", getattr(s, "name", s), exc_info=True)
        # the senders stay known (their connections closed): a later get() reconnects on demand


# --------------------------------------------------------------------------- helpers


def _server_password(c, server: OutgoingServer) -> str | None:
    """The relay's password from the secret store (None when the server takes no AUTH)."""
    if not server.user:
        return None
    sid = server.secret_id or server_secret_id(c.settings.server_secret_prefix, "smtp", server.name)
    try:
        return c.secrets.get(sid)
    except NotFound:
        raise ConfigError(f"no password stored for outgoing server {server.name} (secret {sid}); "
                          f"store it with `mailgate server add-smtp {server.name} ...`",
                          code="password-missing") from None


def _event(c, detail: dict) -> dict:
    """A Send Result without a ledger record (a request too malformed to have a key): published
    directly; a transient failure makes SQS hand the request out again."""
    detail, _ = jsonfit.fit(detail, jsonfit.EVENT_ENTRY_BYTES - len(SEND_RESULT) - len(EVENT_SOURCE))
    c.events.publish(SEND_RESULT, detail)
    return detail


def _reject_detail(request: Any, err: MailgateError, *, record: MessageRecord | None = None) -> dict:
    key = request.get("idempotency_key") if isinstance(request, dict) else None
    return {
        "status": "rejected", "ref": record.key[4:] if record else "",
        "idempotency_key": key if isinstance(key, str) else None, "message_id": record.message_id if record else "",
        "error": err.code, "field": getattr(err, "field", ""), "reason": str(err), "recipients": [],
    }


def _reject(c, request: Any, err: MailgateError) -> dict:
    return _event(c, _reject_detail(request, err))


def _rejected(c, request: Any, req: C.SendRequest, key: str, err: MailgateError,
              previous: MessageRecord | None) -> dict:
    """A request that can never be sent as it is: recorded `rejected` with its Send Result
    pending, then published. The same key may be sent again after the fix."""
    n = int((previous.detail.get("rejections") or 0) if previous else 0) + 1
    rejected = MessageRecord(key=key, raw_key="", direction="out", source="outbound",
                             sender=req.author.address, recipients=req.recipients, subject=req.subject,
                             outcome="rejected", reason=str(err)[:1000],
                             detail={"idempotency_key": req.idempotency_key, "error": err.code, "rejections": n})
    return _record_result(c, rejected, f"rejected{n}", _reject_detail(request, err, record=rejected))


def _record_result(c, record: MessageRecord, tag: str, detail: dict) -> dict:
    """Write the record with its Send Result pending (one transaction), then publish it: a crash
    or an EventBridge failure in between leaves it to the retry (SQS hands the request out again)
    or the sweep. Returns the Send Result, or "retrying" when it is not published yet."""
    owner = owner_of(record.key, tag)
    pending, _ = jsonfit.fit(detail, MAX_PENDING_RESULT_BYTES)
    effect = Effect(id=f"{owner}:result", kind="send-result", args={"detail": pending})
    c.outbox.write(record, owner, [effect])
    failpoints.hit("outbound.after-record")
    source = outbox.Source(c, record)
    if outbox.run(c, owner, [effect], source):
        return {"status": "retrying", "ref": record.key[4:], "idempotency_key": detail.get("idempotency_key"),
                "error": "aws-transient", "reason": f"the Send Result is recorded, not published yet: {effect.error}",
                "recipients": []}
    return source.extra.get("published", detail)


@outbox.kind("send-result")
def _publish_send_result(c, effect: Effect, src: outbox.Source) -> None:
    src.extra["published"] = outbox.publish_event(c, effect, SEND_RESULT, effect.args["detail"])


def _result_owner(record: MessageRecord) -> str:
    """The outbox entry of the record's last Send Result."""
    d = record.detail
    tag = f"rejected{d.get('rejections') or 1}" if record.outcome == "rejected" else str(d.get("attempts", 0))
    return owner_of(record.key, tag)


def _alias_domain(c, req: C.SendRequest) -> AliasDomain:
    if req.alias_domain:
        d = c.config.get_domain(req.alias_domain)
        if d is None:
            raise C.InvalidRequest(f"alias_domain {req.alias_domain} is not configured; add it with "
                                   "`mailgate domain add` or leave alias_domain out", code="unknown-domain",
                                   field="alias_domain")
        return d
    d = c.config.get_domain(req.author.domain)
    if d:
        return d
    domains = c.config.list_domains()
    if len(domains) == 1:
        return domains[0]
    if not domains:
        raise ConfigError("no alias domain is configured: add one with `mailgate domain add NAME`",
                          code="no-alias-domain")
    raise C.InvalidRequest(f"the From domain {req.author.domain} is not an alias domain and several are "
                           "configured: name one in alias_domain", code="unknown-domain", field="alias_domain")


def _thread(c, req: C.SendRequest) -> Thread | None:
    if req.thread_id:
        t = c.threads.get_thread(req.thread_id)
        if t is None:
            raise C.InvalidRequest(f"thread {req.thread_id} does not exist; give record {{model, id}} to create "
                                   "the thread on first use", code="unknown-thread", field="thread_id")
        return t
    if req.record:
        model, record_id = req.record
        t = c.threads.find_thread_for_record(model, record_id)
        if t is None:
            t = Thread(thread_id=new_id(), model=model, record_id=record_id, subject=req.subject)
            c.threads.put_thread(t)
        return t
    return None


def thread_message_ids(c, thread_id: str) -> list[str]:
    """The thread's newest Message-IDs, received and sent, oldest first, as header msg-ids
    (`<id>`, RFC 5322 §3.6.4) for References."""
    return [f"<{m}>" for m in c.threads.recent_message_ids(thread_id, THREAD_IDS_KEPT)]


def ses_message_id(transport_id: str, region: str) -> str:
    """The Message-ID SES gives the mail it sends (it overrides ours: SES developer guide,
    "Amazon SES header fields"), without angle brackets: <id@email.amazonses.com> in us-east-1,
    <id@REGION.amazonses.com> elsewhere."""
    host = "email.amazonses.com" if (region or "us-east-1") == "us-east-1" else f"{region}.amazonses.com"
    return f"{transport_id}@{host}"


def _remember_in_thread(c, thread_id: str, message_id: str) -> None:
    # The index holds ids without angle brackets, as the inbound parser reads them from
    # In-Reply-To/References (message.message_ids): one form, so replies find their thread.
    c.threads.index_message_id(message_id.strip().strip("<>"), thread_id)


def _ses_domains(c) -> set[str]:
    names = {d.name.lower() for d in c.config.list_domains()}
    if c.settings.gateway_domain:
        names.add(c.settings.gateway_domain.lower())
    return names


def _envelope_sender(c, domain: AliasDomain, ref: str, index: int, server: OutgoingServer | None,
                     author: C.Address) -> str:
    verp = tokens.verp_address(c.token_key, domain.bounce, domain.name, ref, index)
    if server is None or not server.from_filter:
        return verp
    filters = _filters(server)
    if verp.rpartition("@")[2] in filters:
        return verp
    # the server only lets us use addresses its from_filter names: bounces then go to the author
    return author.address


def _suppressed(c, domains: list[str], address: str) -> dict | None:
    for d in domains:
        entry = suppression.is_suppressed(c.kv, d, address)
        if entry:
            return entry
    return None


def _overall(recipients: list[dict]) -> str:
    states = [r["status"] for r in recipients]
    if any(s in ("deferred", "pending") for s in states):
        return "retrying"
    if states and all(s == "sent" for s in states):
        return "sent"
    if any(s == "sent" for s in states):
        return "partial"
    return "failed"


def _detail(record: MessageRecord, status: str) -> dict:
    d = record.detail
    return {
        "status": status, "ref": record.key[4:], "idempotency_key": d.get("idempotency_key"),
        "message_id": record.message_id, "thread_id": record.thread_id, "from": record.sender,
        "from_rewritten": d.get("from_rewritten", False), "transport": d.get("transport"),
        "attempt": d.get("attempts", 0),
        "recipients": [{k: r.get(k) for k in ("address", "status", "code", "error", "detail")}
                       for r in d.get("recipients", [])],
    }


# --------------------------------------------------------------------------- send


def upload_prefix(idempotency_key: str) -> str:
    """Where an application uploads the attachments of the request with this key: a request
    attaches only objects under its own prefix (the key URL-quoted, '/' too, so that no request's
    prefix holds another's), never the bucket's stored mail (raw/, att/) or another request's
    files. IAM lets the outbound function read outbound/ only (template.yaml)."""
    return f"{UPLOAD_PREFIX}{urllib.parse.quote(idempotency_key, safe='')}/"


def _attachments(c, req: C.SendRequest) -> list[tuple[str, str, bytes]]:
    own = upload_prefix(req.idempotency_key)
    out = []
    for a in req.attachments:
        if not a.key.startswith(own) or len(a.key) == len(own):
            raise C.InvalidRequest(f"attachment {a.key} is not under this request's upload prefix {own}: upload "
                                   "it there (docs/outbound.md)", code="attachment-not-allowed", field="attachments")
        try:
            out.append((a.filename, a.content_type, c.raw_store.get(a.key)))
        except NotFound:
            raise C.InvalidRequest(f"attachment {a.key} is not in the bucket; upload it first",
                                   code="attachment-missing", field="attachments") from None
    return out


def _prepare(c, req: C.SendRequest, ref: str) -> tuple[MessageRecord, bytes]:
    """Compose and sign; the record to claim. Raises InvalidRequest/PermanentError/TransientError."""
    domain = _alias_domain(c, req)
    thread = _thread(c, req)
    servers = c.config.list_outgoing()
    sel = select_transport(servers, req.author, ses_domains=_ses_domains(c), default_from=domain.default_from_address)
    author = sel.author
    from_domain_item = c.config.get_domain(author.domain)
    selector = (from_domain_item or domain).dkim_selector
    keys = c.signing_keys.keys_for(author.domain, selector)
    attachments = _attachments(c, req)
    message_id = f"<{ref}@{domain.name}>"
    reply_to = None
    references: list[str] = []
    in_reply_to = req.in_reply_to
    if thread:
        name = C.short_display_name(req.reply_to_name or thread.subject or req.subject or author.name or domain.name)
        reply_to = C.Address(name, tokens.reply_address(c.token_key, domain.catchall, domain.name, thread.thread_id))
        references = thread_message_ids(c, thread.thread_id)
        in_reply_to = in_reply_to or (references[-1] if references else None)
    if in_reply_to and in_reply_to not in references:
        references = references + [in_reply_to]
    composed = C.compose(req, author=author, message_id=message_id, ref=ref, reply_to=reply_to,
                         in_reply_to=in_reply_to, references=references[-THREAD_IDS_KEPT:], attachments=attachments)
    raw = D.sign_message(composed.raw, keys, for_ses=sel.server is None)
    recipients = req.recipients
    rows = []
    for i, address in enumerate(recipients):
        row = {"index": i, "address": address, "status": "pending", "code": None, "error": "", "detail": "",
               "envelope_from": _envelope_sender(c, domain, ref, i, sel.server, author)}
        entry = _suppressed(c, [author.domain, domain.name], address)
        if entry:
            row.update(status="suppressed", error="suppressed",
                       detail=f"on the suppression list ({entry.get('reason', 'no reason given')}); "
                              "remove it with `mailgate suppression remove` if it was a mistake")
        rows.append(row)
    record = MessageRecord(
        key="out:" + ref, raw_key=f"outbound/{ref}.eml", direction="out", source="outbound",
        message_id=message_id, sender=author.address, recipients=recipients, subject=req.subject,
        outcome="pending", reason=sel.reason, thread_id=thread.thread_id if thread else "",
        detail={
            "idempotency_key": req.idempotency_key, "alias_domain": domain.name, "transport": sel.transport,
            "from": C.format_address(author, True), "from_rewritten": sel.rewritten, "smtputf8": composed.smtputf8,
            "dkim": [{"d": k.domain, "s": k.selector, "a": k.algorithm, "key": k.source} for k in keys],
            "recipients": rows, "attempts": 0,
        },
    )
    return record, raw


def send(c, request: dict, *, senders: Senders | dict | None = None, deadline: float | None = None) -> dict:
    """Send one request (schema: docs/outbound.md); return and publish its "Send Result".

    Never raises for a bad request or a refused recipient; a "retrying" status means some
    recipients were deferred (or not reached by `deadline`, a time.monotonic() time after which
    no new transaction starts) and the caller should try again later (SQS does). `senders` are
    the open transports of a batch, shared by its requests.
    """
    try:
        req = C.parse_request(request)
    except C.InvalidRequest as e:
        return _reject(c, request, e)
    ref = claim_ref(c, req.idempotency_key)
    key = "out:" + ref
    record = c.messages.get(key)
    if record and record.outcome != "rejected" and all(r["status"] in FINAL for r in record.detail.get("recipients", [])):
        # already done: nothing is sent twice; a Send Result left pending is published now
        if outbox.finish(c, record, _result_owner(record)):
            return {"status": "retrying", "ref": ref, "idempotency_key": req.idempotency_key,
                    "reason": "the Send Result is recorded, not published yet", "recipients": []}
        return _detail(record, "duplicate")
    lease = f"outlease#{ref}"
    if not c.kv.put_item(lease, {"since": time.time()}, ttl_seconds=LEASE_SECONDS, if_absent=True):
        return {"status": "retrying", "ref": ref, "idempotency_key": req.idempotency_key,
                "reason": "another worker is sending this message now", "recipients": []}
    own = senders is None or isinstance(senders, dict)
    senders = Senders(c, senders if isinstance(senders, dict) else None) if own else senders
    try:
        if record is None or record.outcome == "rejected":  # nothing was sent: prepare (again)
            previous = record
            prepared = _prepare_or_reject(c, request, req, ref, previous)
            if isinstance(prepared, dict):
                return prepared  # rejected: its Send Result
            record, raw = prepared
            # the signed bytes first, so a retry sends exactly the same message
            c.raw_store.put(record.raw_key, raw)
            if record.thread_id:
                _remember_in_thread(c, record.thread_id, record.message_id)
            if previous is not None:
                c.messages.update(record)
            elif not c.messages.claim(record):
                record = c.messages.get(key)  # lost a race with a worker whose lease expired
                raw = c.raw_store.get(record.raw_key)
        else:
            raw = c.raw_store.get(record.raw_key)
        return _deliver(c, record, raw, senders, deadline)
    except TransientError as e:
        return {"status": "retrying", "ref": ref, "idempotency_key": req.idempotency_key, "error": e.code,
                "reason": str(e), "recipients": []}
    finally:
        if own:
            senders.close()
        c.kv.delete_item(lease)


def _prepare_or_reject(c, request: dict, req: C.SendRequest, ref: str,
                       previous: MessageRecord | None) -> tuple[MessageRecord, bytes] | dict:
    """The record to claim and the signed bytes; or, for a request that can never be sent as it
    is, its Send Result (recorded `rejected`)."""
    try:
        return _prepare(c, req, ref)
    except (C.InvalidRequest, PermanentError) as e:
        return _rejected(c, request, req, "out:" + ref, e, previous)
    except TransientError:
        raise
    except Exception as e:  # noqa: BLE001 - compose or sign refused it: it would again, every retry
        log.exception("composing or signing %s failed", ref)
        why = PermanentError(f"the message could not be composed or signed: {type(e).__name__}: {e}"[:500],
                             code="compose-failed")
        return _rejected(c, request, req, "out:" + ref, why, previous)


def _deliver(c, record: MessageRecord, raw: bytes, senders: Senders, deadline: float | None) -> dict:
    detail = record.detail
    rows = detail["recipients"]
    detail["attempts"] = detail.get("attempts", 0) + 1
    for row in rows:
        if row["status"] == "sending":  # a crash between "sending" and the result: never send again
            row.update(status="unknown", error="interrupted",
                       detail="a previous attempt stopped during this recipient's transaction; not re-sent "
                              "to avoid a duplicate")
    server = None
    if detail["transport"] != "ses":
        server = c.config.get_outgoing(detail["transport"])
    todo = [r for r in rows if r["status"] in ("pending", "deferred")]
    sender = None
    if todo:
        if detail["transport"] != "ses" and server is None:
            for r in todo:
                r.update(status="failed", error="server-removed",
                         detail=f"outgoing server {detail['transport']} no longer exists")
            todo = []
        else:
            try:
                sender = senders.get(server)
            except PermanentError as e:
                for r in todo:
                    r.update(status="failed", error=e.code, detail=str(e))
                todo = []
    for row in todo:
        if deadline is not None and time.monotonic() >= deadline:
            break  # the rest stay "pending": the retry sends them (a cut transaction would be "unknown")
        row["status"] = "sending"
        c.messages.update(record)  # state recorded before the send (exactly-once)
        env = Envelope(row["envelope_from"], row["address"])
        kwargs = {"from_address": record.sender} if getattr(sender, "kind", "") == "ses" else {}
        try:
            (res,) = sender.send([env], raw, smtputf8=detail.get("smtputf8", False), **kwargs)
        except Exception as e:  # a bug or an unexpected library error: not sent; retry later
            log.exception("sender %s failed", getattr(sender, "name", sender))
            res = RecipientResult(row["address"], "deferred", None, f"unexpected error: {e}", "internal")
        failpoints.hit("outbound.after-send")
        row.update(status=res.status, code=res.code, error=res.error, detail=res.detail,
                   transport_id=res.transport_id)
        if record.thread_id and res.status == "sent" and res.transport_id and getattr(sender, "kind", "") == "ses":
            # SES replaces our Message-ID with its own, which is what a reply's In-Reply-To and
            # References quote: index that one in the thread too.
            c.threads.index_message_id(ses_message_id(res.transport_id, c.settings.region), record.thread_id)
    status = _overall(rows)
    record.outcome = status
    return _record_result(c, record, str(detail["attempts"]), _detail(record, status))


def reject_unreadable(c, why: str) -> dict:
    """A queued message that is not a request at all (not JSON): its "Send Result" says so.
    Retrying cannot fix it, so the caller drops it."""
    return _reject(c, {}, C.InvalidRequest(f"the queue message is not JSON ({why})", code="invalid-json"))


# --------------------------------------------------------------------------- Test Connection


def test_connection(c, server: OutgoingServer, *, rcpt_to: str | None = None) -> list[Step]:
    """Odoo's Test Connection for an SMTP server, step by step (nothing is sent)."""
    try:
        password = _server_password(c, server)
    except ConfigError as exc:
        return [Step("credentials", False, str(exc))]
    domains = c.config.list_domains()
    filters = _filters(server)
    if filters and "@" in filters[0]:
        mail_from = filters[0]
    elif filters:
        d = c.config.get_domain(filters[0])
        mail_from = d.default_from_address if d else f"notifications@{filters[0]}"
    elif domains:
        mail_from = domains[0].default_from_address
    else:
        mail_from = f"notifications@{c.settings.gateway_domain or 'localhost'}"
    if rcpt_to is None:
        d = c.config.get_domain(mail_from.rpartition("@")[2])
        rcpt_to = d.bounce_address if d else f"postmaster@{mail_from.rpartition('@')[2]}"
    return c.transports.test_connection(server, password, mail_from=mail_from, rcpt_to=rcpt_to)
