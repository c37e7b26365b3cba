"""The fetch worker: one mailbox, fetched within a deadline, stored, routed, then acknowledged
(the package docstring tells the whole flow)."""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

from ...domain import MessageRecord
from ...errors import MailgateError, TransientError
from ...ports import MailboxFactory, MailItem, Timeouts
from .connection import server_password
from .cursor import ImapCursor, PopCursor
from .health import FetchResult, record_failure, record_success
from .lease import LEASE_MARGIN_SECONDS, acquire_lease, release_lease
from .state import ATTEMPTS_PREFIX, SKIPPED_PREFIX

log = logging.getLogger(__name__)

#: an ingest that fails transiently this many times is treated as permanent (poison)
MAX_INGEST_ATTEMPTS = 3
#: one UID FETCH carries at most this many messages / octets (Lambda memory)
CHUNK_MESSAGES = 200
CHUNK_BYTES = 8 * 1024 * 1024
#: raw messages of a chunk stored at once (S3 PUTs / fsyncs wait on I/O, not on the CPU)
STORE_CONCURRENCY = 16
#: the worker stops when less than this is left before its deadline
SAFETY_SECONDS = 2.0

Ingest = Callable[..., Any]


def _default_ingest(c, raw_key, **kw):
    # Imported on first use: the dispatcher's cold start imports this package too, and routing
    # (the parser, the routing core) is the worker's alone.
    from ..inbound import ingest

    return ingest(c, raw_key, **kw)


def fetch_mailbox(c, server_name: str, *, deadline: float, max_messages: int,
                  mailbox_factory: MailboxFactory | None = None, ingest: Ingest | None = None,
                  clock: Callable[[], float] = time.monotonic,
                  now: Callable[[], float] = time.time) -> FetchResult:
    """Fetch what is new in one mailbox, store it, route it, then acknowledge it.

    `deadline` is a `clock()` (monotonic) time by which the run must have stopped;
    `max_messages` caps the messages handled in this run. Both leave the rest for the next run.
    The container's mailbox factory and `services.inbound.ingest` are used unless others are given.
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
    held = acquire_lease(c, server_name, ttl=max(1.0, deadline - clock()) + LEASE_MARGIN_SECONDS, now=now())
    if held is None:
        res.status = "busy"
        res.notes.append("another worker holds the lease on this mailbox")
        return res
    try:
        _session(c, server, res, mailbox_factory or c.mailboxes, ingest or _default_ingest,
                 deadline=deadline, max_messages=max_messages, clock=clock, now=now)
    finally:
        release_lease(c, server_name, held)
    log.info("fetch %s: %s", server_name, res.to_dict())
    return res


def _session(c, server, res: FetchResult, factory: MailboxFactory, ingest: Ingest, *, deadline: float,
             max_messages: int, clock: Callable[[], float], now: Callable[[], float]) -> None:
    """One session with the server, from the cursor on; how it went goes into the server's health."""
    try:
        password = server_password(c.secrets, server, c.settings.server_secret_prefix)
        mb = factory(server, password)
        try:
            mb.set_timeout(max(1.0, min(Timeouts.command, deadline - clock())))
            mb.open()
            cursor = (PopCursor if server.protocol == "pop" else ImapCursor)(c, server, mb, res, now)
            _process(c, server, mb, res, cursor, deadline=deadline, max_messages=max_messages,
                     ingest=ingest, clock=clock, now=now)
            if server.protocol == "pop":
                mb.commit()  # QUIT applies the DELEs; our cursor already has them
        finally:
            mb.close()
    except MailgateError as exc:
        res.status, res.error, res.error_code = "failed", str(exc), exc.code
        res.transient = isinstance(exc, TransientError)
        record_failure(c, server, res, now())
    except Exception as exc:  # a bug: record it, then let the caller see it
        res.status, res.error, res.error_code = "failed", f"internal error: {exc!r}", "internal"
        res.transient = True
        record_failure(c, server, res, now())
        raise
    else:
        record_success(c, server, res, now())


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


def _process(c, server, mb, res: FetchResult, cursor: ImapCursor | PopCursor, *, deadline: float,
             max_messages: int, ingest: Ingest, clock: Callable[[], float], now: Callable[[], float]) -> None:
    pending = cursor.pending
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
            cursor.begin([i for i in chunk if i.ref in got])
        stored = _store_all(c, server, [(i, got[i.ref]) for i in chunk if i.ref in got], res, cursor.may_exist)
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
        cursor.save(done)
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
