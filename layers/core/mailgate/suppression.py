"""The suppression list: addresses the outbound path must not mail, per sending domain.

Entries live in the key-value port under `supp#<domain>#<address>` (address lower-cased), value
`{"address", "domain", "reason", "source", "since"}`, and `by` (its key) for one that a counted
bounce or complaint made. `mailgate.bounce_policy` counts bounces and complaints and suppresses
through this module; the outbound path only asks `is_suppressed`.
"""

from __future__ import annotations

import time
from typing import Any

from .ports import KeyValueRepository

PREFIX = "supp#"


def _key(domain: str, address: str) -> str:
    return f"{PREFIX}{domain.lower()}#{address.strip().lower()}"


def is_suppressed(kv: KeyValueRepository, domain: str, address: str) -> dict[str, Any] | None:
    """The suppression entry for `address` when sending from `domain`, else None."""
    return kv.get_item(_key(domain, address))


def suppress(kv: KeyValueRepository, domain: str, address: str, reason: str, *, source: str = "manual",
             by: str = "") -> None:
    """`by` names the bounce or complaint that made the entry (`mailgate.bounce_policy`)."""
    entry = {"address": address.strip().lower(), "domain": domain.lower(), "reason": reason,
             "source": source, "since": time.time()}
    if by:
        entry["by"] = by
    kv.put_item(_key(domain, address), entry)


def unsuppress(kv: KeyValueRepository, domain: str, address: str) -> bool:
    existed = kv.get_item(_key(domain, address)) is not None
    kv.delete_item(_key(domain, address))
    return existed


def list_suppressed(kv: KeyValueRepository, domain: str | None = None) -> list[dict[str, Any]]:
    prefix = PREFIX + (f"{domain.lower()}#" if domain else "")
    return [value for _, value in kv.scan_prefix(prefix)]
