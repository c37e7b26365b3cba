"""In-memory fakes of every port, for the pure core's unit tests and the benchmarks.

A fake records what it received (`published`, `sent`) so that a test can assert on it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, Iterable

from mailgate.bootstrap import Container
from mailgate.domain import Alias, AliasDomain, IncomingServer, MessageRecord, OutgoingServer, Thread
from mailgate.errors import NotFound
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


class MemoryConfigRepository:
    def __init__(self) -> None:
        self.domains: dict[str, AliasDomain] = {}
        self.aliases: dict[tuple[str, str], Alias] = {}
        self.incoming: dict[str, IncomingServer] = {}
        self.outgoing: dict[str, OutgoingServer] = {}

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

    def get_outgoing(self, name: str) -> OutgoingServer | None:
        return self.outgoing.get(name)

    def list_outgoing(self) -> list[OutgoingServer]:
        return sorted(self.outgoing.values(), key=lambda s: (s.priority, s.name))

    def put_outgoing(self, server: OutgoingServer) -> None:
        self.incoming.pop(server.name, None)
        self.outgoing[server.name] = server

    def delete_server(self, name: str) -> bool:
        found = self.incoming.pop(name, None) or self.outgoing.pop(name, None)
        return found is not None


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

    def add_follower(self, thread_id: str, address: str) -> None:
        t = self.threads[thread_id]
        if address.lower() not in (f.lower() for f in t.followers):
            t.followers.append(address)

    def index_message_id(self, message_id: str, thread_id: str) -> None:
        self.message_index.pop(message_id, None)  # re-indexing moves it to the newest place
        self.message_index[message_id] = thread_id

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


def in_memory(settings: Settings | None = None, *, token_key: str = "test-token-key") -> Container:
    """A Container of fakes, for unit tests and benchmarks."""
    settings = settings or Settings(table_name="memory", bucket_name="memory", gateway_domain="example.test")
    return Container(
        settings=settings,
        raw_store=MemoryRawMailStore(),
        config=MemoryConfigRepository(),
        threads=MemoryThreadRepository(),
        messages=MemoryMessageRepository(),
        counters=MemoryCounterRepository(),
        kv=MemoryKeyValueRepository(),
        events=MemoryEventPublisher(),
        outbound_queue=MemoryQueue(),
        fetch_queue=MemoryQueue(),
        secrets=MemorySecretStore({settings.token_secret_id: token_key}),
    )
