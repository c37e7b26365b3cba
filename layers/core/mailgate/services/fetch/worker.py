"""The fetch worker: one mailbox, fetched within a deadline, stored, routed, then acknowledged
(the package docstring tells the whole flow)."""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ... import failpoints
from ...errors import MailgateError, TransientError
from ...message import without_attachments
from ...ports import MailboxFactory, MailItem, Timeouts
from .connection import server_password
from .cursor import ImapCursor, PopCursor
from .health import FetchResult, record_failure, record_success
from .lease import LEASE_MARGIN_SECONDS, acquire_lease, release_lease
from .poison import MAX_INGEST_ATTEMPTS, Ingest, Stored, route_one
from .state import SKIPPED_PREFIX

log = logging.getLogger(__name__)

#: a message the server lists but does not return (RETR -ERR, a UID left out of the UID FETCH
#: answer) is fetched again on this many runs, then recorded as skipped and left on the server
MAX_FETCH_ATTEMPTS = 5
#: one UID FETCH carries at most this many messages / octets (Lambda memory)
CHUNK_MESSAGES = 200
CHUNK_BYTES = 8 * 1024 * 1024
#: raw messages of a chunk stored at once (S3 PUTs / fsyncs wait on I/O, not on the CPU)
STORE_CONCURRENCY = 16
#: the worker stops when less than this is left before its deadline
SAFETY_SECONDS = 2.0

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
    run = _Run(c, server, mb, res, cursor, ingest, deadline=deadline, clock=clock, now=now)
    slowest = 0.0
    for chunk in _chunks(pending, cap):
        if run.out_of_time(slowest):
            return
        started = clock()
        if not run.chunk(chunk, cap):
            res.more = True  # stopped in the chunk: the rest of it comes next run
            return
        slowest = max(slowest, clock() - started)


@dataclass
class _Done:
    """What became of a chunk's messages (the cursor's `save` takes the first three)."""

    done: list[MailItem] = field(default_factory=list)  # routed, kept as failed, or gone
    skipped: list[MailItem] = field(default_factory=list)  # left on the server for good
    missed: list[MailItem] = field(default_factory=list)  # not returned: fetched again next run
    to_ack: list[MailItem] = field(default_factory=list)  # stored: acknowledged on the server
    stopped: bool = False


class _Run:
    """One run over a mailbox's chunks: fetch, store, route, acknowledge, advance the cursor."""

    def __init__(self, c, server, mb, res: FetchResult, cursor: ImapCursor | PopCursor, ingest: Ingest, *,
                 deadline: float, clock: Callable[[], float], now: Callable[[], float]) -> None:
        self.c, self.server, self.mb, self.res, self.cursor, self.ingest = c, server, mb, res, cursor, ingest
        self.deadline, self.clock, self.now = deadline, clock, now
        self.slowest_route = 0.0

    def out_of_time(self, step: float) -> bool:
        """Less time left than `step` (the slowest such step so far) plus the safety margin."""
        if self.deadline - self.clock() >= SAFETY_SECONDS + step:
            return False
        self.res.more = True
        self.res.notes.append("stopped before the time limit; the rest comes next run")
        return True

    def chunk(self, chunk: list[MailItem], cap: int) -> bool:
        """1. fetch the chunk in one call, 2. store every raw message durably, 3. route them one
        by one in mailbox order (a reply after its original), 4. acknowledge on the server what
        is stored, 5. advance the cursor. False when the run must stop (time, a transient failure)."""
        self.mb.set_timeout(max(1.0, min(Timeouts.command, self.deadline - self.clock() - SAFETY_SECONDS)))
        wanted = [i for i in chunk if i.size <= cap]
        got = {item.ref: raw for item, raw in self.mb.fetch(wanted)}
        lost = [i for i in wanted if i.ref not in got]
        why = self.mb.missing(lost) if lost else {}  # confirmed gone (None), or why it was not returned
        if got:
            self.cursor.begin([i for i in chunk if i.ref in got])
        stored = _store_all(self.c, self.server, [(i, got[i.ref]) for i in chunk if i.ref in got], self.res,
                            self.cursor.may_exist)
        failpoints.hit("fetch.stored")
        out = _Done()
        for item in chunk:
            if item.size > cap:
                self._too_large(item, cap, out)
            elif item.ref not in got:
                self._not_returned(item, why.get(item.ref), out)
            elif not self._route(item, stored[item.ref], out):
                break
        failpoints.hit("fetch.routed")
        self.mb.ack(out.to_ack, self.server.ack, self.server.move_to)  # only what is stored
        self.res.acked += len(out.to_ack) if self.server.ack != "leave" else 0
        failpoints.hit("fetch.acked")
        self.cursor.save(out.done, skipped=out.skipped, missed=out.missed)
        failpoints.hit("fetch.saved")
        return not out.stopped

    def _route(self, item: MailItem, stored: Stored, out: _Done) -> bool:
        if self.out_of_time(self.slowest_route):
            out.stopped = True  # stored, not routed: fetched (and found in the store) next run
            return False
        self.res.fetched += 1
        started = self.clock()
        # routing's own limit (inbound.ingest) is on time.monotonic(); the worker's clock may be another
        routing_deadline = time.monotonic() + (self.deadline - started) - SAFETY_SECONDS
        done = route_one(self.c, self.server, item, stored, self.ingest, self.res, t=self.now(),
                         careful=self.cursor.careful(item), allowed=self.deadline - started,
                         deadline=routing_deadline)
        self.slowest_route = max(self.slowest_route, self.clock() - started)
        if not done:
            out.stopped = True  # a transient failure: this message (and what follows) next run
            return False
        out.done.append(item)
        out.to_ack.append(item)
        return True

    def _too_large(self, item: MailItem, cap: int, out: _Done) -> None:
        _record_skipped(self.c, self.server, item, self.now(), reason="too-large", cap=cap,
                        detail=f"message of {item.size} octets is over the cap of {cap}; "
                               "left on the server, not fetched")
        self.res.skipped += 1
        out.skipped.append(item)  # left on the server for a person; not fetched again

    def _not_returned(self, item: MailItem, why: str | None, out: _Done) -> None:
        if why is None:  # the server confirms it is gone (expunged, deleted by another client)
            self.res.vanished += 1
            out.done.append(item)
            return
        attempts = self.cursor.attempts(item) + 1
        if attempts < MAX_FETCH_ATTEMPTS:
            self.res.missing += 1
            self.res.notes.append(f"message {item.ident} was not returned ({why}); fetched again next run "
                                  f"({attempts}/{MAX_FETCH_ATTEMPTS})")
            out.missed.append(item)
            return
        _record_skipped(self.c, self.server, item, self.now(), reason="not-returned", attempts=attempts,
                        error=why, detail=f"the server did not return this message in {attempts} fetches "
                                          f"({why}); left on the server, not fetched again")
        log.warning("fetch %s: message %s skipped after %d fetches: %s", self.server.name, item.ident,
                    attempts, why)
        self.res.skipped += 1
        out.skipped.append(item)


def raw_key_for(raw: bytes) -> tuple[str, str]:
    digest = hashlib.sha256(raw).hexdigest()
    return f"raw/fetch/{digest}.eml", digest


def _store_all(c, server, pairs: list[tuple[MailItem, bytes]], res, may_exist) -> dict[int, Stored]:
    """Store each raw message under its content address; returns ref -> where it is.

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
    out, raws = {}, {item.ref: raw for item, raw in pairs}
    for ref, key, digest, ingest_key, new, notes in outcomes:
        # the bytes routing reads are in hand unless attachments were cut out (then it reads the cut copy)
        out[ref] = Stored(key, digest, ingest_key, raws[ref] if ingest_key == key else None)
        if new:
            res.stored += 1
        else:
            res.duplicates += 1
        res.notes.extend(notes)
    return out


def _record_skipped(c, server, item: MailItem, t: float, *, reason: str, detail: str, **more) -> None:
    """A message left on the server for good, with why (`mailgate fetch skipped` lists them)."""
    c.kv.put_item(f"{SKIPPED_PREFIX}{server.name}#{item.ident}",
                  {"reason": reason, "size": item.size, "at": t, "detail": detail, **more})


def _store_without_attachments(c, key: str, raw: bytes, notes: list[str]) -> str:
    stripped_key = key[: -len(".eml")] + ".noattach.eml"
    if not c.raw_store.exists(stripped_key):
        try:
            stripped, _ = without_attachments(raw)
        except Exception as exc:  # noqa: BLE001 - a bug must not cost the message: it routes as it came
            notes.append(f"attachments kept: the message could not be parsed ({exc})")
            return key
        c.raw_store.put(stripped_key, stripped)
    return stripped_key


def run_job(c, job: Any, *, deadline: float, max_messages: int = 500,
            clock: Callable[[], float] = time.monotonic,
            observe: Callable[[FetchResult], None] | None = None) -> FetchResult:
    """One job `dispatch` queued ({"server": NAME}): fetch that mailbox within `deadline` (a
    clock() time), and queue its continuation when it stopped with more to do (a backlog drains
    sooner than the schedule).

    A job that names no server is reported (status "failed", code "invalid-job") and dropped:
    retrying cannot fix it. Raises TransientError when the job is worth handing out again: too
    little time left to start, or a transient failure (timeout, unreachable) the server's health
    now records. A permanent one (wrong password) is recorded there too, and returned.
    "busy" (another worker has the mailbox) is returned: that worker does the job.
    `observe` sees the run's result first, whether it is returned or raised for (metrics).
    """
    if not isinstance(job, dict) or "server" not in job:
        log.error("fetch queue: malformed job dropped: %r", job)
        return FetchResult(server="", status="failed", error=f"not a fetch job: {job!r}"[:300],
                           error_code="invalid-job")
    name = str(job["server"])
    if deadline - clock() < SAFETY_SECONDS * 2:
        raise TransientError(f"no time left to fetch {name} in this run", code="no-time")
    res = fetch_mailbox(c, name, deadline=deadline, max_messages=max_messages, clock=clock)
    if observe is not None:
        observe(res)
    if res.status == "failed" and res.transient:
        raise TransientError(res.error, code=res.error_code)
    if res.more and (res.fetched or res.skipped or res.vanished):
        c.fetch_queue.send({"server": name, "continue": True})
    return res
