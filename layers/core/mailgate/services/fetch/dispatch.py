"""The schedule's fan-out: one fetch request per enabled server that is due."""

from __future__ import annotations

import time

from .state import SCHED_PREFIX

#: the dispatcher's tolerance: a server due in less than this is dispatched now
DISPATCH_SLACK_SECONDS = 30


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
