"""What the core needs from the outside world, as small Protocols.

Each has one real adapter named after its technology (`mailgate.adapters`) and one in-memory
fake (`mailgate_dev.fakes`, the development package) for the core's unit tests. Network
libraries sit behind factories (`SenderFactory`, `MailboxFactory`, `ResolverFactory`) built once
in `bootstrap`, so that tests point them at local servers by constructing them with other
arguments.

Ports and where their real adapter (mailgate.adapters.*) and fake (mailgate_dev.fakes.*) live:

    RawMailStore                 aws.S3RawMailStore          MemoryRawMailStore
    Config/Thread/Message/Counter/KeyValue repositories
                                 dynamo.Dynamo*Repository    Memory*Repository
    InboundStore                 dynamo.DynamoInboundStore   MemoryInboundStore
    Outbox                       dynamo.DynamoOutbox         MemoryOutbox
    EventPublisher               aws.EventBridgePublisher    MemoryEventPublisher
    Queue                        aws.SqsQueue                MemoryQueue
    SecretStore                  aws.SecretsManagerStore     MemorySecretStore
    SigningKeys                  mailgate.keyring.SecretKeyring, over whichever SecretStore
    SenderFactory                senders.Transports          MemoryTransports
    MailboxFactory               mailboxes.NetMailboxes      MemoryMailboxes
    ResolverFactory              dnspython.DnspythonResolver MemoryResolver
    TargetClients                targets.HttpTargets         MemoryTargets
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Protocol

from .domain import (Alias, AliasDomain, DeliveryTarget, FetchSchedule, IncomingServer, MessageRecord,
    OutgoingServer, Thread)
from .effects import Effect
from .inbound_model import Attempt, LookupKeys, Snapshot

if TYPE_CHECKING:  # annotations only: dkim (dkimpy, cryptography) loads with the first signature,
    # and a Test Connection's verdicts only where one runs
    from .checks import Step
    from .dkim import SigningKey


class RawMailStore(Protocol):
    """Durable storage of raw messages and attachments (S3)."""

    def put(self, key: str, data: bytes, *, content_type: str = "message/rfc822") -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def presigned_url(self, key: str, *, expires_seconds: int) -> str:
        """A URL that reads the object without credentials until it expires."""
        ...


class ConfigRepository(Protocol):
    """Alias domains, aliases, incoming and outgoing servers."""

    def get_domain(self, name: str) -> AliasDomain | None: ...
    def list_domains(self) -> list[AliasDomain]: ...
    def put_domain(self, domain: AliasDomain) -> None: ...
    def delete_domain(self, name: str) -> None: ...

    def get_alias(self, domain: str, name: str) -> Alias | None: ...
    def list_aliases(self, domain: str | None = None) -> list[Alias]: ...
    def put_alias(self, alias: Alias) -> None: ...
    def delete_alias(self, domain: str, name: str) -> bool: ...

    def get_incoming(self, name: str) -> IncomingServer | None: ...
    def list_incoming(self) -> list[IncomingServer]: ...
    def put_incoming(self, server: IncomingServer) -> None:
        """Save the server and its schedule entry with it: an enabled server is due at once
        (`FetchSchedule.due` 0), a disabled one has none and is counted as disabled."""
        ...

    def due_incoming(self, now: float) -> list[FetchSchedule]:
        """The enabled incoming servers due for a fetch by `now`, soonest first: what the schedule
        index holds, not a read per server (the dispatcher's work grows with the due ones only)."""
        ...

    def reschedule_incoming(self, entry: FetchSchedule, due: float) -> bool:
        """Move a server's next fetch from `entry.due` to `due`, only if nobody moved it since
        `entry` was read (a conditional write: two overlapping dispatches queue it once)."""
        ...

    def count_disabled_incoming(self) -> int: ...
    def get_outgoing(self, name: str) -> OutgoingServer | None: ...
    def list_outgoing(self) -> list[OutgoingServer]: ...
    def put_outgoing(self, server: OutgoingServer) -> None: ...
    def delete_server(self, name: str) -> bool: ...

    def get_target(self, name: str) -> DeliveryTarget | None: ...
    def list_targets(self) -> list[DeliveryTarget]: ...
    def put_target(self, target: DeliveryTarget) -> None: ...
    def delete_target(self, name: str) -> bool: ...


class ThreadRepository(Protocol):
    """Threads, their followers, and the Message-ID index (message id -> thread)."""

    def get_thread(self, thread_id: str) -> Thread | None: ...
    def put_thread(self, thread: Thread) -> None: ...
    def find_thread_for_record(self, model: str, record_id: str) -> Thread | None: ...
    def add_follower(self, thread_id: str, address: str) -> None: ...
    def link_record(self, thread_id: str, model: str, record_id: str) -> bool:
        """Bind the thread to (model, record_id), the link only (followers added meanwhile
        stay); False when there is no such thread or it is bound to another record."""
        ...
    def index_message_id(self, message_id: str, thread_id: str) -> None: ...
    def threads_for_message_ids(self, message_ids: Iterable[str]) -> dict[str, str]: ...
    def recent_message_ids(self, thread_id: str, limit: int = 32) -> list[str]:
        """The thread's newest Message-IDs, in and out, oldest first (for References)."""
        ...


class MessageRepository(Protocol):
    """The ledger of every message taken in or sent, with its outcome. Writes are exactly-once."""

    def claim(self, record: MessageRecord) -> bool:
        """Create the record if its key is new (a conditional write); False if it already existed."""
        ...

    def replace(self, record: MessageRecord, *, version: int) -> bool:
        """Overwrite the record if the stored one is still at `version` (a conditional write);
        False if it changed meanwhile or is gone. A record stored without a version is at 0."""
        ...

    def get(self, key: str) -> MessageRecord | None: ...
    def update(self, record: MessageRecord) -> None: ...
    def list(self, *, limit: int = 50, direction: str | None = None) -> list[MessageRecord]: ...


class CounterRepository(Protocol):
    """Counters that age out (loop protection, rate limits): increments return the new value."""

    def incr(self, key: str, *, window_seconds: int) -> int: ...
    def get(self, key: str) -> int: ...


class KeyValueRepository(Protocol):
    """Small items with an optional expiry: mailbox cursors, leases, health, suppression entries."""

    def get_item(self, key: str) -> dict[str, Any] | None: ...
    def put_item(self, key: str, value: dict[str, Any], *, ttl_seconds: int | None = None,
                 if_absent: bool = False, if_version: int | None = None) -> bool: ...
    def delete_item(self, key: str) -> None: ...
    def scan_prefix(self, prefix: str) -> list[tuple[str, dict[str, Any]]]: ...


class EventPublisher(Protocol):
    """What the application consumes (EventBridge)."""

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None: ...


class Queue(Protocol):
    """A work queue (SQS): the outbound send requests, the fetch fan-out."""

    def send(self, body: dict[str, Any], *, dedup_id: str | None = None) -> None: ...
    def send_many(self, bodies: list[dict[str, Any]]) -> list[int]:
        """Queue many bodies (SQS: ten per SendMessageBatch request); the indexes of those that
        could not be queued (the others were)."""
        ...

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        """Delay the next delivery of a received message (backoff before a retry)."""
        ...


class SecretStore(Protocol):
    """Passwords, DKIM private keys, the token key (Secrets Manager). Values are never logged."""

    def get(self, secret_id: str) -> str: ...
    def put(self, secret_id: str, value: str) -> None: ...
    def delete(self, secret_id: str) -> None: ...


class SigningKeys(Protocol):
    """The DKIM private keys outbound mail is signed with (RFC 6376), kept warm between sends."""

    def keys_for(self, domain: str, selector: str) -> list[SigningKey]:
        """The keys to sign mail From `domain` with, RSA first; ConfigError (with the fix) when
        there is none."""
        ...

    def forget(self) -> None:
        """Drop cached keys (a key was just written)."""
        ...


class InboundStore(Protocol):
    """The inbound path's reads and writes: one marker, one batched read, one conditional write per
    message."""

    def domains(self) -> dict[str, AliasDomain]:
        """The alias domains by lower-case name (cached briefly: they are few and change rarely)."""
        ...

    def begin(self, raw_key: str, *, until: float, facts: dict[str, Any]) -> Attempt:
        """Mark that routing the raw message at `raw_key` starts, to be done by `until` (epoch
        seconds), in one write that also answers which attempt this is and whether an earlier one
        never finished (its marker outlived its own `until`: the process was killed). `facts`
        (source, recipients) are kept with the marker so that such a message can be recorded."""
        ...

    def abandon(self, attempt: Attempt) -> None:
        """Remove the marker of an attempt that stops on purpose (a transient failure, retried):
        the retry is then no sign of a kill."""
        ...

    def load(self, keys: LookupKeys) -> Snapshot:
        """Everything `keys` names, read at once (the threads the index names in a second read)."""
        ...

    def commit(self, record: MessageRecord, *, new_thread: Thread | None, index: list[tuple[str, str]],
               follower: tuple[str, str] | None, counter: tuple[str, int] | None, contact: str | None,
               replace: bool = False, effects: list[Effect] = (), attempt: Attempt | None = None) -> bool:
        """Record the message's outcome and what its route writes, all or nothing: with it the
        outcome's `effects` as pending (the outbox entry `effects.owner_of(key, version)`), and
        the attempt's marker removed (or, after a killed attempt, kept saying where the message
        was recorded, so that no later attempt on the same raw key routes it: `Attempt.recorded`).

        The first delivery (`replace` False) writes the record only if its key is new; a replay
        (`replace` True) only if the stored record is still at `record.version`, and bumps it.
        False when that condition fails (another delivery or replay won); True when written.
        PermanentError means the items themselves are refused (they will never fit)."""
        ...


class Outbox(Protocol):
    """Effects waiting to be carried out, per owner (one recorded outcome). The inbound store's
    `commit` writes an inbound outcome's; `write` an outbound record's."""

    def write(self, record: MessageRecord, owner: str, effects: list[Effect]) -> None:
        """The record (unconditionally, as `MessageRepository.update`) and its pending effects
        under `owner`, all or nothing."""
        ...

    def pending(self, owner: str) -> list[Effect]:
        """The owner's effects not done yet, in the order they were written."""
        ...

    def settle(self, owner: str, remaining: list[Effect]) -> None:
        """After a run: what is left of the owner's effects (none: the entry is removed)."""
        ...

    def due(self, *, older_than: float, limit: int = 100) -> list[str]:
        """Owners whose effects were written more than `older_than` seconds ago and are still
        pending, oldest first: what the sweep carries out."""
        ...

    def claim(self, owner: str, *, seconds: float) -> bool:
        """Take the owner's entry for `seconds` (a conditional write), so that two sweeps do not
        run it at once; False when someone else holds it or it is gone."""
        ...


# --- sending mail ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Envelope:
    """One SMTP transaction's envelope (RFC 5321): the VERP return path and one recipient."""

    mail_from: str
    rcpt: str


@dataclass
class RecipientResult:
    recipient: str
    status: str            # "sent" | "deferred" | "failed" | "unknown"
    code: int | None = None
    detail: str = ""
    error: str = ""        # short machine code, e.g. "rcpt-rejected", "auth-failed"
    transport_id: str = ""

    def to_dict(self) -> dict:
        return {"address": self.recipient, "status": self.status, "code": self.code,
                "detail": self.detail, "error": self.error, "transport_id": self.transport_id}


class Sender(Protocol):
    """An open transport: sends one signed message, one transaction per envelope."""

    kind: str  # "smtp" | "ses"
    name: str

    def send(self, envelopes: list[Envelope], raw: bytes, *, smtputf8: bool = False,
             from_address: str = "") -> list[RecipientResult]: ...
    def close(self) -> None: ...


class SenderFactory(Protocol):
    """Opens the transports of outbound mail: SES (`server` None) or an outgoing server's SMTP host."""

    def open(self, server: OutgoingServer | None, password: str | None) -> Sender:
        """PermanentError when the server's settings cannot work (plaintext refused)."""
        ...

    def test_connection(self, server: OutgoingServer, password: str | None, *, mail_from: str,
                        rcpt_to: str) -> list[Step]:
        """Odoo's Test Connection: each step's verdict, nothing delivered."""
        ...


# --- delivering to the application ------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One routed message for one target: the raw bytes (Odoo) or the event payload (webhook),
    and the id that stays the same across retries (Standard Webhooks `webhook-id`)."""

    message_key: str
    delivery_id: str
    raw: bytes | None = None
    payload: dict[str, Any] | None = None


@dataclass
class DeliveryAnswer:
    """What the target said. `outcome`: "delivered", "duplicate" (the target already had it),
    "retry" (a timeout, 408, 429, 5xx: try again, after `retry_after` seconds when it said so) or
    "failed" (permanent: an XML-RPC fault, another 4xx); `detail` keeps the answer's words (the
    fault string, or the status and the head of the body)."""

    outcome: str
    status: int | None = None
    detail: str = ""
    retry_after: float | None = None
    #: HTTP requests this delivery made (the common path makes one)
    calls: int = 1


class TargetClients(Protocol):
    """Reaches the application's delivery targets (Odoo's external API, webhooks)."""

    def deliver(self, target: DeliveryTarget, secrets: list[str], delivery: Delivery) -> DeliveryAnswer:
        """Hand one message over; never raises for what the target answered."""
        ...

    def test_connection(self, target: DeliveryTarget, secrets: list[str]) -> list[Step]:
        """Odoo's Test Connection: reach, authenticate, `message_process` callable; nothing delivered."""
        ...


# --- fetching mail -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MailItem:
    """One message on the server: `ref` addresses it now (IMAP UID / POP3 message number),
    `ident` identifies it across sessions (IMAP UID as text / POP3 UIDL), `size` in octets."""

    ref: int
    ident: str
    size: int


@dataclass(frozen=True)
class Timeouts:
    """Seconds allowed for each kind of network operation (Odoo's fetcher has none and can hang)."""

    connect: float = 15.0
    login: float = 30.0
    command: float = 60.0


class Mailbox(Protocol):
    """An incoming server's mailbox (ImapMailbox, PopMailbox). Failures are MailgateErrors with a
    code (netmail's list) and a message that names the fix.

    IMAP mailboxes also have `uidvalidity` and `list_since(last_uid)`; POP3 ones `list_all()` and
    `commit()` (QUIT, which applies the deletions: RFC 1939 section 6).

    `fetch` yields what the server returned; a message it did not return (RETR answered -ERR, a
    UID left out of the UID FETCH answer or an answer ending in NO) is simply not yielded, and
    `missing` says what became of such messages: None for one the server confirms is gone, else
    the server's words for why it was not returned (it is still there: fetch it again)."""

    protocol: str
    exists: int

    def connect(self) -> None: ...
    def login(self) -> None: ...
    def select(self, readonly: bool = False) -> int: ...
    def open(self) -> None: ...
    def fetch(self, items: list[MailItem]) -> Iterator[tuple[MailItem, bytes]]: ...
    def missing(self, items: list[MailItem]) -> dict[int, str | None]: ...
    def ack(self, items: list[MailItem], mode: str, move_to: str = "") -> None: ...
    def set_timeout(self, seconds: float) -> None: ...
    def close(self) -> None: ...


class MailboxFactory(Protocol):
    """A mailbox of an incoming server, not connected yet."""

    def __call__(self, server: IncomingServer, password: str) -> Mailbox: ...


# --- DNS ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """What one lookup found. `records` are strings: a TXT record's character-strings are joined
    into one (RFC 7208 3.3), MX is "PREF HOST", CNAME is the target; names are lower case without
    the final dot. `chain` lists the CNAME targets followed, in order. `error` is None or one of
    nxdomain, nodata, servfail, timeout, loop, error."""

    name: str
    rtype: str
    records: tuple[str, ...] = ()
    error: str | None = None
    chain: tuple[str, ...] = ()
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def void(self) -> bool:
        """No answer (RFC 7208 4.6.4 counts these "void lookups")."""
        return self.error in ("nxdomain", "nodata")

    @property
    def final_name(self) -> str:
        return self.chain[-1] if self.chain else self.name

    def describe(self) -> str:
        """A short phrase for people: what the lookup gave."""
        via = "".join(f" -> CNAME {c}" for c in self.chain)
        where = f"{self.rtype} {self.name}{via}"
        if self.error is None:
            return f"{where}: {'; '.join(self.records)}"
        text = {
            "nxdomain": "the name does not exist (NXDOMAIN)",
            "nodata": f"the name exists but has no {self.rtype} record",
            "servfail": "the nameserver failed (SERVFAIL)",
            "timeout": "no answer from the nameserver (timeout)",
            "loop": "the CNAME chain loops",
            "error": "the lookup failed",
        }[self.error]
        return f"{where}: {text}" + (f" ({self.detail})" if self.detail else "")



class Resolver(Protocol):
    """Look a name up, never an exception (`Answer.error` says what went wrong); the result is
    cached for the resolver's life (one check run)."""

    queries: int

    def query(self, name: str, rtype: str) -> Answer: ...


class ResolverFactory(Protocol):
    """A fresh resolver per run, so that no answer is cached across days."""

    def __call__(self) -> Resolver: ...
