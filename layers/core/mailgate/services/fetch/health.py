"""What a run did, and each server's health: its last success, its run of failures, and the
disabling of a server that has failed for days (with an event that names the fix)."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .state import HEALTH_PREFIX

log = logging.getLogger(__name__)

#: a server failing for this long is disabled and reported
DISABLE_AFTER_SECONDS = 5 * 24 * 3600

DETAIL_SERVER_DISABLED = "Fetch Server Disabled"

#: error codes (the mailbox adapters' and the worker's) in words, for `mailgate fetch status`
ERROR_WORDS = {
    "auth-failed": "authentication failed",
    "tls-untrusted": "certificate not trusted",
    "tls-failed": "TLS failed",
    "plaintext-refused": "plaintext refused",
    "folder-missing": "folder not found",
    "server-busy": "server busy",
    "unreachable": "host unreachable",
    "timeout": "timed out",
    "connection-lost": "connection lost",
    "too-large": "message too large",
    "ack-failed": "acknowledgement failed",
    "lease-lost": "lease lost",
    "protocol": "server refused a command",
    "config": "configuration",
    "internal": "internal error",
}


@dataclass
class FetchResult:
    """What one run did, in words a person can read (also the CLI's --json output)."""

    server: str
    status: str = "ok"  # ok | busy | failed | disabled | not-found
    fetched: int = 0  # messages read from the server
    stored: int = 0  # raw messages newly written to the store
    duplicates: int = 0  # already in the store (a retry after a crash, a UIDVALIDITY reset)
    ingested: int = 0  # handed to routing successfully
    failed: int = 0  # routing failed: kept with the error, not fetched again
    skipped: int = 0  # over the size cap, or not returned run after run: left on the server, recorded
    vanished: int = 0  # deleted on the server between listing and fetching (the server confirms it)
    missing: int = 0  # listed but not returned (RETR -ERR, left out of UID FETCH): fetched again next run
    acked: int = 0
    more: bool = False  # stopped by the time budget or the message cap: carries on next run
    uidvalidity_reset: bool = False
    #: seconds since the mailbox's previous successful fetch, as this run ends (how long new mail
    #: may have waited); 0 on a first success
    lag_seconds: float = 0.0
    #: seconds the mailbox has been failing when this run failed too (0 when it worked)
    failing_seconds: float = 0.0
    #: routed messages per outcome ("new-record": 3, "thread": 1, "failed": 1...)
    outcomes: dict[str, int] = field(default_factory=dict)
    error: str = ""
    error_code: str = ""
    transient: bool = False
    notes: list[str] = field(default_factory=list)

    def count_outcome(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def count_failed(self) -> None:
        """A message kept as failed (routing raised, or never finished)."""
        self.failed += 1
        self.count_outcome("failed")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def health(c, server_name: str) -> dict[str, Any]:
    return c.kv.get_item(HEALTH_PREFIX + server_name) or {}


def record_success(c, server, res: FetchResult, t: float) -> None:
    key = HEALTH_PREFIX + server.name
    h = c.kv.get_item(key) or {}
    res.lag_seconds = t - float(h["last_success"]) if h.get("last_success") else 0.0
    h.update(last_run=t, last_success=t, consecutive_failures=0, failing_since=None,
             last_result={k: v for k, v in res.to_dict().items() if k not in ("notes",)})
    if res.failed:
        h["failed_messages"] = int(h.get("failed_messages") or 0) + res.failed
    if res.skipped:
        h["skipped_messages"] = int(h.get("skipped_messages") or 0) + res.skipped
    h.pop("version", None)
    c.kv.put_item(key, h)


def reset_failures(c, server_name: str) -> None:
    """Forget a server's run of failures (it was fixed and enabled again by a person)."""
    key = HEALTH_PREFIX + server_name
    h = c.kv.get_item(key)
    if not h:
        return
    h.update(consecutive_failures=0, failing_since=None)
    h.pop("disabled_at", None)
    h.pop("version", None)
    c.kv.put_item(key, h)


def record_failure(c, server, res: FetchResult, t: float) -> None:
    key = HEALTH_PREFIX + server.name
    h = c.kv.get_item(key) or {}
    since = h.get("failing_since") or t
    res.failing_seconds = t - float(since)
    res.lag_seconds = t - float(h.get("last_success") or since)
    words = ERROR_WORDS.get(res.error_code, res.error_code)
    h.update(last_run=t, last_error=f"{words}: {res.error}", last_error_code=res.error_code,
             last_error_at=t, consecutive_failures=int(h.get("consecutive_failures") or 0) + 1,
             failing_since=since)
    h.pop("version", None)
    if t - float(since) >= DISABLE_AFTER_SECONDS:
        c.config.put_incoming(replace(server, enabled=False))
        h["disabled_at"] = t
        detail = {"server": server.name, "failing_since": since, "consecutive_failures":
                  h["consecutive_failures"], "last_error": h["last_error"],
                  "last_error_code": res.error_code,
                  "fix": f"fix the cause, check with `mailgate server test {server.name}`, then "
                         f"`mailgate server enable {server.name}`"}
        c.events.publish(DETAIL_SERVER_DISABLED, detail)
        res.notes.append("server failed for 5 days and is now disabled")
        log.error("fetch %s disabled after failing since %s: %s", server.name, since, h["last_error"])
    c.kv.put_item(key, h)
