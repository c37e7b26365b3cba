"""One worker per mailbox: a lease item, taken with a conditional write, that outlives its
worker's deadline by a margin (then a new worker may take over)."""

from __future__ import annotations

from ...domain import new_id
from .state import LEASE_PREFIX

#: the lease outlives the worker's deadline by this much
LEASE_MARGIN_SECONDS = 60


def acquire_lease(c, name: str, *, ttl: float, now: float) -> dict | None:
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


def release_lease(c, name: str, lease: dict) -> None:
    key = LEASE_PREFIX + name
    current = c.kv.get_item(key)
    if current and current.get("owner") == lease["owner"]:
        c.kv.delete_item(key)
