"""What the fetcher keeps per server in the key-value store, and forgetting it."""

from __future__ import annotations

from typing import Any

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


def skipped(c, server_name: str = "") -> list[dict[str, Any]]:
    """The messages left on a server (or on every server) for good, each with why: over the size
    cap, or not returned by the server run after run. Oldest first."""
    prefix = SKIPPED_PREFIX + (f"{server_name}#" if server_name else "")
    out = []
    for key, value in c.kv.scan_prefix(prefix):
        server, _, ident = key[len(SKIPPED_PREFIX):].partition("#")
        out.append({"server": server, "message": ident, **{k: v for k, v in value.items() if k != "version"}})
    return sorted(out, key=lambda r: (float(r.get("at") or 0), r["server"], r["message"]))
