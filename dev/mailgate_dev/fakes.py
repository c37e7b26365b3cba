"""In-memory fakes of every port, for the pure core's unit tests and the benchmarks.

A fake records what it received (`published`, `sent`, `transactions`) so that a test can assert
on it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from mailgate.bootstrap import Container
from mailgate.checks import Step
from mailgate.dnsadvice.resolver import Answer, norm
from mailgate.domain import (Alias, AliasDomain, DeliveryTarget, FetchSchedule, IncomingServer, MessageRecord,
    OutgoingServer, Thread)
from mailgate.effects import HOLD_SECONDS, Effect, owner_of
from mailgate.errors import NotFound, TransientError
from mailgate.inbound_model import Attempt, DomainCache, LookupKeys, Snapshot, attempt_key, contact_key
from mailgate.keyring import SecretKeyring
from mailgate.ports import (
    ConfigRepository, CounterRepository, Delivery, DeliveryAnswer, Envelope, KeyValueRepository, Mailbox, MessageRepository,
    RecipientResult, ThreadRepository,
)
from mailgate.settings import Settings


class MemoryRawMailStore:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts = 0

    def put(self, key: str, data: bytes, *, content_type: str = "message/rfc822") -> None:
        self.puts += 1
        self.objects[key] = bytes(data)

    def get(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError:
            raise NotFound(f"no raw message stored under {key!r}") from None

    def exists(self, key: str) -> bool:
        return key in self.objects

    def presigned_url(self, key: str, *, expires_seconds: int) -> str:
        return f"memory://raw/{key}?expires={int(time.time()) + int(expires_seconds)}"


class MemoryConfigRepository:
    def __init__(self) -> None:
        self.domains: dict[str, AliasDomain] = {}
        self.aliases: dict[tuple[str, str], Alias] = {}
        self.incoming: dict[str, IncomingServer] = {}
        self.outgoing: dict[str, OutgoingServer] = {}
        #: the schedule index: an entry per enabled incoming server, None for a disabled one
        self.schedule: dict[str, FetchSchedule | None] = {}
        self._lock = threading.Lock()
        self.targets: dict[str, DeliveryTarget] = {}

    def get_domain(self, name: str) -> AliasDomain | None:
        return self.domains.get(name.lower())

    def list_domains(self) -> list[AliasDomain]:
        return sorted(self.domains.values(), key=lambda d: d.name)

    def put_domain(self, domain: AliasDomain) -> None:
        self.domains[domain.name.lower()] = domain

    def delete_domain(self, name: str) -> None:
        self.domains.pop(name.lower(), None)

    def get_alias(self, domain: str, name: str) -> Alias | None:
        return self.aliases.get((domain.lower(), name.lower()))

    def list_aliases(self, domain: str | None = None) -> list[Alias]:
        return sorted((a for (d, _), a in self.aliases.items() if domain is None or d == domain.lower()),
                      key=lambda a: (a.domain, a.name))

    def put_alias(self, alias: Alias) -> None:
        self.aliases[(alias.domain.lower(), alias.name.lower())] = alias

    def delete_alias(self, domain: str, name: str) -> bool:
        return self.aliases.pop((domain.lower(), name.lower()), None) is not None

    def get_incoming(self, name: str) -> IncomingServer | None:
        return self.incoming.get(name)

    def list_incoming(self) -> list[IncomingServer]:
        return sorted(self.incoming.values(), key=lambda s: s.name)

    def put_incoming(self, server: IncomingServer) -> None:
        # One name space for both kinds, as in the table (one item per server name).
        self.outgoing.pop(server.name, None)
        self.incoming[server.name] = server
        self.schedule[server.name] = (FetchSchedule(server.name, 0.0, max(1, int(server.interval_minutes or 5)))
                                      if server.enabled else None)

    def due_incoming(self, now: float) -> list[FetchSchedule]:
        return sorted((e for e in self.schedule.values() if e is not None and e.due <= now),
                      key=lambda e: (e.due, e.name))

    def reschedule_incoming(self, entry: FetchSchedule, due: float) -> bool:
        with self._lock:  # the dispatcher moves entries from several threads
            if self.schedule.get(entry.name) != entry:
                return False
            self.schedule[entry.name] = replace(entry, due=due)
            return True

    def count_disabled_incoming(self) -> int:
        return sum(1 for e in self.schedule.values() if e is None)

    def get_outgoing(self, name: str) -> OutgoingServer | None:
        return self.outgoing.get(name)

    def list_outgoing(self) -> list[OutgoingServer]:
        return sorted(self.outgoing.values(), key=lambda s: (s.priority, s.name))

    def put_outgoing(self, server: OutgoingServer) -> None:
        self.incoming.pop(server.name, None)
        self.outgoing[server.name] = server

    def delete_server(self, name: str) -> bool:
        found = self.incoming.pop(name, None) or self.outgoing.pop(name, None)
        self.schedule.pop(name, None)
        return found is not None

    def get_target(self, name: str) -> DeliveryTarget | None:
        return self.targets.get(name)

    def list_targets(self) -> list[DeliveryTarget]:
        return sorted(self.targets.values(), key=lambda t: t.name)

    def put_target(self, target: DeliveryTarget) -> None:
        self.targets[target.name] = target

    def delete_target(self, name: str) -> bool:
        return self.targets.pop(name, None) is not None


class MemoryThreadRepository:
    def __init__(self) -> None:
        self.threads: dict[str, Thread] = {}
        self.message_index: dict[str, str] = {}

    def get_thread(self, thread_id: str) -> Thread | None:
        return self.threads.get(thread_id)

    def put_thread(self, thread: Thread) -> None:
        self.threads[thread.thread_id] = thread

    def find_thread_for_record(self, model: str, record_id: str) -> Thread | None:
        for t in self.threads.values():
            if t.model == model and t.record_id == record_id:
                return t
        return None

    def link_record(self, thread_id: str, model: str, record_id: str) -> bool:
        t = self.threads.get(thread_id)
        if t is None or (t.record_id and (t.model, t.record_id) != (model, record_id)):
            return False
        t.model, t.record_id = model, record_id
        return True

    def add_follower(self, thread_id: str, address: str) -> None:
        t = self.threads[thread_id]
        if address.lower() not in (f.lower() for f in t.followers):
            t.followers.append(address)

    def index_message_id(self, message_id: str, thread_id: str) -> None:
        # First writer wins, as in the table: anyone can send mail under a Message-ID they have
        # read, and must not re-point the replies that name it.
        self.message_index.setdefault(message_id, thread_id)

    def recent_message_ids(self, thread_id: str, limit: int = 32) -> list[str]:
        return [m for m, t in self.message_index.items() if t == thread_id][-limit:]

    def threads_for_message_ids(self, message_ids: Iterable[str]) -> dict[str, str]:
        return {m: self.message_index[m] for m in message_ids if m in self.message_index}


class MemoryMessageRepository:
    def __init__(self) -> None:
        self.records: dict[str, MessageRecord] = {}
        self._lock = threading.Lock()

    def claim(self, record: MessageRecord) -> bool:
        with self._lock:
            if record.key in self.records:
                return False
            self.records[record.key] = replace(record)
            return True

    def replace(self, record: MessageRecord, *, version: int) -> bool:
        with self._lock:
            current = self.records.get(record.key)
            if current is None or current.version != version:
                return False
            self.records[record.key] = replace(record)
            return True

    def get(self, key: str) -> MessageRecord | None:
        r = self.records.get(key)
        return replace(r) if r else None

    def update(self, record: MessageRecord) -> None:
        self.records[record.key] = replace(record)

    def list(self, *, limit: int = 50, direction: str | None = None) -> list[MessageRecord]:
        rows = [r for r in self.records.values() if direction is None or r.direction == direction]
        return sorted(rows, key=lambda r: r.received_at, reverse=True)[:limit]


class MemoryCounterRepository:
    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self.counts: dict[str, tuple[int, float]] = {}

    def incr(self, key: str, *, window_seconds: int) -> int:
        count, expires = self.counts.get(key, (0, 0.0))
        now = self.clock()
        if expires <= now:
            count, expires = 0, now + window_seconds
        self.counts[key] = (count + 1, expires)
        return count + 1

    def get(self, key: str) -> int:
        count, expires = self.counts.get(key, (0, 0.0))
        return count if expires > self.clock() else 0


class MemoryKeyValueRepository:
    def __init__(self, clock=time.time) -> None:
        self.clock = clock
        self.items: dict[str, tuple[dict[str, Any], float | None]] = {}
        self._lock = threading.Lock()

    def _live(self, key: str) -> dict[str, Any] | None:
        item = self.items.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self.clock():
            del self.items[key]
            return None
        return value

    def get_item(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            value = self._live(key)
            return dict(value) if value is not None else None

    def put_item(self, key: str, value: dict[str, Any], *, ttl_seconds: int | None = None,
                 if_absent: bool = False, if_version: int | None = None) -> bool:
        with self._lock:
            current = self._live(key)
            if if_absent and current is not None:
                return False
            if if_version is not None and (current or {}).get("version", 0) != if_version:
                return False
            expires = self.clock() + ttl_seconds if ttl_seconds else None
            self.items[key] = (dict(value), expires)
            return True

    def delete_item(self, key: str) -> None:
        with self._lock:
            self.items.pop(key, None)

    def scan_prefix(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            keys = [k for k in self.items if k.startswith(prefix)]
            return [(k, dict(v)) for k in sorted(keys) if (v := self._live(k)) is not None]


class MemoryEventPublisher:
    def __init__(self) -> None:
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.published.append((detail_type, detail))


class MemoryQueue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.delays: list[tuple[str, int]] = []

    def send(self, body: dict[str, Any], *, dedup_id: str | None = None) -> None:
        self.sent.append(body)

    def send_many(self, bodies: list[dict[str, Any]]) -> list[int]:
        self.sent.extend(bodies)
        return []

    def change_visibility(self, receipt_handle: str, seconds: int) -> None:
        self.delays.append((receipt_handle, seconds))


class MemorySecretStore:
    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})

    def get(self, secret_id: str) -> str:
        try:
            return self.values[secret_id]
        except KeyError:
            raise NotFound(f"secret {secret_id!r} does not exist") from None

    def put(self, secret_id: str, value: str) -> None:
        self.values[secret_id] = value

    def delete(self, secret_id: str) -> None:
        self.values.pop(secret_id, None)


class MemoryOutbox:
    """The `Outbox` port: pending effects per owner, oldest first (`entries`)."""

    def __init__(self, messages: MessageRepository, clock=time.time) -> None:
        self.messages, self.clock = messages, clock
        #: owner -> (written at, claimed until, effects)
        self.entries: dict[str, tuple[float, float, list[Effect]]] = {}
        self._lock = threading.Lock()

    def put(self, owner: str, effects: list[Effect], *, held_until: float = 0.0) -> None:
        """The entry, as a commit writes it (with the record, in the same write), held by the
        writer until `held_until`."""
        with self._lock:
            if effects:
                self.entries[owner] = (self.clock(), held_until, [Effect.from_dict(e.to_dict()) for e in effects])

    def write(self, record: MessageRecord, owner: str, effects: list[Effect]) -> None:
        self.messages.update(record)
        self.put(owner, effects)

    def pending(self, owner: str) -> list[Effect]:
        with self._lock:
            entry = self.entries.get(owner)
            return [Effect.from_dict(e.to_dict()) for e in entry[2]] if entry else []

    def settle(self, owner: str, remaining: list[Effect]) -> None:
        with self._lock:
            entry = self.entries.pop(owner, None)
            if remaining:
                written = entry[0] if entry else self.clock()
                self.entries[owner] = (written, 0.0, [Effect.from_dict(e.to_dict()) for e in remaining])

    def due(self, *, older_than: float, limit: int = 100) -> list[str]:
        before = self.clock() - older_than
        with self._lock:
            rows = sorted((w, o) for o, (w, _, _) in self.entries.items() if w < before)
            return [o for _, o in rows[:limit]]

    def claim(self, owner: str, *, seconds: float) -> bool:
        with self._lock:
            entry = self.entries.get(owner)
            now = self.clock()
            if entry is None or entry[1] > now:
                return False
            self.entries[owner] = (entry[0], now + seconds, entry[2])
            return True


class MemoryInboundStore:
    """The `InboundStore` port over the other ports, call by call (a real store makes `load` one
    batched read and `commit` one transaction)."""

    def __init__(self, config: ConfigRepository, threads: ThreadRepository, messages: MessageRepository,
                 counters: CounterRepository, kv: KeyValueRepository, *, gateway_domain: str = "",
                 outbox: MemoryOutbox | None = None, clock=time.time) -> None:
        self.config, self.threads, self.messages, self.counters, self.kv = config, threads, messages, counters, kv
        self.gateway_domain = gateway_domain
        self.domains = DomainCache(config.list_domains)
        self.outbox = outbox if outbox is not None else MemoryOutbox(messages, clock)
        self.clock = clock
        #: attempt markers: key -> what begin() wrote
        self.markers: dict[str, dict[str, Any]] = {}

    def begin(self, raw_key: str, *, until: float, facts: dict[str, Any]) -> Attempt:
        key = attempt_key(raw_key)
        now = self.clock()
        previous = self.markers.get(key)
        number = int(previous["attempts"]) + 1 if previous else 1
        recorded = previous.get("recorded", "") if previous else ""
        self.markers[key] = {**facts, "raw_key": raw_key, "started": now, "until": until, "attempts": number,
                             "recorded": recorded}
        killed = previous if previous is not None and not recorded and float(previous["until"]) < now else None
        return Attempt(key=key, raw_key=raw_key, number=number, until=until, killed=killed, recorded=recorded)

    def abandon(self, attempt: Attempt) -> None:
        if not attempt.recorded:
            self.markers.pop(attempt.key, None)

    def load(self, keys: LookupKeys) -> Snapshot:
        snap = Snapshot(domains=self.domains(), gateway_domain=self.gateway_domain)
        for dom, name in keys.aliases:
            alias = self.config.get_alias(dom, name)
            if alias is not None:
                snap.aliases[(dom.lower(), name.lower())] = alias
        if keys.message_ids:
            snap.index = dict(self.threads.threads_for_message_ids(keys.message_ids))
        for key in keys.counter_keys:
            snap.counts[key] = self.counters.get(key)
        for address in keys.contacts:
            if self.kv.get_item(contact_key(address)) is not None:
                snap.known_senders.add(address.lower())
        for key in keys.ledger_keys:
            record = self.messages.get(key)
            if record is not None:
                snap.recorded[key] = record.digest
        # second read: the threads named by the first (tokens, index hits, forced threads)
        wanted = list(keys.thread_ids) + list(snap.index.values()) + [
            a.force_thread_id for a in snap.aliases.values() if a.force_thread_id]
        for tid in dict.fromkeys(wanted):
            thread = self.threads.get_thread(tid)
            if thread is not None:
                snap.threads[tid] = thread
        return snap

    def commit(self, record: MessageRecord, *, new_thread: Thread | None, index: list[tuple[str, str]],
               follower: tuple[str, str] | None, counter: tuple[str, int] | None, contact: str | None,
               replace: bool = False, effects: list[Effect] = (), attempt: Attempt | None = None) -> bool:
        if replace:
            version = record.version
            record.version += 1
            if not self.messages.replace(record, version=version):
                record.version = version
                return False
        elif not self.messages.claim(record):
            return False
        if new_thread is not None:  # a fresh id: nobody else can have it
            self.threads.put_thread(new_thread)
        for message_id, thread_id in index:
            self.threads.index_message_id(message_id, thread_id)
        if follower is not None:
            self.threads.add_follower(*follower)
        if counter is not None:
            self.counters.incr(counter[0], window_seconds=counter[1])
        if contact:
            self.kv.put_item(contact_key(contact), {"address": contact, "since": time.time()}, if_absent=True)
        held = attempt.until if attempt is not None else self.clock() + HOLD_SECONDS
        self.outbox.put(owner_of(record.key, record.version), list(effects), held_until=held)
        if attempt is not None and attempt.killed is not None:
            self.markers[attempt.key]["recorded"] = record.key
        elif attempt is not None:
            self.markers.pop(attempt.key, None)
        return True


class MemorySender:
    """Accepts every recipient unless `outcomes` says otherwise ({address: (status, code)});
    records (mail_from, rcpt, raw) per transaction."""

    def __init__(self, name: str = "ses", outcomes: dict[str, tuple[str, int]] | None = None) -> None:
        self.name = name
        self.kind = "ses" if name == "ses" else "smtp"
        self.outcomes = dict(outcomes or {})
        self.transactions: list[tuple[str, str, bytes]] = []
        self.closed = 0

    def send(self, envelopes: list[Envelope], raw: bytes, *, smtputf8: bool = False,
             from_address: str = "") -> list[RecipientResult]:
        out = []
        for env in envelopes:
            status, code = self.outcomes.get(env.rcpt, ("sent", 250))
            if status == "sent":
                self.transactions.append((env.mail_from, env.rcpt, raw))
            out.append(RecipientResult(env.rcpt, status, code, f"{code} {status}",
                                       transport_id=f"{self.name}-{len(self.transactions)}" if status == "sent" else ""))
        return out

    def close(self) -> None:
        self.closed += 1


class MemoryTransports:
    """The `SenderFactory` fake: one `MemorySender` per transport name ("ses" or the server's)."""

    def __init__(self) -> None:
        self.senders: dict[str, MemorySender] = {}

    def open(self, server: OutgoingServer | None, password: str | None) -> MemorySender:
        name = server.name if server else "ses"
        return self.senders.setdefault(name, MemorySender(name))

    def test_connection(self, server: OutgoingServer, password: str | None, *, mail_from: str,
                        rcpt_to: str) -> list[Step]:
        return [Step("connect", True, f"in-memory transport {server.name}"),
                Step("mail-from", True, f"sender {mail_from} accepted"),
                Step("rcpt-to", True, f"recipient {rcpt_to} accepted")]


class MemoryMailboxes:
    """The `MailboxFactory` fake: the mailbox object given for each server name."""

    def __init__(self, boxes: dict[str, Mailbox] | None = None) -> None:
        self.boxes = dict(boxes or {})

    def __call__(self, server: IncomingServer, password: str) -> Mailbox:
        try:
            return self.boxes[server.name]
        except KeyError:
            raise TransientError(f"host unreachable: no in-memory mailbox for server {server.name}",
                                 code="unreachable") from None


@dataclass
class MemoryResolver:
    """Answers from {(name, type): [records]} (a str value is an error kind); anything absent is
    NXDOMAIN. Counts the questions, as the real resolver counts queries."""

    data: dict[tuple[str, str], list[str] | str] = field(default_factory=dict)
    queries: int = 0

    def query(self, name: str, rtype: str) -> Answer:
        self.queries += 1
        value = self.data.get((norm(name), rtype.upper()))
        if value is None:
            return Answer(norm(name), rtype.upper(), error="nxdomain")
        if isinstance(value, str):
            return Answer(norm(name), rtype.upper(), error=value)
        return Answer(norm(name), rtype.upper(), tuple(value))


class MemoryTargets:
    """The `TargetClients` fake: answers from `answers` ({target name: [DeliveryAnswer, ...]}, one
    per call, the last repeated; "delivered" when none), and records every delivery it was given."""

    def __init__(self, answers: dict[str, list[DeliveryAnswer]] | None = None) -> None:
        self.answers = {k: list(v) for k, v in (answers or {}).items()}
        self.delivered: list[tuple[str, Delivery]] = []

    def deliver(self, target: DeliveryTarget, secrets: list[str], delivery: Delivery) -> DeliveryAnswer:
        queue = self.answers.get(target.name) or []
        answer = queue.pop(0) if len(queue) > 1 else (queue[0] if queue else DeliveryAnswer("delivered", 200))
        self.delivered.append((target.name, delivery))
        return replace(answer)

    def test_connection(self, target: DeliveryTarget, secrets: list[str]) -> list[Step]:
        return [Step("reach", True, f"in-memory target {target.name}")]


def in_memory(settings: Settings | None = None, *, token_key: str = "test-token-key", **ports) -> Container:
    """A Container of fakes, for unit tests and benchmarks; a keyword argument replaces a port
    (the outbox, the inbound store and the keyring, built over the others, follow the replacements)."""
    settings = settings or Settings(table_name="memory", bucket_name="memory", gateway_domain="example.test")
    given = dict(
        raw_store=MemoryRawMailStore(), config=MemoryConfigRepository(), threads=MemoryThreadRepository(),
        messages=MemoryMessageRepository(), counters=MemoryCounterRepository(), kv=MemoryKeyValueRepository(),
        events=MemoryEventPublisher(), outbound_queue=MemoryQueue(), fetch_queue=MemoryQueue(),
        secrets=MemorySecretStore({settings.token_secret_id: token_key}),
        transports=MemoryTransports(), mailboxes=MemoryMailboxes(), resolvers=MemoryResolver,
        delivery_queue=MemoryQueue(), targets=MemoryTargets(),
    ) | ports
    if "outbox" not in given:
        given["outbox"] = MemoryOutbox(given["messages"])
    if "inbound" not in given:
        given["inbound"] = MemoryInboundStore(given["config"], given["threads"], given["messages"], given["counters"],
                                              given["kv"], gateway_domain=settings.gateway_domain,
                                              outbox=given["outbox"])
    if "signing_keys" not in given:
        given["signing_keys"] = SecretKeyring(given["secrets"], settings)
    return Container(settings=settings, **given)


# --- the operator's ports (mailgate_dev.admin) ------------------------------------------------


class MemoryQueueStats:
    """Queue depths by URL: {url: (visible, in_flight, delayed)}."""

    def __init__(self, depths: dict[str, tuple[int, int, int]] | None = None) -> None:
        self.depths = depths or {}

    def depth(self, url: str):
        from mailgate_dev.admin.ports import QueueDepth

        visible, in_flight, delayed = self.depths.get(url, (0, 0, 0))
        return QueueDepth(url.rstrip("/").rpartition("/")[2], url, visible, in_flight, delayed)


class MemoryAlarms:
    def __init__(self, alarms: dict[str, list] | None = None) -> None:
        self.alarms = alarms or {}  # topic ARN -> [Alarm]

    def in_alarm(self, topic_arn: str) -> list:
        return list(self.alarms.get(topic_arn, []))


class MemorySesAdmin:
    """SES as the admin port sees it; `verify(domain)` plays SES finding the records in DNS."""

    def __init__(self, *, production: bool = False) -> None:
        from mailgate_dev.admin.ports import SesAccount

        self.account_state = SesAccount(production_access=production, sending_enabled=True,
                                        enforcement_status="HEALTHY", max_24_hour_send=200.0 if not production else 50000.0,
                                        max_send_rate=1.0)
        self.identities: dict[str, Any] = {}
        self.destinations: dict[str, dict[str, Any]] = {}
        self.rule_sets: set[str] = set()
        self.active: str | None = None
        self.calls: list[str] = []

    def account(self):
        return self.account_state

    def identity(self, domain: str):
        return self.identities.get(domain)

    def create_identity(self, domain: str, *, dkim, configuration_set: str):
        from mailgate_dev.admin.ports import SesIdentity

        self.calls.append(f"create {domain}")
        tokens = () if dkim else tuple(f"tok{i}{domain.split('.')[0]}" for i in range(3))
        self.identities[domain] = SesIdentity(domain, dkim_status="PENDING", dkim_origin="EXTERNAL" if dkim else "AWS_SES",
                                              dkim_tokens=tokens, configuration_set=configuration_set)
        return self.identities[domain]

    def set_dkim(self, domain: str, dkim) -> None:
        self.calls.append(f"dkim {domain}")
        self.identities[domain] = replace(self.identities[domain], dkim_origin="EXTERNAL" if dkim else "AWS_SES",
                                          dkim_status="PENDING", verified_for_sending=False)

    def set_configuration_set(self, domain: str, configuration_set: str) -> None:
        self.identities[domain] = replace(self.identities[domain], configuration_set=configuration_set)

    def set_mail_from(self, domain: str, mail_from_domain: str) -> None:
        self.calls.append(f"mail-from {domain}")
        self.identities[domain] = replace(self.identities[domain], mail_from_domain=mail_from_domain,
                                          mail_from_status="PENDING")

    def verify(self, domain: str) -> None:
        self.identities[domain] = replace(self.identities[domain], verified_for_sending=True,
                                          verification_status="SUCCESS", dkim_status="SUCCESS",
                                          mail_from_status="SUCCESS" if self.identities[domain].mail_from_domain else "")

    def event_destinations(self, configuration_set: str) -> list:
        return list(self.destinations.get(configuration_set, {}).values())

    def put_event_destination(self, configuration_set: str, destination) -> None:
        self.calls.append(f"destination {configuration_set}")
        self.destinations.setdefault(configuration_set, {})[destination.name] = destination

    def active_rule_set(self) -> str | None:
        return self.active

    def activate_rule_set(self, name: str) -> None:
        self.calls.append(f"activate {name}")
        self.active = name
