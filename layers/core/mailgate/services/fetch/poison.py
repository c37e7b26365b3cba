"""One fetched message routed, or kept as failed: one bad message never blocks a mailbox.

A message whose routing raises is kept with its error at once (a transient error is first
retried on the next runs, `MAX_INGEST_ATTEMPTS` in all). A message whose routing never finishes
(the worker is stopped while routing it: Lambda's timeout, a kill) raises nothing the worker
could catch, so the worker leaves a mark before routing it: after a run died with a chunk open
(`careful`), each message of that chunk gets an attempt item (`fetchattempts#<server>#<sha256>`)
written before its routing starts and deleted when it returns. A mark that is already there
means an earlier run started this message and died; at `MAX_INGEST_ATTEMPTS` the message is kept
as failed ("routing did not finish within N s") without being routed again. The ordinary run,
after no crash, writes no mark (no extra call per message).

Kept as failed means: a `MessageRecord` with key `fetch-failed:<sha256>`, outcome "failed", the
reason, and the raw message's key; the message is then acknowledged like any other (its raw
bytes are stored) and `mailgate replay` routes it again after a fix.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, NamedTuple

from ...domain import MessageRecord
from ...errors import TransientError
from ...ports import MailItem
from .health import FetchResult
from .state import ATTEMPTS_PREFIX

log = logging.getLogger(__name__)

#: a message whose routing failed transiently or did not finish this many times is kept as failed
MAX_INGEST_ATTEMPTS = 3
#: how long an attempt item is kept (a message fetched again a week later starts afresh)
ATTEMPTS_TTL_SECONDS = 7 * 86400

Ingest = Callable[..., Any]


class Stored(NamedTuple):
    """Where a fetched message is: its raw key, the SHA-256 of its bytes, the key routing reads."""

    key: str
    digest: str
    ingest_key: str
    #: the bytes at `ingest_key` when the worker holds them (routing need not read them back)
    raw: bytes | None = None


def route_one(c, server, item: MailItem, stored: Stored, ingest: Ingest, res: FetchResult, *, t: float,
              careful: bool, allowed: float, deadline: float | None = None) -> bool:
    """Route one stored message. True when it is done with (routed, or kept as failed); False to
    fetch and route it again next run (a transient failure). `allowed` is the time left to the
    worker's deadline (named in the reason when routing never finishes); `deadline` is the
    time.monotonic() time routing must stop by (inbound.ingest's own limit)."""
    attempts_key = f"{ATTEMPTS_PREFIX}{server.name}#{stored.digest}"
    started = 0
    if careful:
        prior = c.kv.get_item(attempts_key) or {}
        if int(prior.get("attempts") or 0) >= MAX_INGEST_ATTEMPTS:
            _keep_failed(c, server, item, stored, int(prior["attempts"]), t, reason=prior.get("reason") or
                         f"routing did not finish ({prior['attempts']} attempts)", code="unfinished")
            res.count_failed()
            return True
        # The run that died is the first attempt (it may have died in another message of the chunk).
        started = int(prior.get("attempts") or 1) + 1
        c.kv.put_item(attempts_key, {
            "attempts": started, "error": f"the worker was stopped while routing it ({allowed:.0f} s left)",
            "reason": f"routing did not finish within {allowed:.0f} s ({started} attempts)"},
            ttl_seconds=ATTEMPTS_TTL_SECONDS)
    try:
        record = ingest(c, stored.ingest_key, source=f"{server.protocol}:{server.name}",
                        envelope_recipients=[], deadline=deadline, raw=stored.raw)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, none blocks the mailbox
        return _failed(c, server, item, stored, exc, res, t, attempts_key, started)
    if started:
        c.kv.delete_item(attempts_key)
    res.ingested += 1
    res.count_outcome(str(getattr(record, "outcome", "") or "routed"))
    return True


def _failed(c, server, item: MailItem, stored: Stored, exc: Exception, res: FetchResult, t: float,
            attempts_key: str, started: int) -> bool:
    attempts = started or int((c.kv.get_item(attempts_key) or {}).get("attempts") or 0) + 1
    if isinstance(exc, TransientError) and attempts < MAX_INGEST_ATTEMPTS:
        c.kv.put_item(attempts_key, {"attempts": attempts, "error": str(exc)}, ttl_seconds=ATTEMPTS_TTL_SECONDS)
        res.notes.append(f"routing of {item.ident} failed ({exc}); retry {attempts}/"
                         f"{MAX_INGEST_ATTEMPTS} next run")
        return False
    _keep_failed(c, server, item, stored, attempts, t, reason=f"routing failed after {attempts} attempt(s): {exc}",
                 code=getattr(exc, "code", type(exc).__name__))
    res.count_failed()
    return True


def _keep_failed(c, server, item: MailItem, stored: Stored, attempts: int, t: float, *, reason: str,
                 code: str) -> None:
    """Keep the message with its error: it can be replayed after a fix, and is not fetched again."""
    record = MessageRecord(
        key=f"fetch-failed:{stored.digest}", raw_key=stored.key, direction="in",
        source=f"{server.protocol}:{server.name}", digest=stored.digest, outcome="failed",
        reason=reason, received_at=t,
        detail={"server": server.name, "ident": item.ident, "error_code": code, "attempts": attempts})
    if not c.messages.claim(record):
        c.messages.update(record)
    c.kv.delete_item(f"{ATTEMPTS_PREFIX}{server.name}#{stored.digest}")
    log.warning("fetch %s: message %s kept as failed: %s", server.name, item.ident, reason)
