"""Effects: what an outcome causes outside the ledger (an event on the bus, a message on a queue),
as plain values.

An effect is written as *pending* in the same write as the outcome that causes it (a transactional
outbox: the inbound store's `commit`, `Outbox.write` for outbound), carried out after that write,
and then marked done (`Outbox.settle`). A crash between the write and the publish leaves it
pending, and a retry or the sweep (`mailgate.services.outbox`) carries it out later. Its `id` is
stable across those retries: events carry it as `event_id` and queued requests as their
idempotency key, so whoever receives a repeat can drop it.

Effects hold only what is small and decided when the outcome is recorded (a detail-type, an
address); large payloads (the text of the message) are built again from the record and the raw
message when the effect is carried out, so an outbox entry stays far below DynamoDB's 400 KB.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: the source of every event the gateway publishes on the application's bus
EVENT_SOURCE = "mailgate"
#: the writer of an outbox entry holds it this long when it has no deadline of its own (a replay
#: from the command line), so that a concurrent retry does not carry out the same effects
HOLD_SECONDS = 60


@dataclass
class Effect:
    #: stable across retries, replays excepted (a replay's outcome is news): "<owner>:<name>"
    id: str
    #: what carries it out (`services.outbox` looks the kind up): "event", "send", ...
    kind: str
    #: what the kind needs besides the record and the raw message (small JSON values)
    args: dict[str, Any] = field(default_factory=dict)
    #: how many runs tried it and failed, and the last failure
    attempts: int = 0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Effect:
        return cls(id=str(data["id"]), kind=str(data["kind"]), args=dict(data.get("args") or {}),
                   attempts=int(data.get("attempts") or 0), error=str(data.get("error") or ""))


def owner_of(record_key: str, version: int | str) -> str:
    """The outbox entry of one recorded outcome: a record's key and which outcome of it (an
    inbound record's version: a replay records a new outcome, whose effects are its own; an
    outbound record's attempt)."""
    return f"{record_key}#{version}"


def record_key_of(owner: str) -> str:
    return owner.rpartition("#")[0] or owner
