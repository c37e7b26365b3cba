"""The daily DNS check of every alias domain (EventBridge schedule -> this service).

The last verdict of each domain is kept in the key-value store under "dnscheck#<domain>"; when a
record that was ok is now warn or error, a "DNS Check Changed" event says which, what was found
and the fix. A first check only records the state (there is no "before" to compare with).
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from ..dnsadvice import ERROR, OK, Report, check_domain, plan_for

log = logging.getLogger(__name__)

EVENT = "DNS Check Changed"
KEY_PREFIX = "dnscheck#"
_RANK = {OK: 0, "warn": 1, ERROR: 2}


def state_of(report: Report) -> dict[str, str]:
    """The worst status per (record, DNS name): the unit a change is reported on."""
    state: dict[str, str] = {}
    for f in report.findings:
        key = f"{f.record} {f.name}"
        if _RANK[f.status] >= _RANK[state.get(key, OK)]:
            state[key] = f.status
    return state


def run_daily(c, *, now: Callable[[], float] = time.time) -> list[dict]:
    """Check every alias domain in c.config with a fresh resolver from `c.resolvers` (deployed: the
    system's nameservers); returns one summary per domain:
    {"domain", "status", "queries", "changed": [...], "published": bool} (or "error" when the
    domain could not be checked at all, e.g. an unreadable DKIM key)."""
    results = []
    for domain in c.config.list_domains():
        try:
            plan = plan_for(c, domain.name, inbound=domain.inbound, dmarc_rua=domain.dmarc_rua or None)
            report = check_domain(plan, c.resolvers())  # a fresh resolver: no stale cache across days
        except Exception as exc:  # one broken domain must not stop the others' checks
            log.exception("dns check of %s failed", domain.name)
            results.append({"domain": domain.name, "status": ERROR, "error": f"{type(exc).__name__}: {exc}",
                            "changed": [], "published": False})
            continue
        results.append(record_result(c, report, now=now()))
    return results


def record_result(c, report: Report, *, now: float) -> dict:
    """Store the verdict; publish DNS Check Changed for records that went from ok to warn/error."""
    key = KEY_PREFIX + report.domain
    previous = c.kv.get_item(key) or {}
    before: dict[str, str] = previous.get("records", {})
    after = state_of(report)
    changed = []
    for name, status in after.items():
        if before.get(name) == OK and status != OK:
            record, _, dns_name = name.partition(" ")
            worst = [f for f in report.findings if f.record == record and f.name == dns_name and f.status == status][0]
            changed.append({"record": record, "name": dns_name, "from": OK, "to": status,
                            "found": worst.found, "expected": worst.expected, "fix": worst.fix})
    c.kv.put_item(key, {"domain": report.domain, "status": report.status, "records": after,
                        "checked_at": now, "queries": report.queries})
    if changed:
        c.events.publish(EVENT, {"domain": report.domain, "status": report.status,
                                 "previous_status": previous.get("status"), "changed": changed,
                                 "checked_at": now})
    return {"domain": report.domain, "status": report.status, "queries": report.queries,
            "changed": changed, "published": bool(changed)}
