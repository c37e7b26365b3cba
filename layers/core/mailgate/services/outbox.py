"""Carrying out effects (`mailgate.effects`): the transactional outbox's second half.

    run(c, owner, effects, source) -> remaining     # right after the write that recorded them
    finish(c, record) -> remaining                  # a retry: whatever the record still has pending
    sweep(c, *, older_than=..., limit=...) -> dict  # the schedule: every entry left pending

An outcome's effects are written as pending in the same write as the outcome (the inbound store's
`commit`, `Outbox.write` for outbound). `run` carries them out in order; each kind is a function
registered with `@kind(NAME)`. An effect that fails transiently (the bus or the queue
unreachable) stays pending with what follows it (order matters: the Message Outcome says whether
the polite answer went out); one that fails for good (refused, or a bug) is dropped and named in
the record's `detail["effects_error"]`, which `mailgate replay` redoes after a fix. Then the entry
is settled: removed when nothing is left.

A crash between the write and `run` leaves the entry whole: the retry of the same message
(`finish`, from the inbound path's "recorded before" branch, or outbound's next receive) or the
sweep carries it out. Effects carry stable ids, so a repeat (a crash after publishing but before
settling) can be dropped by whoever receives it: events carry `event_id`, queued requests their
idempotency key.

Adding an effect kind: a function `(c, effect, source) -> None` decorated with `@kind("name")` in
a module named in KIND_MODULES (so that the sweep, in a fresh process, knows it), and an
`Effect(kind="name", ...)` returned by the planner of the outcome that causes it (for inbound:
`services.inbound.plan_effects`). The commit path does not change.
"""

from __future__ import annotations

import importlib
import logging
import time
from functools import cached_property
from typing import Any, Callable

from .. import failpoints, jsonfit
from ..domain import MessageRecord, Thread
from ..effects import EVENT_SOURCE, Effect, owner_of, record_key_of
from ..errors import PermanentError, TransientError

log = logging.getLogger(__name__)

#: modules that register effect kinds (imported when a kind is not known yet, e.g. in the sweep)
KIND_MODULES = ("mailgate.services.inbound", "mailgate.services.outbound", "mailgate.services.delivery")
#: the sweep leaves alone what is younger than this: the invocation that wrote it may still be
#: publishing (the longest function timeout that writes effects is the inbound one, 120 s)
SWEEP_AFTER_SECONDS = 300
#: how long a sweep holds an entry it works on
CLAIM_SECONDS = 300

Publisher = Callable[[Any, Effect, "Source"], None]
_KINDS: dict[str, Publisher] = {}


def kind(name: str) -> Callable[[Publisher], Publisher]:
    """Register how effects of kind `name` are carried out."""
    def register(fn: Publisher) -> Publisher:
        _KINDS[name] = fn
        return fn
    return register


def _publisher(name: str) -> Publisher:
    if name not in _KINDS:
        for module in KIND_MODULES:
            importlib.import_module(module)
    try:
        return _KINDS[name]
    except KeyError:
        raise PermanentError(f"no effect kind {name!r} in this version", code="unknown-effect") from None


class Source:
    """What an effect is about: the record, and the raw message parsed (read again from the raw
    store, when the process that routed it is gone) and the record's thread, on first use."""

    def __init__(self, c, record: MessageRecord, *, parsed=None, thread: Thread | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        self.c, self.record = c, record
        if parsed is not None:
            self.__dict__["parsed"] = parsed
        if thread is not None:
            self.__dict__["thread"] = thread
        #: what the first run knows and a retry reads again (the route, say): never required
        self.extra = dict(extra or {})

    @cached_property
    def parsed(self):
        from .. import message as message_mod

        return message_mod.parse(self.c.raw_store.get(self.record.raw_key))

    @cached_property
    def thread(self) -> Thread | None:
        return self.c.threads.get_thread(self.record.thread_id) if self.record.thread_id else None


# --- publishing helpers the kinds share ---------------------------------------------------------


def publish_event(c, effect: Effect, detail_type: str, detail: dict[str, Any], *,
                  flag: tuple[str, ...] = ()) -> dict[str, Any]:
    """Publish `detail` with the effect's id as `event_id`, cut to fit EventBridge's entry limit
    in bytes of the JSON sent; the boolean at the path `flag` (("truncated",), say) is set when
    something was cut (`true` takes less room than `false`)."""
    overhead = len(detail_type.encode()) + len(EVENT_SOURCE.encode())
    detail, cut = jsonfit.fit({**detail, "event_id": effect.id}, jsonfit.EVENT_ENTRY_BYTES - overhead)
    if cut and flag:
        inner = detail
        for key in flag[:-1]:
            inner = inner.get(key) if isinstance(inner, dict) else None
        if isinstance(inner, dict) and flag[-1] in inner:
            inner[flag[-1]] = True
    c.events.publish(detail_type, detail)
    return detail


# --- running ----------------------------------------------------------------------------------


def run(c, owner: str, effects: list[Effect], source: Source) -> list[Effect]:
    """Carry out `effects` in order, settle the entry; the effects still pending (a transient
    failure stopped the run: the caller may raise for a retry, or leave them to the sweep)."""
    if not effects:
        return []
    remaining: list[Effect] = []
    failed: list[str] = []
    for i, effect in enumerate(effects):
        try:
            _publisher(effect.kind)(c, effect, source)
        except TransientError as exc:
            effect.attempts, effect.error = effect.attempts + 1, f"{exc}"[:300]
            remaining = effects[i:]
            break
        except Exception as exc:  # noqa: BLE001 - refused for good, or a bug: never retried for ever
            log.exception("effect %s (%s) failed", effect.id, effect.kind)
            failed.append(f"{effect.kind} {effect.id}: {type(exc).__name__}: {exc}"[:300])
    failpoints.hit("outbox.before-settle")
    c.outbox.settle(owner, remaining)
    _note(c, source.record, failed, remaining)
    return remaining


def _note(c, record: MessageRecord, failed: list[str], remaining: list[Effect]) -> None:
    """The record says which effects failed (for `mailgate messages show` and replay), and stops
    saying so once they are done."""
    said = record.detail.get("effects_error")
    now = "; ".join(failed + [f"pending: {e.kind} {e.id}: {e.error}" for e in remaining[:1]])[:1000]
    if now == (said or ""):
        return
    if now:
        record.detail["effects_error"] = now
    else:
        record.detail.pop("effects_error", None)
    c.messages.update(record)


def finish(c, record: MessageRecord, owner: str | None = None) -> list[Effect]:
    """Carry out what the record's outcome (`owner`; by default its version's) still has pending
    (a retry of the same message), unless someone holds the entry: the invocation that wrote it
    (until its end) or a sweep. Nothing pending costs one conditional write that fails."""
    owner = owner or owner_of(record.key, record.version)
    if not c.outbox.claim(owner, seconds=CLAIM_SECONDS):
        return []
    return run(c, owner, c.outbox.pending(owner), Source(c, record))


def sweep(c, *, older_than: float = SWEEP_AFTER_SECONDS, limit: int = 100,
          deadline: float | None = None) -> dict[str, int]:
    """Carry out the effects left pending for more than `older_than` seconds (the scheduled
    sweep), oldest first, each entry claimed so that two sweeps do not run it together.
    `deadline` is a time.monotonic() time after which no new entry is started."""
    counts = {"entries": 0, "done": 0, "pending": 0, "skipped": 0}
    for owner in c.outbox.due(older_than=older_than, limit=limit):
        if deadline is not None and time.monotonic() >= deadline:
            break
        if not c.outbox.claim(owner, seconds=CLAIM_SECONDS):
            counts["skipped"] += 1
            continue
        counts["entries"] += 1
        pending = c.outbox.pending(owner)
        record = c.messages.get(record_key_of(owner))
        if record is None:  # the record is gone (removed by hand): nothing to say anything about
            log.warning("outbox entry %s has no record; dropped", owner)
            c.outbox.settle(owner, [])
            continue
        try:
            left = run(c, owner, pending, Source(c, record))
        except TransientError:  # the store itself: the next sweep tries again
            log.warning("sweeping %s failed; left for the next sweep", owner, exc_info=True)
            left = pending
        counts["done"] += len(pending) - len(left)
        counts["pending"] += len(left)
    return counts
