"""What the inbound path reads and writes, as plain values: the keys it looks up, the snapshot a
store answers them with, and the keys of the items it writes.

Routing (`routing.decide`) reads a `Snapshot`; the inbound store (`ports.InboundStore`, with a
DynamoDB adapter and an in-memory fake) builds one from `LookupKeys` in one batched read and
commits a route in one write. Both sides spell the keys with the builders here.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Callable

from .domain import Alias, AliasDomain, Thread

if TYPE_CHECKING:  # annotations only: the parser is not needed to spell a key
    from .message import ParsedMessage

#: Alias domains are few and change rarely: a warm container reads them once a minute.
DOMAIN_CACHE_SECONDS = 60


def contact_key(address: str) -> str:
    """kv key of a known sender (Odoo's partner): written when someone starts a thread."""
    return f"contact#{address.strip().lower()}"


def loop_counter_key(sender: str, target: str) -> str:
    """Counter of the mail `sender` sent to the alias address `target` (loop protection)."""
    return f"loop#{sender.lower()}#{target.lower()}"


def message_key(parsed: ParsedMessage) -> str:
    """The ledger's idempotency key: the Message-ID when there is one, else the raw digest."""
    if parsed.message_id:
        return "in:mid:" + hashlib.sha256(parsed.message_id.encode("utf-8", "replace")).hexdigest()[:40]
    return "in:raw:" + parsed.digest[:40]


@dataclass(frozen=True)
class LookupKeys:
    """Everything `routing.decide` may read, known before reading anything (one batch read)."""

    domains: list[str]
    aliases: list[tuple[str, str]]
    thread_ids: list[str]
    message_ids: list[str]
    counter_keys: list[str]
    contacts: list[str]


@dataclass
class Snapshot:
    """A `routing.RoutingView` answered from what a store's `load` read (no calls while deciding).

    `bounce_state` says, per contact address, whether the read found a bounce score or a soft
    suppression to reset (None: the store did not look, so the caller must)."""

    domains: dict[str, AliasDomain]
    aliases: dict[tuple[str, str], Alias] = field(default_factory=dict)
    threads: dict[str, Thread] = field(default_factory=dict)
    index: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    known_senders: set[str] = field(default_factory=set)
    gateway_domain: str = ""
    bounce_state: dict[str, bool] | None = None

    def domain(self, name: str) -> AliasDomain | None:
        return self.domains.get(name.lower())

    def own_domains(self) -> frozenset[str]:
        return _own_domains(frozenset(self.domains), self.gateway_domain.lower())

    def alias(self, domain: str, name: str) -> Alias | None:
        return self.aliases.get((domain.lower(), name.lower()))

    def thread(self, thread_id: str) -> Thread | None:
        return self.threads.get(thread_id)

    def threads_for_message_ids(self, message_ids: list[str]) -> dict[str, str]:
        return {m: self.index[m] for m in message_ids if m in self.index}

    def is_known_sender(self, address: str) -> bool:
        return address.lower() in self.known_senders

    def count(self, key: str) -> int:
        return self.counts.get(key, 0)

    def may_have_bounce_state(self, address: str) -> bool:
        """False only when the read looked and found nothing to reset for `address`."""
        if self.bounce_state is None:
            return True
        return self.bounce_state.get(address.lower(), True)


@lru_cache(maxsize=64)
def _own_domains(domains: frozenset[str], gateway: str) -> frozenset[str]:
    return domains | {gateway} if gateway else domains


class DomainCache:
    """The alias domains by lower-case name, read through `list_domains` at most once per `ttl`
    seconds (per warm container)."""

    def __init__(self, list_domains: Callable[[], list[AliasDomain]], *, ttl: float = DOMAIN_CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.list_domains, self.ttl, self.clock = list_domains, ttl, clock
        self._read: tuple[float, dict[str, AliasDomain]] | None = None

    def __call__(self) -> dict[str, AliasDomain]:
        now = self.clock()
        if self._read is None or now - self._read[0] > self.ttl:
            self._read = (now, {d.name.lower(): d for d in self.list_domains()})
        return self._read[1]
