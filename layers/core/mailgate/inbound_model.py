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
from typing import TYPE_CHECKING, Any, Callable

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


#: The header fields the author's system writes once and relays leave alone (RFC 5322 §3.6:
#: originator, destination, identification and informational fields). Everything else differs
#: between two copies of one message: trace fields (Received, Return-Path: RFC 5321 §4.4),
#: Delivered-To, Authentication-Results, signatures and X- fields added on the way.
ORIGIN_FIELDS = frozenset((b"from", b"sender", b"reply-to", b"to", b"cc", b"date", b"subject",
                           b"message-id", b"in-reply-to", b"references"))
_CHUNK = 1 << 20


def attempt_key(raw_key: str) -> str:
    """Key of the marker that says the raw message at `raw_key` is being routed."""
    return hashlib.sha256(raw_key.encode("utf-8", "replace")).hexdigest()[:40]


def message_key(raw: bytes) -> str:
    """The ledger's idempotency key: SHA-256 of the origin fields (Message-ID among them) and the
    body, so that the copies of one message merge (SES's duplicate deliveries, retries, the same
    message through SES and a fetch: their trace fields and line ends differ) and a stranger who
    sends a message with the same Message-ID first makes another key (docs/security.md)."""
    h = hashlib.sha256(b"mailgate-inbound-key-2\n")
    start = _body_start(raw)
    for name, value in sorted(_origin_fields(raw, start)):
        h.update(name + b":" + value + b"\n")
    h.update(b"\n")
    _hash_body(h, raw, start)
    return "in:msg:" + h.hexdigest()[:40]


def previous_message_key(parsed: ParsedMessage) -> str:
    """The key records had before `message_key` (the Message-ID alone, else the raw digest): only
    to find those records; one counts as this message only with the same raw digest."""
    if parsed.message_id:
        return "in:mid:" + hashlib.sha256(parsed.message_id.encode("utf-8", "replace")).hexdigest()[:40]
    return "in:raw:" + parsed.digest[:40]


def _body_start(raw: bytes) -> int:
    """Where the body starts: after the first empty line (CRLF or LF), else the end."""
    lf = raw.find(b"\n\n")
    crlf = raw.find(b"\n\r\n", 0, lf if lf >= 0 else len(raw))  # never past the first LF LF
    if crlf >= 0:
        return crlf + 3
    return lf + 2 if lf >= 0 else len(raw)


def _origin_fields(raw: bytes, start: int) -> list[tuple[bytes, bytes]]:
    """(lower-case name, value with white space runs made one space) of each origin field, in the
    order read; unfolded (RFC 5322 §2.2.3), so that a relay folding a line differently changes nothing."""
    fields: list[tuple[bytes, list[bytes]]] = []
    current: list[bytes] | None = None
    for line in raw[:start].split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        name, colon, value = line.partition(b":")
        name = name.strip().lower()
        current = [value] if colon and name in ORIGIN_FIELDS else None
        if current is not None:
            fields.append((name, current))
    return [(name, b" ".join(b" ".join(parts).split())) for name, parts in fields]


def _hash_body(h, raw: bytes, start: int) -> None:
    """The body with CRLF read as LF and its trailing white space left out (a mailbox store and a
    relay disagree on both), in chunks: a 40 MB message is not copied whole."""
    stop = len(raw)
    while stop > start and raw[stop - 1] in b" \t\r\n":
        stop -= 1
    view = memoryview(raw)
    at = start
    while at < stop:
        end = min(at + _CHUNK, stop)
        if raw[end - 1:end] == b"\r" and end < stop:
            end += 1  # a CRLF is never split between two chunks
        h.update(bytes(view[at:end]).replace(b"\r\n", b"\n"))
        at = end


@dataclass(frozen=True)
class Attempt:
    """One attempt at routing a stored raw message, as the inbound store's marker says (written
    before routing starts, removed by the commit that records the outcome)."""

    key: str
    raw_key: str
    #: 1 for the first attempt, counting every attempt that wrote the marker
    number: int
    #: epoch seconds by which this attempt has finished or was killed (its invocation's end)
    until: float
    #: when an earlier attempt never finished (its marker outlived its own deadline: the process
    #: was killed), what it wrote: {"started", "until", "source", "recipients", ...}
    killed: dict[str, Any] | None = None
    #: the ledger key an attempt after a kill recorded the message under (it is not routed again)
    recorded: str = ""


@dataclass(frozen=True)
class LookupKeys:
    """Everything `routing.decide` may read, known before reading anything (one batch read)."""

    domains: list[str]
    aliases: list[tuple[str, str]]
    thread_ids: list[str]
    message_ids: list[str]
    counter_keys: list[str]
    contacts: list[str]
    #: ledger records to look for: the message under the key of an earlier version
    ledger_keys: list[str] = field(default_factory=list)


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
    #: the raw digest of each ledger record of `LookupKeys.ledger_keys` that exists
    recorded: dict[str, str] = field(default_factory=dict)

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
