"""What the fetcher keeps per server in the key-value store, and forgetting it."""

from __future__ import annotations

LEASE_PREFIX = "lease#"
CURSOR_PREFIX = "cursor#"
HEALTH_PREFIX = "health#"
SCHED_PREFIX = "sched#"
ATTEMPTS_PREFIX = "fetchattempts#"
SKIPPED_PREFIX = "fetchskip#"


def forget(c, server_name: str) -> None:
    """Drop what the fetcher keeps about a server (it was removed): a server added later under the
    same name starts with no cursor, health or schedule of its own."""
    for prefix in (CURSOR_PREFIX, HEALTH_PREFIX, SCHED_PREFIX, LEASE_PREFIX):
        c.kv.delete_item(prefix + server_name)
