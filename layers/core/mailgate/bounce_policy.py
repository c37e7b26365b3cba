"""Bounce counting and suppression, on top of `mailgate.suppression`.

- A hard bounce (the address is dead: no such user or domain) or a complaint suppresses the
  address for the sending domain at once.
- Soft bounces are scored and suppress once the score reaches a threshold within a window.
  Discourse scores a soft bounce 1 and a hard one 2 against a threshold of 4; Odoo's mass mailing
  stops after 5 bounces; both forget after a while (Odoo looks back 13 weeks). The numbers are
  parameters (`BouncePolicy`).
- Mail received *from* an address resets its score (Odoo's `_routing_reset_bounce`): the mailbox
  is alive. A suppression that came from the score alone is lifted with it; suppressions for a
  hard bounce, a complaint or by hand stay until removed with `mailgate suppression remove`.

Suppressions made by the score are indexed under `bsoft#<address>#<domain>` (so mail from the
address finds them without scanning the list). The score lives under `bscore#<address>#<domain>`, value
`{"events": [[time, points, reason, key], ...], "version": n}`, written with a version check so that
two bounces processed at once do not lose each other, and with a TTL of one window.

A bounce or complaint counted with a `key` (the feedback service names each one) is counted once:
counting it again, a retry after the process died between counting and publishing its event,
adds nothing and returns what the first count did. The score event carries the key, and a
suppression it made carries it as `by`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from . import suppression
from .ports import KeyValueRepository

SCORE_PREFIX = "bscore#"
SOFT_PREFIX = "bsoft#"


@dataclass(frozen=True)
class BouncePolicy:
    soft_points: int = 1
    hard_points: int = 2
    threshold: int = 4
    window_seconds: int = 13 * 7 * 24 * 3600
    #: False gives Discourse's behaviour: hard bounces only score (2 points), no instant suppression
    hard_suppresses: bool = True
    complaint_suppresses: bool = True
    #: a flood of bounces for one address keeps only the newest this many events
    max_events: int = 50


DEFAULT_POLICY = BouncePolicy()


def _score_key(address: str, domain: str) -> str:
    return f"{SCORE_PREFIX}{address.strip().lower()}#{domain.strip().lower()}"


def _live_events(value: dict[str, Any] | None, now: float, policy: BouncePolicy) -> list[list[Any]]:
    events = (value or {}).get("events") or []
    return [e for e in events if isinstance(e, list) and len(e) >= 2 and now - float(e[0]) < policy.window_seconds]


def score(kv: KeyValueRepository, domain: str, address: str, *, policy: BouncePolicy = DEFAULT_POLICY,
          now: float | None = None) -> int:
    """The address's bounce score for `domain` within the policy window."""
    now = time.time() if now is None else now
    return sum(int(e[1]) for e in _live_events(kv.get_item(_score_key(address, domain)), now, policy))


def record_bounce(kv: KeyValueRepository, domain: str, address: str, *, permanent: bool, reason: str = "",
                  status: str = "", source: str = "bounce", policy: BouncePolicy = DEFAULT_POLICY,
                  now: float | None = None, key: str = "") -> dict[str, Any]:
    """Count one bounce of `address` (sent from `domain`) and suppress it when the policy says so;
    once per `key` (above).

    Returns {"address", "domain", "score", "suppressed", "newly_suppressed", "why"}.
    """
    now = time.time() if now is None else now
    address, domain = address.strip().lower(), domain.strip().lower()
    points = policy.hard_points if permanent else policy.soft_points
    total = _add_points(kv, domain, address, points, reason or status, now, policy, key)
    existing = suppression.is_suppressed(kv, domain, address)
    why = ""
    if existing is not None and key and existing.get("by") == key:
        why = str(existing.get("reason") or "")  # this bounce suppressed it, before a crash
    elif existing is None:
        if permanent and policy.hard_suppresses:
            why = f"hard bounce ({status or reason or 'permanent failure'})"
            suppression.suppress(kv, domain, address, why, source="hard-bounce", by=key)
        elif total >= policy.threshold:
            why = f"bounce score {total} reached {policy.threshold} within {policy.window_seconds // 86400} days"
            # An index by address, so that mail from it can lift this without scanning the list;
            # written first, so that a suppression (which a retry takes as done) always has it.
            kv.put_item(f"{SOFT_PREFIX}{address}#{domain}", {"address": address, "domain": domain})
            suppression.suppress(kv, domain, address, why, source="soft-bounces", by=key)
    return {"address": address, "domain": domain, "score": total,
            "suppressed": existing is not None or bool(why), "newly_suppressed": bool(why),
            "why": why or (existing or {}).get("reason", "")}


def record_complaint(kv: KeyValueRepository, domain: str, address: str, *, feedback_type: str = "abuse",
                     policy: BouncePolicy = DEFAULT_POLICY, key: str = "") -> dict[str, Any]:
    """A recipient said "this is spam" (RFC 5965 / SES complaint): stop mailing them from `domain`."""
    address, domain = address.strip().lower(), domain.strip().lower()
    existing = suppression.is_suppressed(kv, domain, address)
    why = ""
    if existing is not None and key and existing.get("by") == key:
        why = str(existing.get("reason") or "")  # this complaint suppressed it, before a crash
    elif existing is None and policy.complaint_suppresses:
        why = f"complaint ({feedback_type or 'abuse'})"
        suppression.suppress(kv, domain, address, why, source="complaint", by=key)
    return {"address": address, "domain": domain, "suppressed": existing is not None or bool(why),
            "newly_suppressed": bool(why), "why": why or (existing or {}).get("reason", "")}


def _add_points(kv: KeyValueRepository, domain: str, address: str, points: int, note: str, now: float,
                policy: BouncePolicy, key: str = "") -> int:
    """The score right after this bounce is counted (once per `key`)."""
    k = _score_key(address, domain)
    for _ in range(8):  # optimistic concurrency: retry when another writer got in first
        current = kv.get_item(k)
        version = int((current or {}).get("version", 0))
        events = _live_events(current, now, policy)
        counted = _score_after(events, key)
        if counted is not None:
            return counted
        events.append([now, points, note[:80]] + ([key] if key else []))
        events = events[-policy.max_events:]
        value = {"address": address, "domain": domain, "events": events, "version": version + 1}
        if kv.put_item(k, value, ttl_seconds=policy.window_seconds,
                       if_version=version if current is not None else None,
                       if_absent=current is None):
            return sum(int(e[1]) for e in events)
    # Heavy contention on one address (a flood): the score is at least what we saw.
    return sum(int(e[1]) for e in _live_events(kv.get_item(k), now, policy)) + points


def _score_after(events: list[list[Any]], key: str) -> int | None:
    """The score right after the event counted under `key`, None when there is none."""
    total = 0
    for e in events:
        total += int(e[1])
        if key and len(e) > 3 and e[3] == key:
            return total
    return None


def note_inbound_from(c_or_kv: Any, address: str, domain: str | None = None) -> dict[str, Any]:
    """Mail came in from `address`: it is alive, so forget its bounce score (Odoo's rule).

    Accepts a Container or a KeyValueRepository. Lifts suppressions that came from the score
    alone ("soft-bounces"); keeps hard-bounce, complaint and manual ones. Returns what it did.
    """
    kv = getattr(c_or_kv, "kv", c_or_kv)
    address = (address or "").strip().lower()
    if "@" not in address:
        return {"address": address, "reset": [], "unsuppressed": []}
    prefix = f"{SCORE_PREFIX}{address}#"
    reset, lifted = [], []
    for key, value in kv.scan_prefix(prefix):
        d = str(value.get("domain") or key[len(prefix):])
        if domain and d != domain.lower():
            continue
        kv.delete_item(key)
        reset.append(d)
    soft_prefix = f"{SOFT_PREFIX}{address}#"
    for key, value in kv.scan_prefix(soft_prefix):
        d = str(value.get("domain") or key[len(soft_prefix):])
        if domain and d != domain.lower():
            continue
        kv.delete_item(key)
        entry = suppression.is_suppressed(kv, d, address)
        if entry is not None and entry.get("source") == "soft-bounces":
            suppression.unsuppress(kv, d, address)
            lifted.append(d)
    return {"address": address, "reset": sorted(reset), "unsuppressed": sorted(lifted)}
