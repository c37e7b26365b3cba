"""Scheduled fetching of incoming servers (Odoo's "Mail: Fetchmail Service"), exactly once.

    EventBridge schedule -> dispatch()         one SQS message (a job) per due mailbox
    SQS                  -> run_job()          -> fetch_mailbox(), per job

fetch_mailbox() holds a lease on the mailbox (one worker at a time), reads what is new since its
cursor (IMAP: UIDVALIDITY + last UID; POP3: the UIDLs already taken), in chunks of one round trip
each, and for every message:

    1. stores the raw bytes under a content-addressed key (raw/fetch/<sha256>.eml),
    2. hands the key to ingest() (dedup by Message-ID/digest, routing, outcome),
    3. and only then acknowledges the chunk on the server (leave / \\Seen / move / delete)
       and advances the cursor.

A crash at any point repeats at most steps 1-3 for the messages of one chunk: the store is
content-addressed and ingest() is idempotent, so nothing is lost and nothing is stored twice.
A message whose ingest fails is kept with its error (a "fetch-failed:" record) and does not
block the mailbox. Unread state is never the cursor, so mail a person already read is fetched.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterator, Protocol

from .. import checks
from ..domain import IncomingServer, MessageRecord, new_id
from ..errors import MailgateError, NotFound, PermanentError, TransientError
from ..adapters.netmail import ERROR_WORDS, MailItem, Timeouts

log = logging.getLogger(__name__)

LEASE_PREFIX = "lease#"
CURSOR_PREFIX = "cursor#"
HEALTH_PREFIX = "health#"
SCHED_PREFIX = "sched#"
ATTEMPTS_PREFIX = "fetchattempts#"
SKIPPED_PREFIX = "fetchskip#"

#: a server failing for this long is disabled and reported
DISABLE_AFTER_SECONDS = 5 * 24 * 3600
#: an ingest that fails transiently this many times is treated as permanent (poison)
MAX_INGEST_ATTEMPTS = 3
#: one UID FETCH carries at most this many messages / octets (Lambda memory)
CHUNK_MESSAGES = 200
CHUNK_BYTES = 8 * 1024 * 1024
#: raw messages of a chunk stored at once (S3 PUTs / fsyncs wait on I/O, not on the CPU)
STORE_CONCURRENCY = 16
#: the worker stops when less than this is left before its deadline
SAFETY_SECONDS = 2.0
#: the lease outlives the worker's deadline by this much (then a new worker may take over)
LEASE_MARGIN_SECONDS = 60
#: the dispatcher's tolerance: a server due in less than this is dispatched now
DISPATCH_SLACK_SECONDS = 30

DETAIL_SERVER_DISABLED = "Fetch Server Disabled"


class Mailbox(Protocol):
    """What the worker needs from ImapMailbox / PopMailbox (and what the test fakes provide)."""

    protocol: str
    exists: int

    def connect(self) -> None: ...
    def login(self) -> None: ...
    def select(self, readonly: bool = False) -> int: ...
    def open(self) -> None: ...
    def fetch(self, items: list[MailItem]) -> Iterator[tuple[MailItem, bytes]]: ...
    def ack(self, items: list[MailItem], mode: str, move_to: str = "") -> None: ...
    def set_timeout(self, seconds: float) -> None: ...
    def close(self) -> None: ...
    # IMAP: uidvalidity, list_since(last_uid); POP3: list_all(), commit()


MailboxFactory = Callable[[IncomingServer, str], Mailbox]
Ingest = Callable[..., Any]


@dataclass
class FetchResult:
    """What one run did, in words a person can read (also the CLI's --json output)."""

    server: str
    status: str = "ok"  # ok | busy | failed | disabled | not-found
    fetched: int = 0  # messages read from the server
    stored: int = 0  # raw messages newly written to the store
    duplicates: int = 0  # already in the store (a retry after a crash, a UIDVALIDITY reset)
    ingested: int = 0  # handed to routing successfully
    failed: int = 0  # routing failed: kept with the error, not fetched again
    skipped: int = 0  # over the size cap: left on the server, recorded
    vanished: int = 0  # deleted on the server between listing and fetching
    acked: int = 0
    more: bool = False  # stopped by the time budget or the message cap: carries on next run
    uidvalidity_reset: bool = False
    error: str = ""
    error_code: str = ""
    transient: bool = False
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the dispatcher ----------------------------------------------------------------------------


def dispatch(c, now: float | None = None) -> int:
    """Put one fetch request on the queue per enabled server that is due; returns how many."""
    now = time.time() if now is None else now
    sent = 0
    for server in c.config.list_incoming():
        if not server.enabled:
            continue
        key = SCHED_PREFIX + server.name
        sched = c.kv.get_item(key) or {}
        interval = max(1, int(server.interval_minutes or 5)) * 60
        last = float(sched.get("last_dispatch") or 0)
        if last and now < last + interval - DISPATCH_SLACK_SECONDS:
            continue
        version = int(sched.get("version") or 0)
        # Conditional write: two overlapping schedule runs dispatch a server once.
        if not c.kv.put_item(key, {"last_dispatch": now, "version": version + 1}, if_version=version):
            continue
        c.fetch_queue.send({"server": server.name}, dedup_id=f"{server.name}:{int(now // 60)}")
        sent += 1
    return sent


# --- the worker --------------------------------------------------------------------------------


def default_mailbox_factory(cafile: str | None = None, socket_factory=None,
                            timeouts: Timeouts = Timeouts()) -> MailboxFactory:
    def make(server: IncomingServer, password: str) -> Mailbox:
        if server.protocol == "pop":
            from ..adapters.pop import PopMailbox

            return PopMailbox(server, password, cafile=cafile, timeouts=timeouts,
                              socket_factory=socket_factory)
        from ..adapters.imap import ImapMailbox

        return ImapMailbox(server, password, cafile=cafile, timeouts=timeouts,
                           socket_factory=socket_factory)

    return make


def _factory_for(c) -> MailboxFactory:
    extras = getattr(c, "extras", {}) or {}
    if extras.get("mailbox_factory"):
        return extras["mailbox_factory"]
    return default_mailbox_factory(cafile=extras.get("fetch_cafile"))


def _default_ingest(c, raw_key, **kw):
    from .inbound import ingest

    return ingest(c, raw_key, **kw)


def secret_id_for(server: IncomingServer, prefix: str = "mailgate/server/") -> str:
    return server.secret_id or f"{prefix}{server.name}"


def _password(secrets, server: IncomingServer, prefix: str) -> str:
    sid = secret_id_for(server, prefix)
    try:
        return secrets.get(sid)
    except NotFound as exc:
        if not server.secret_id:
            return ""  # added with --no-password; the server says whether it needs one
        raise PermanentError(f"the password of server {server.name} is missing: secret {sid!r} "
                             "does not exist; store it again with `mailgate server add-imap` / `add-pop` "
                             "(--password-stdin)",
                             code="config") from exc


def fetch_mailbox(c, server_name: str, *, deadline: float, max_messages: int,
                  mailbox_factory: MailboxFactory | None = None, ingest: Ingest | None = None,
                  clock: Callable[[], float] = time.monotonic,
                  now: Callable[[], float] = time.time) -> FetchResult:
    """Fetch what is new in one mailbox, store it, route it, then acknowledge it.

    `deadline` is a `clock()` (monotonic) time by which the run must have stopped;
    `max_messages` caps the messages handled in this run. Both leave the rest for the next run.
    """
    res = FetchResult(server=server_name)
    server = c.config.get_incoming(server_name)
    if server is None:
        res.status, res.error, res.error_code = "not-found", f"no incoming server named {server_name!r}", "not-found"
        return res
    if not server.enabled:
        res.status = "disabled"
        res.notes.append(f"server is disabled; fix the cause (`mailgate fetch status` shows the last error), "
                         f"check with `mailgate server test {server_name}`, then run "
                         f"`mailgate server enable {server_name}`")
        return res
    lease = _acquire_lease(c, server_name, ttl=max(1.0, deadline - clock()) + LEASE_MARGIN_SECONDS,
                           now=now())
    if lease is None:
        res.status = "busy"
        res.notes.append("another worker holds the lease on this mailbox")
        return res
    ingest = ingest or (getattr(c, "extras", {}) or {}).get("ingest") or _default_ingest
    factory = mailbox_factory or _factory_for(c)
    try:
        try:
            password = _password(c.secrets, server, c.settings.server_secret_prefix)
            mb = factory(server, password)
            try:
                mb.set_timeout(max(1.0, min(Timeouts.command, deadline - clock())))
                mb.open()
                if server.protocol == "pop":
                    _fetch_pop(c, server, mb, res, deadline=deadline, max_messages=max_messages,
                               ingest=ingest, clock=clock, now=now)
                    mb.commit()  # QUIT applies the DELEs; our cursor already has them
                else:
                    _fetch_imap(c, server, mb, res, deadline=deadline, max_messages=max_messages,
                                ingest=ingest, clock=clock, now=now)
            finally:
                mb.close()
        except MailgateError as exc:
            res.status, res.error, res.error_code = "failed", str(exc), exc.code
            res.transient = isinstance(exc, TransientError)
            _record_failure(c, server, res, now())
        except Exception as exc:  # a bug: record it, then let the caller see it
            res.status, res.error, res.error_code = "failed", f"internal error: {exc!r}", "internal"
            res.transient = True
            _record_failure(c, server, res, now())
            raise
        else:
            _record_success(c, server, res, now())
    finally:
        _release_lease(c, server_name, lease)
    log.info("fetch %s: %s", server_name, res.to_dict())
    return res


class _Cursor:
    """The mailbox cursor item, written with a version check (a lost lease cannot go unnoticed).

    `inflight` names the chunk being stored: after a crash, only those messages (and everything
    after a UIDVALIDITY reset) may already be in the store, so only they cost an exists() check.
    """

    def __init__(self, c, server, now):
        self.c, self.server, self.now = c, server, now
        self.key = CURSOR_PREFIX + server.name
        self.value = c.kv.get_item(self.key) or {}
        self.version = int(self.value.get("version") or 0)

    def write(self, **fields) -> None:
        value = {k: v for k, v in self.value.items() if k != "version"}
        value.update(fields, version=self.version + 1, updated_at=self.now())
        if not self.c.kv.put_item(self.key, value, if_version=self.version):
            raise TransientError(f"cursor of {self.server.name} was changed by another worker "
                                 "(lease expired?); stopping", code="lease-lost")
        self.value, self.version = value, self.version + 1


def account_of(server: IncomingServer) -> str:
    """The mailbox a cursor belongs to. UIDs and UIDLs mean something on that mailbox only, and
    UIDVALIDITY is unique per folder name on one server, not across accounts (RFC 3501 2.3.1.1):
    a server item pointed at another account (re-added under the same name) starts afresh."""
    return f"{server.user}@{server.host.strip().lower()}"


def _fetch_imap(c, server, mb, res, **kw) -> None:
    cursor = _Cursor(c, server, kw["now"])
    cur = cursor.value
    state = {"last_uid": int(cur.get("last_uid") or 0)}
    inflight = int(cur.get("inflight_upto") or 0)
    reset_upto = int(cur.get("reset_upto") or 0)
    folder = server.folder or "INBOX"
    account = account_of(server)
    reset = bool(cur) and (int(cur.get("uidvalidity") or 0) != mb.uidvalidity
                           or cur.get("folder", folder) != folder or cur.get("account", account) != account)
    if reset:
        # RFC 3501 2.3.1.1: a new UIDVALIDITY means old UIDs mean nothing; take everything again.
        # Content-addressed storage and ingest's dedup make the second pass store nothing twice.
        res.uidvalidity_reset = True
        res.notes.append(f"UIDVALIDITY changed ({cur.get('uidvalidity')} -> {mb.uidvalidity}), folder "
                         f"changed or another account: re-reading {folder} from the start")
        state["last_uid"], inflight = 0, 0
    pending = mb.list_since(state["last_uid"])
    if reset:
        # Everything up to here may be in the store already (under its old UID).
        reset_upto = max((i.ref for i in pending), default=0)
    base = {"protocol": "imap", "folder": folder, "uidvalidity": mb.uidvalidity, "account": account,
            "reset_upto": reset_upto}

    def begin(chunk: list[MailItem]) -> None:
        cursor.write(**base, last_uid=state["last_uid"], inflight_upto=max(i.ref for i in chunk))

    def save(done: list[MailItem]) -> None:
        if done:
            state["last_uid"] = max(state["last_uid"], max(i.ref for i in done))
            cursor.write(**base, last_uid=state["last_uid"])

    def may_exist(item: MailItem) -> bool:
        return item.ref <= inflight or item.ref <= reset_upto

    _process(c, server, mb, res, pending, save, begin=begin, may_exist=may_exist, **kw)


#: a POP3 cursor keeps the UIDLs it has taken inline up to this size (JSON bytes); beyond, in
#: the raw store: a mailbox that keeps its mail (ack seen/leave) would outgrow a DynamoDB item
#: (400 KB) after some thousand messages, as RFC 1939 allows UIDLs of up to 70 characters
SEEN_INLINE_BYTES = 64 * 1024
SEEN_STATE_PREFIX = "state/fetch/"


def _load_seen(c, server, value: dict) -> set[str]:
    key = value.get("seen_key")
    if not key:
        return set(value.get("seen") or [])
    try:
        return set(json.loads(c.raw_store.get(key)))
    except NotFound:
        # Re-reading the mailbox is safe (content-addressed store, ingest's dedup), only slower.
        log.warning("fetch %s: the list of messages taken (%s) is missing; re-reading the mailbox",
                    server.name, key)
        return set()


def _seen_fields(c, server, seen: set[str]) -> dict:
    ordered = sorted(seen)
    if len(json.dumps(ordered)) <= SEEN_INLINE_BYTES:
        return {"seen": ordered, "seen_key": None, "seen_count": len(ordered)}
    # One object per server, overwritten: whatever a (late) worker writes there lists only
    # messages it has stored and routed, so at worst a message is read again, never lost.
    key = f"{SEEN_STATE_PREFIX}{server.name}/pop-seen.json"
    c.raw_store.put(key, json.dumps(ordered).encode(), content_type="application/json")
    return {"seen": [], "seen_key": key, "seen_count": len(ordered)}


def _fetch_pop(c, server, mb, res, **kw) -> None:
    cursor = _Cursor(c, server, kw["now"])
    account = account_of(server)
    if cursor.value.get("account", account) != account:
        # Another mailbox: its UIDLs may equal the old one's (Dovecot's are UID + UIDVALIDITY), and
        # "seen" must never delete (ack delete) or skip a message this mailbox has not given us.
        res.notes.append(f"the server now names another account ({account}): reading it from the start")
        seen, inflight = set(), set()
    else:
        seen = _load_seen(c, server, cursor.value)
        inflight = set(cursor.value.get("inflight") or [])
    everything = mb.list_all()
    present = {i.ident for i in everything}
    if server.ack == "delete":
        # Deletions of a run that died before QUIT were rolled back by the server: redo them.
        again = [i for i in everything if i.ident in seen]
        if again:
            mb.ack(again, "delete")
            res.notes.append(f"re-deleted {len(again)} message(s) already stored")
    state = {"seen": seen & present}

    def begin(chunk: list[MailItem]) -> None:
        cursor.write(protocol="pop", account=account, **_seen_fields(c, server, state["seen"]),
                     inflight=[i.ident for i in chunk])

    def save(done: list[MailItem]) -> None:
        if done:
            state["seen"] |= {i.ident for i in done}
            cursor.write(protocol="pop", account=account, **_seen_fields(c, server, state["seen"]))

    pending = [i for i in everything if i.ident not in seen]
    _process(c, server, mb, res, pending, save, begin=begin, may_exist=lambda i: i.ident in inflight, **kw)


def _chunks(items: list[MailItem], cap: int) -> Iterator[list[MailItem]]:
    chunk: list[MailItem] = []
    size = 0
    for item in items:
        weight = item.size if item.size <= cap else 0
        if chunk and (len(chunk) >= CHUNK_MESSAGES or size + weight > CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += weight
    if chunk:
        yield chunk


def _process(c, server, mb, res, pending: list[MailItem], save, *, begin, may_exist, deadline,
             max_messages, ingest, clock, now) -> None:
    if len(pending) > max_messages:
        res.more = True
        res.notes.append(f"{len(pending)} new messages; this run takes {max_messages}")
        pending = pending[:max_messages]
    cap = server.max_message_bytes or (40 * 1024 * 1024)
    slowest = 0.0
    for chunk in _chunks(pending, cap):
        left = deadline - clock()
        if left < SAFETY_SECONDS + slowest:
            res.more = True
            res.notes.append("stopped before the time limit; the rest comes next run")
            return
        started = clock()
        mb.set_timeout(max(1.0, min(Timeouts.command, left - SAFETY_SECONDS)))
        wanted = [i for i in chunk if i.size <= cap]
        got = {item.ref: raw for item, raw in mb.fetch(wanted)}
        # 1. every raw message of the chunk durably stored (in parallel: S3 PUTs and fsyncs
        #    are I/O waits), 2. routed one by one in mailbox order (a reply after its original),
        # 3. acknowledged on the server, 4. cursor advanced.
        if got:
            begin([i for i in chunk if i.ref in got])
        stored = _store_all(c, server, [(i, got[i.ref]) for i in chunk if i.ref in got], res, may_exist)
        done: list[MailItem] = []
        to_ack: list[MailItem] = []
        stop = False
        for item in chunk:
            if item.size > cap:
                _record_skipped(c, server, item, cap, now())
                res.skipped += 1
                done.append(item)  # left on the server for a person; not fetched again
                continue
            if item.ref not in got:
                res.vanished += 1
                done.append(item)
                continue
            res.fetched += 1
            key, digest, ingest_key = stored[item.ref]
            if not _ingest_one(c, server, item, key, digest, ingest_key, ingest, res, now()):
                stop = True  # a transient failure: retry this message (and what follows) next run
                break
            done.append(item)
            to_ack.append(item)
        mb.ack(to_ack, server.ack, server.move_to)  # only after every raw message is stored
        res.acked += len(to_ack) if server.ack != "leave" else 0
        save(done)
        if stop:
            res.more = True
            return
        slowest = max(slowest, clock() - started)


def raw_key_for(raw: bytes) -> tuple[str, str]:
    digest = hashlib.sha256(raw).hexdigest()
    return f"raw/fetch/{digest}.eml", digest


def _store_all(c, server, pairs: list[tuple[MailItem, bytes]], res, may_exist
               ) -> dict[int, tuple[str, str, str]]:
    """Store each raw message under its content address; returns ref -> (key, digest, ingest key).

    Writing the same bytes under the same key twice is harmless; the exists() check is only
    there to avoid it after a crash or a reset, so messages that cannot be stored yet skip it.
    """

    def store(pair):
        item, raw = pair
        key, digest = raw_key_for(raw)
        if may_exist(item) and c.raw_store.exists(key):
            new = False
        else:
            c.raw_store.put(key, raw)  # durable before anything else (S3 PUT / fsync)
            new = True
        notes: list[str] = []
        ingest_key = key if server.attachments else _store_without_attachments(c, key, raw, notes)
        return item.ref, key, digest, ingest_key, new, notes

    if len(pairs) > 1 and STORE_CONCURRENCY > 1:
        with ThreadPoolExecutor(max_workers=min(STORE_CONCURRENCY, len(pairs))) as pool:
            outcomes = list(pool.map(store, pairs))  # re-raises the first failure
    else:
        outcomes = [store(p) for p in pairs]
    out = {}
    for ref, key, digest, ingest_key, new, notes in outcomes:
        out[ref] = (key, digest, ingest_key)
        if new:
            res.stored += 1
        else:
            res.duplicates += 1
        res.notes.extend(notes)
    return out


def _ingest_one(c, server, item, key, digest, ingest_key, ingest, res, t: float) -> bool:
    """True when the message is done with (routed, or kept as failed); False to retry later."""
    source = f"{server.protocol}:{server.name}"
    try:
        ingest(c, ingest_key, source=source, envelope_recipients=[])
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none blocks the mailbox
        attempts_key = f"{ATTEMPTS_PREFIX}{server.name}#{digest}"
        attempts = int((c.kv.get_item(attempts_key) or {}).get("attempts") or 0) + 1
        transient = isinstance(exc, TransientError)
        if transient and attempts < MAX_INGEST_ATTEMPTS:
            c.kv.put_item(attempts_key, {"attempts": attempts, "error": str(exc)}, ttl_seconds=7 * 86400)
            res.notes.append(f"routing of {item.ident} failed ({exc}); retry {attempts}/"
                             f"{MAX_INGEST_ATTEMPTS} next run")
            return False
        _record_poison(c, server, item, key, digest, exc, attempts, t)
        res.failed += 1
        return True
    res.ingested += 1
    return True


def _record_poison(c, server, item, raw_key, digest, exc, attempts, t) -> None:
    """Keep the message with its error: it can be replayed after a fix, and is not fetched again."""
    code = getattr(exc, "code", type(exc).__name__)
    record = MessageRecord(
        key=f"fetch-failed:{digest}", raw_key=raw_key, direction="in",
        source=f"{server.protocol}:{server.name}", digest=digest, outcome="failed",
        reason=f"routing failed after {attempts} attempt(s): {exc}", received_at=t,
        detail={"server": server.name, "ident": item.ident, "error_code": code})
    if not c.messages.claim(record):
        c.messages.update(record)
    c.kv.delete_item(f"{ATTEMPTS_PREFIX}{server.name}#{digest}")
    log.warning("fetch %s: message %s kept as failed: %s", server.name, item.ident, exc)


def _record_skipped(c, server, item, cap, t) -> None:
    c.kv.put_item(f"{SKIPPED_PREFIX}{server.name}#{item.ident}",
                  {"reason": "too-large", "size": item.size, "cap": cap, "at": t,
                   "detail": f"message of {item.size} octets is over the cap of {cap}; "
                             "left on the server, not fetched"})


def strip_attachments(raw: bytes) -> bytes:
    """The message with every attachment replaced by a one-line note (the server's attachments=False)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.is_multipart():
            continue
        disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
        if disposition == "attachment" or (part.get_filename() and disposition != "inline"):
            name = part.get_filename() or "unnamed"
            for h in ("Content-Disposition", "Content-Transfer-Encoding", "Content-Type"):
                del part[h]
            part["Content-Type"] = 'text/plain; charset="utf-8"'
            part.set_payload(f"[attachment {name!r} removed by mailgate]\n")
    return msg.as_bytes()


def _store_without_attachments(c, key: str, raw: bytes, notes: list[str]) -> str:
    stripped_key = key[: -len(".eml")] + ".noattach.eml"
    if not c.raw_store.exists(stripped_key):
        try:
            stripped = strip_attachments(raw)
        except Exception as exc:  # noqa: BLE001 - a malformed message routes as it came
            notes.append(f"attachments kept: the message could not be parsed ({exc})")
            return key
        c.raw_store.put(stripped_key, stripped)
    return stripped_key


# --- lease -------------------------------------------------------------------------------------


def _acquire_lease(c, name: str, *, ttl: float, now: float) -> dict | None:
    key = LEASE_PREFIX + name
    value = {"owner": new_id(), "expires_at": now + ttl, "version": 1}
    if c.kv.put_item(key, value, ttl_seconds=int(ttl) + 1, if_absent=True):
        return value
    current = c.kv.get_item(key)
    if current is None:
        return value if c.kv.put_item(key, value, ttl_seconds=int(ttl) + 1, if_absent=True) else None
    if float(current.get("expires_at") or 0) <= now:
        # Left by a worker that died; the store's own expiry may be late (DynamoDB TTL is lazy).
        v = int(current.get("version") or 0)
        value["version"] = v + 1
        if c.kv.put_item(key, value, ttl_seconds=int(ttl) + 1, if_version=v):
            return value
    return None


def _release_lease(c, name: str, lease: dict) -> None:
    key = LEASE_PREFIX + name
    current = c.kv.get_item(key)
    if current and current.get("owner") == lease["owner"]:
        c.kv.delete_item(key)


# --- health ------------------------------------------------------------------------------------


def health(c, server_name: str) -> dict[str, Any]:
    return c.kv.get_item(HEALTH_PREFIX + server_name) or {}


def _record_success(c, server, res: FetchResult, t: float) -> None:
    key = HEALTH_PREFIX + server.name
    h = c.kv.get_item(key) or {}
    h.update(last_run=t, last_success=t, consecutive_failures=0, failing_since=None,
             last_result={k: v for k, v in res.to_dict().items() if k not in ("notes",)})
    if res.failed:
        h["failed_messages"] = int(h.get("failed_messages") or 0) + res.failed
    if res.skipped:
        h["skipped_messages"] = int(h.get("skipped_messages") or 0) + res.skipped
    h.pop("version", None)
    c.kv.put_item(key, h)


def forget(c, server_name: str) -> None:
    """Drop what the fetcher keeps about a server (it was removed): a server added later under the
    same name starts with no cursor, health or schedule of its own."""
    for prefix in (CURSOR_PREFIX, HEALTH_PREFIX, SCHED_PREFIX, LEASE_PREFIX):
        c.kv.delete_item(prefix + server_name)


def reset_failures(c, server_name: str) -> None:
    """Forget a server's run of failures (it was fixed and enabled again by a person)."""
    key = HEALTH_PREFIX + server_name
    h = c.kv.get_item(key)
    if not h:
        return
    h.update(consecutive_failures=0, failing_since=None)
    h.pop("disabled_at", None)
    h.pop("version", None)
    c.kv.put_item(key, h)


def _record_failure(c, server, res: FetchResult, t: float) -> None:
    key = HEALTH_PREFIX + server.name
    h = c.kv.get_item(key) or {}
    since = h.get("failing_since") or t
    words = ERROR_WORDS.get(res.error_code, res.error_code)
    h.update(last_run=t, last_error=f"{words}: {res.error}", last_error_code=res.error_code,
             last_error_at=t, consecutive_failures=int(h.get("consecutive_failures") or 0) + 1,
             failing_since=since)
    h.pop("version", None)
    if t - float(since) >= DISABLE_AFTER_SECONDS:
        c.config.put_incoming(replace(server, enabled=False))
        h["disabled_at"] = t
        detail = {"server": server.name, "failing_since": since, "consecutive_failures":
                  h["consecutive_failures"], "last_error": h["last_error"],
                  "last_error_code": res.error_code,
                  "fix": f"fix the cause, check with `mailgate server test {server.name}`, then "
                         f"`mailgate server enable {server.name}`"}
        c.events.publish(DETAIL_SERVER_DISABLED, detail)
        res.notes.append("server failed for 5 days and is now disabled")
        log.error("fetch %s disabled after failing since %s: %s", server.name, since, h["last_error"])
    c.kv.put_item(key, h)


# --- one job of the fetch queue ----------------------------------------------------------------


def run_job(c, job: Any, *, deadline: float, max_messages: int = 500,
            clock: Callable[[], float] = time.monotonic) -> FetchResult:
    """One job `dispatch` queued ({"server": NAME}): fetch that mailbox within `deadline` (a
    clock() time), and queue its continuation when it stopped with more to do (a backlog drains
    sooner than the schedule).

    A job that names no server is reported (status "failed", code "invalid-job") and dropped:
    retrying cannot fix it. Raises TransientError when the job is worth handing out again: too
    little time left to start, or a transient failure (timeout, unreachable) the server's health
    now records. A permanent one (wrong password) is recorded there too, and returned.
    "busy" (another worker has the mailbox) is returned: that worker does the job.
    """
    if not isinstance(job, dict) or "server" not in job:
        log.error("fetch queue: malformed job dropped: %r", job)
        return FetchResult(server="", status="failed", error=f"not a fetch job: {job!r}"[:300],
                           error_code="invalid-job")
    name = str(job["server"])
    if deadline - clock() < SAFETY_SECONDS * 2:
        raise TransientError(f"no time left to fetch {name} in this run", code="no-time")
    res = fetch_mailbox(c, name, deadline=deadline, max_messages=max_messages, clock=clock)
    if res.status == "failed" and res.transient:
        raise TransientError(res.error, code=res.error_code)
    if res.more and (res.fetched or res.skipped or res.vanished):
        c.fetch_queue.send({"server": name, "continue": True})
    return res


# --- Test Connection ---------------------------------------------------------------------------


def test_connection(c_or_secrets, server: IncomingServer, *,
                    mailbox_factory: MailboxFactory | None = None) -> list[checks.Step]:
    """Odoo's TEST & CONFIRM, step by step: connect, TLS, log in, open the folder, count."""
    if hasattr(c_or_secrets, "secrets"):
        secrets, prefix = c_or_secrets.secrets, c_or_secrets.settings.server_secret_prefix
        factory = mailbox_factory or _factory_for(c_or_secrets)
    else:
        secrets, prefix = c_or_secrets, "mailgate/server/"
        factory = mailbox_factory or default_mailbox_factory()
    steps: list[checks.Step] = []
    where = f"{server.host}:{server.port}"
    try:
        password = _password(secrets, server, prefix)
    except MailgateError as exc:
        return [checks.Step("password", False, str(exc))]
    mb = factory(server, password)
    try:
        try:
            mb.connect()
        except MailgateError as exc:
            if exc.code in ("tls-untrusted", "tls-failed", "plaintext-refused"):
                if exc.code != "plaintext-refused":
                    steps.append(checks.Step("connect", True, f"TCP connection to {where}"))
                steps.append(checks.Step("tls", False, str(exc)))
            else:
                steps.append(checks.Step("connect", False, str(exc)))
            return steps
        steps.append(checks.Step("connect", True, f"TCP connection to {where}"))
        if server.security == "none":
            steps.append(checks.Step("tls", True, "no TLS: plaintext allowed on this server "
                                                  "(allow_plaintext); the password crosses the network readable"))
        else:
            how = "implicit TLS" if server.security == "ssl" else "STARTTLS"
            verified = "certificate and host name verified" if server.verify_tls else \
                "certificate NOT verified (verify_tls is off)"
            steps.append(checks.Step("tls", True, f"{how}, {verified}"))
        try:
            mb.login()
        except MailgateError as exc:
            steps.append(checks.Step("login", False, str(exc)))
            return steps
        steps.append(checks.Step("login", True, f"logged in as {server.user}"))
        try:
            count = mb.select(readonly=True)
        except MailgateError as exc:
            steps.append(checks.Step("folder", False, str(exc)))
            return steps
        if server.protocol == "imap":
            steps.append(checks.Step("folder", True, f"{server.folder or 'INBOX'} opened "
                                                     f"(UIDVALIDITY {getattr(mb, 'uidvalidity', '?')})"))
        else:
            steps.append(checks.Step("folder", True, "POP3 has a single mailbox"))
        steps.append(checks.Step("count", True, f"{count} message(s) on the server"))
        return steps
    finally:
        mb.close()
