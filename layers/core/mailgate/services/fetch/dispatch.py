"""The schedule's fan-out: one fetch request per enabled server that is due.

The configuration keeps a schedule index beside the servers (`ConfigRepository.put_incoming`
writes both): a run reads only the entries that are due, moves each to its next time with a
conditional write (two overlapping runs queue a server once), and queues the jobs ten to a
request. Its cost grows with the servers due, not with the servers configured (bench/scale.py).
"""

from __future__ import annotations

import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from ...domain import FetchSchedule
from ...errors import TransientError

#: the dispatcher's tolerance: a server due in less than this is dispatched now
DISPATCH_SLACK_SECONDS = 30
#: schedule entries moved at once (conditional writes wait on the network, not on the CPU)
CLAIM_CONCURRENCY = 16
#: jobs per send_many call (ten SendMessageBatch requests), those calls made in parallel too
QUEUE_CHUNK = 100
#: written once the servers saved before the schedule index existed have their entries
INDEX_MARKER = "fetchsched#index-v1"

#: the stores whose index this process has checked: the objects themselves, weakly (an id() of a
#: collected store comes back for a new one)
_index_checked: weakref.WeakSet = weakref.WeakSet()


def dispatch(c, now: float | None = None) -> int:
    """Put one fetch request on the queue per enabled server that is due; returns how many."""
    now = time.time() if now is None else now
    _ensure_index(c)
    claimed = _claim(c, c.config.due_incoming(now + DISPATCH_SLACK_SECONDS), now)
    if not claimed:
        return 0
    failed = _queue(c, [{"server": e.name} for e, _ in claimed])
    if failed:
        # Due again at once, so that the retry of this run (or the next one) queues them.
        _run_all(lambda pair: c.config.reschedule_incoming(replace(pair[0], due=pair[1]), pair[0].due),
                 [claimed[i] for i in failed])
        raise TransientError(f"{len(failed)} of {len(claimed)} fetch jobs could not be queued",
                             code="aws-transient")
    return len(claimed)


def _claim(c, due: list[FetchSchedule], now: float) -> list[tuple[FetchSchedule, float]]:
    """Move each due entry to its next time; the ones this run moved (another run took the rest)."""
    def claim(entry: FetchSchedule):
        following = now + max(1, int(entry.interval_minutes or 5)) * 60
        return (entry, following) if c.config.reschedule_incoming(entry, following) else None

    return [pair for pair in _run_all(claim, due) if pair is not None]


def _queue(c, jobs: list[dict]) -> list[int]:
    """Queue every job, QUEUE_CHUNK to a call, the calls in parallel; the indexes not queued."""
    chunks = [(start, jobs[start:start + QUEUE_CHUNK]) for start in range(0, len(jobs), QUEUE_CHUNK)]
    failed = _run_all(lambda chunk: [chunk[0] + i for i in c.fetch_queue.send_many(chunk[1])], chunks)
    return [i for part in failed for i in part]


def _run_all(fn, items: list) -> list:
    """fn over every item, CLAIM_CONCURRENCY threads each taking a slice in order (one task per
    thread, not per item: a future per item costs more CPU than the write it waits for)."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    threads = min(CLAIM_CONCURRENCY, len(items))
    slices = [items[k::threads] for k in range(threads)]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        done = list(pool.map(lambda part: [fn(i) for i in part], slices))
    out = [None] * len(items)
    for k, part in enumerate(done):
        out[k::threads] = part
    return out


def _ensure_index(c) -> None:
    """Servers saved before the schedule index existed get their entry (once per store; checked
    once per process): saving a server again writes it, due at once."""
    if c.kv in _index_checked:
        return
    if c.kv.get_item(INDEX_MARKER) is None:
        # in parallel, as the claims are: one after another, 10,000 servers would outlast the
        # dispatcher's 60 s, every run, and the marker would never be written
        _run_all(c.config.put_incoming, c.config.list_incoming())
        c.kv.put_item(INDEX_MARKER, {"at": time.time()})
    _index_checked.add(c.kv)


def servers_disabled(c) -> int:
    """How many incoming servers are disabled (the dispatcher reports it on every run)."""
    return c.config.count_disabled_incoming()
