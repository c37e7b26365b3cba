"""DynamoDB adapters: the single table's pynamodb models and the repositories over them.

One table, generic keys (template.yaml declares them; tests/unit/test_models_schema.py checks
the models against it):

| item            | pk                      | sk            | gsi1pk                   | gsi1sk              |
|-----------------|-------------------------|---------------|--------------------------|---------------------|
| alias domain    | domain#<name>           | domain        | domains                  | <name>              |
| alias           | domain#<name>           | alias#<local> | aliases                  | <domain>#<local>    |
| incoming server | server#<name>           | server        | servers#in               | <name>              |
| outgoing server | server#<name>           | server        | servers#out              | <priority>#<name>   |
| thread          | thread#<id>             | thread        | record#<model>#<id>      | thread              |
| Message-ID index| msgid#<message-id>      | msgid         |                          |                     |
| message ledger  | msg#<key>               | msg           | messages#<in|out>        | <received_at>#<key> |
| counter         | counter#<key>           | counter       |                          |                     |
| key-value       | kv#<key>                | kv            | kv#<namespace>           | <key>               |

Items that age carry `ttl` (epoch seconds) for DynamoDB's TTL; because DynamoDB deletes expired
items only eventually (and the emulator never), reads also check `ttl` themselves.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Iterable

from pynamodb.attributes import (
    BooleanAttribute, DiscriminatorAttribute, JSONAttribute, ListAttribute, NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from ..domain import Alias, AliasDomain, IncomingServer, MessageRecord, OutgoingServer, Thread
from ..settings import Settings

GSI1 = "gsi1"


class Gsi1(GlobalSecondaryIndex):
    class Meta:
        index_name = GSI1
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Item(Model):
    """The table. Subclasses are the item kinds, told apart by `kind` (pynamodb discriminator)."""

    class Meta:
        table_name = "mailgate"
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    kind = DiscriminatorAttribute()
    # Epoch seconds; the table's TimeToLiveSpecification names this attribute.
    ttl = NumberAttribute(null=True)
    gsi1 = Gsi1()


class DomainItem(Item, discriminator="domain"):
    name = UnicodeAttribute()
    data = JSONAttribute()


class AliasItem(Item, discriminator="alias"):
    domain = UnicodeAttribute()
    name = UnicodeAttribute()
    model = UnicodeAttribute()
    data = JSONAttribute()


class ServerItem(Item, discriminator="server"):
    name = UnicodeAttribute()
    direction = UnicodeAttribute()  # "in" or "out"
    data = JSONAttribute()


class ThreadItem(Item, discriminator="thread"):
    thread_id = UnicodeAttribute()
    model = UnicodeAttribute(null=True)
    record_id = UnicodeAttribute(null=True)
    subject = UnicodeAttribute(null=True)
    followers = ListAttribute(of=UnicodeAttribute, null=True)
    created_at = NumberAttribute()


class MessageIdItem(Item, discriminator="msgid"):
    message_id = UnicodeAttribute()
    thread_id = UnicodeAttribute()


class MessageItem(Item, discriminator="msg"):
    key = UnicodeAttribute()
    direction = UnicodeAttribute()
    outcome = UnicodeAttribute()
    received_at = NumberAttribute()
    data = JSONAttribute()


class CounterItem(Item, discriminator="counter"):
    count = NumberAttribute(default=0)


class KvItem(Item, discriminator="kv"):
    data = JSONAttribute()
    version = NumberAttribute(default=0)
    active = BooleanAttribute(default=True)


MODELS = (Item, DomainItem, AliasItem, ServerItem, ThreadItem, MessageIdItem, MessageItem, CounterItem, KvItem)


def bind_models(settings: Settings) -> type[Item]:
    """Point every model at the configured table, region and (locally) endpoint."""
    for model in MODELS:
        model.Meta.table_name = settings.table_name
        model.Meta.region = settings.region
        model.Meta.host = settings.endpoint_url
        # pynamodb caches its connection per class; drop it so the new settings take effect.
        model._connection = None
    return Item


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=list))


# --- configuration ---------------------------------------------------------------------------


class DynamoConfigRepository:
    def __init__(self, table: type[Item] = Item) -> None:
        self.table = table

    def get_domain(self, name: str) -> AliasDomain | None:
        try:
            item = DomainItem.get(f"domain#{name.lower()}", "domain")
        except DoesNotExist:
            return None
        return _domain(item.data)

    def list_domains(self) -> list[AliasDomain]:
        return [_domain(i.data) for i in DomainItem.gsi1.query("domains")]

    def put_domain(self, domain: AliasDomain) -> None:
        name = domain.name.lower()
        DomainItem(f"domain#{name}", "domain", gsi1pk="domains", gsi1sk=name, name=name,
                   data=_clean(asdict(domain))).save()

    def delete_domain(self, name: str) -> None:
        DomainItem(f"domain#{name.lower()}", "domain").delete()

    def get_alias(self, domain: str, name: str) -> Alias | None:
        try:
            item = AliasItem.get(f"domain#{domain.lower()}", f"alias#{name.lower()}")
        except DoesNotExist:
            return None
        return Alias(**item.data)

    def list_aliases(self, domain: str | None = None) -> list[Alias]:
        if domain:
            rows = AliasItem.query(f"domain#{domain.lower()}", AliasItem.sk.startswith("alias#"))
        else:
            rows = AliasItem.gsi1.query("aliases")
        return [Alias(**i.data) for i in rows if isinstance(i, AliasItem)]

    def put_alias(self, alias: Alias) -> None:
        d, n = alias.domain.lower(), alias.name.lower()
        AliasItem(f"domain#{d}", f"alias#{n}", gsi1pk="aliases", gsi1sk=f"{d}#{n}", domain=d, name=n,
                  model=alias.model, data=_clean(asdict(alias))).save()

    def delete_alias(self, domain: str, name: str) -> bool:
        try:
            AliasItem(f"domain#{domain.lower()}", f"alias#{name.lower()}").delete(
                condition=Item.pk.exists())
            return True
        except Exception as exc:  # a failed condition means there was nothing to delete
            if _is_condition_failure(exc):
                return False
            raise

    def get_incoming(self, name: str) -> IncomingServer | None:
        item = self._server(name)
        return IncomingServer(**item.data) if item and item.direction == "in" else None

    def list_incoming(self) -> list[IncomingServer]:
        return [IncomingServer(**i.data) for i in ServerItem.gsi1.query("servers#in")]

    def put_incoming(self, server: IncomingServer) -> None:
        ServerItem(f"server#{server.name}", "server", gsi1pk="servers#in", gsi1sk=server.name,
                   name=server.name, direction="in", data=_clean(asdict(server))).save()

    def get_outgoing(self, name: str) -> OutgoingServer | None:
        item = self._server(name)
        return OutgoingServer(**item.data) if item and item.direction == "out" else None

    def list_outgoing(self) -> list[OutgoingServer]:
        return [OutgoingServer(**i.data) for i in ServerItem.gsi1.query("servers#out")]

    def put_outgoing(self, server: OutgoingServer) -> None:
        ServerItem(f"server#{server.name}", "server", gsi1pk="servers#out",
                   gsi1sk=f"{server.priority:06d}#{server.name}", name=server.name, direction="out",
                   data=_clean(asdict(server))).save()

    def delete_server(self, name: str) -> bool:
        try:
            ServerItem(f"server#{name}", "server").delete(condition=Item.pk.exists())
            return True
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise

    @staticmethod
    def _server(name: str) -> ServerItem | None:
        try:
            return ServerItem.get(f"server#{name}", "server")
        except DoesNotExist:
            return None


def _domain(data: dict[str, Any]) -> AliasDomain:
    data = dict(data)
    data["loop_allowlist"] = tuple(data.get("loop_allowlist") or ())
    return AliasDomain(**data)


def _is_condition_failure(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None) or getattr(exc, "cause", None)
    text = f"{cause} {exc}"
    return "ConditionalCheckFailed" in text


# --- threads and the Message-ID index ---------------------------------------------------------


class DynamoThreadRepository:
    def __init__(self, table: type[Item] = Item) -> None:
        self.table = table

    def get_thread(self, thread_id: str) -> Thread | None:
        try:
            return _thread(ThreadItem.get(f"thread#{thread_id}", "thread"))
        except DoesNotExist:
            return None

    def put_thread(self, thread: Thread) -> None:
        gsi = {}
        if thread.model and thread.record_id:
            gsi = {"gsi1pk": f"record#{thread.model}#{thread.record_id}", "gsi1sk": "thread"}
        ThreadItem(f"thread#{thread.thread_id}", "thread", thread_id=thread.thread_id,
                   model=thread.model or None, record_id=thread.record_id or None,
                   subject=thread.subject or None, followers=list(thread.followers),
                   created_at=thread.created_at, **gsi).save()

    def find_thread_for_record(self, model: str, record_id: str) -> Thread | None:
        for item in ThreadItem.gsi1.query(f"record#{model}#{record_id}", limit=1):
            return _thread(item)
        return None

    def add_follower(self, thread_id: str, address: str) -> None:
        thread = self.get_thread(thread_id)
        if thread is None:
            return
        if address.lower() in (f.lower() for f in thread.followers):
            return
        ThreadItem(f"thread#{thread_id}", "thread").update(
            actions=[ThreadItem.followers.set(ThreadItem.followers.append([address]))])

    def index_message_id(self, message_id: str, thread_id: str) -> None:
        MessageIdItem(f"msgid#{message_id}", "msgid", message_id=message_id, thread_id=thread_id).save()

    def threads_for_message_ids(self, message_ids: Iterable[str]) -> dict[str, str]:
        keys = list(dict.fromkeys(m for m in message_ids if m))[:100]
        if not keys:
            return {}
        # One BatchGetItem (up to 100 keys) rather than one read per id.
        return {i.message_id: i.thread_id for i in MessageIdItem.batch_get([(f"msgid#{m}", "msgid") for m in keys])}


def _thread(item: ThreadItem) -> Thread:
    return Thread(thread_id=item.thread_id, model=item.model or "", record_id=item.record_id or "",
                  subject=item.subject or "", followers=list(item.followers or []), created_at=item.created_at)


# --- the message ledger -----------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DynamoMessageRepository:
    def __init__(self, table: type[Item] = Item) -> None:
        self.table = table

    @staticmethod
    def _item(record: MessageRecord) -> MessageItem:
        return MessageItem(f"msg#{record.key}", "msg", gsi1pk=f"messages#{record.direction}",
                           gsi1sk=f"{_iso(record.received_at)}#{record.key}", key=record.key,
                           direction=record.direction, outcome=record.outcome,
                           received_at=record.received_at, data=_clean(asdict(record)))

    def claim(self, record: MessageRecord) -> bool:
        try:
            # Conditional create: two concurrent deliveries of one message cannot both win.
            self._item(record).save(condition=Item.pk.does_not_exist())
            return True
        except PutError as exc:
            if _is_condition_failure(exc):
                return False
            raise

    def get(self, key: str) -> MessageRecord | None:
        try:
            return MessageRecord(**MessageItem.get(f"msg#{key}", "msg").data)
        except DoesNotExist:
            return None

    def update(self, record: MessageRecord) -> None:
        self._item(record).save()

    def list(self, *, limit: int = 50, direction: str | None = None) -> list[MessageRecord]:
        directions = [direction] if direction else ["in", "out"]
        rows: list[MessageRecord] = []
        for d in directions:
            rows += [MessageRecord(**i.data) for i in
                     MessageItem.gsi1.query(f"messages#{d}", scan_index_forward=False, limit=limit)]
        return sorted(rows, key=lambda r: r.received_at, reverse=True)[:limit]


# --- counters and key-value items -------------------------------------------------------------


class DynamoCounterRepository:
    def __init__(self, table: type[Item] = Item, clock=time.time) -> None:
        self.table = table
        self.clock = clock

    def incr(self, key: str, *, window_seconds: int) -> int:
        now = int(self.clock())
        item = CounterItem(f"counter#{key}", "counter")
        try:
            # Count within the live window (ttl in the future) ...
            item.update(actions=[CounterItem.count.add(1)], condition=CounterItem.ttl > now)
            return int(item.count)
        except UpdateError as exc:
            if not _is_condition_failure(exc):
                raise
        # ... or start a new window. A concurrent starter makes us fall back to counting.
        try:
            CounterItem(f"counter#{key}", "counter", count=1, ttl=now + window_seconds).save(
                condition=Item.pk.does_not_exist() | (CounterItem.ttl <= now))
            return 1
        except PutError as exc:
            if not _is_condition_failure(exc):
                raise
            item.update(actions=[CounterItem.count.add(1)])
            return int(item.count)

    def get(self, key: str) -> int:
        try:
            item = CounterItem.get(f"counter#{key}", "counter")
        except DoesNotExist:
            return 0
        return int(item.count) if (item.ttl or 0) > self.clock() else 0


class DynamoKeyValueRepository:
    def __init__(self, table: type[Item] = Item, clock=time.time) -> None:
        self.table = table
        self.clock = clock

    @staticmethod
    def _namespace(key: str) -> str:
        return "kv#" + key.split("#", 1)[0]

    def _live(self, item: KvItem) -> bool:
        return item.ttl is None or item.ttl > self.clock()

    def get_item(self, key: str) -> dict[str, Any] | None:
        try:
            item = KvItem.get(f"kv#{key}", "kv", consistent_read=True)
        except DoesNotExist:
            return None
        if not self._live(item):
            return None
        value = dict(item.data or {})
        value.setdefault("version", int(item.version or 0))
        return value

    def put_item(self, key: str, value: dict[str, Any], *, ttl_seconds: int | None = None,
                 if_absent: bool = False, if_version: int | None = None) -> bool:
        now = self.clock()
        condition = None
        if if_absent:
            # An expired item counts as absent (DynamoDB's TTL deletion is only eventual).
            condition = Item.pk.does_not_exist() | (KvItem.ttl <= int(now))
        if if_version is not None:
            vc = KvItem.version == if_version
            if if_version == 0:
                vc = vc | KvItem.version.does_not_exist()
            condition = vc if condition is None else condition & vc
        data = _clean(value)
        version = int(value.get("version", if_version if if_version is not None else 0) or 0)
        item = KvItem(f"kv#{key}", "kv", gsi1pk=self._namespace(key), gsi1sk=key, data=data,
                      version=version, ttl=int(now + ttl_seconds) if ttl_seconds else None)
        try:
            item.save(condition=condition)
            return True
        except PutError as exc:
            if _is_condition_failure(exc):
                return False
            raise

    def delete_item(self, key: str) -> None:
        KvItem(f"kv#{key}", "kv").delete()

    def scan_prefix(self, prefix: str) -> list[tuple[str, dict[str, Any]]]:
        rows = KvItem.gsi1.query(self._namespace(prefix), KvItem.gsi1sk.startswith(prefix))
        out = []
        for item in rows:
            if self._live(item):
                value = dict(item.data or {})
                value.setdefault("version", int(item.version or 0))
                out.append((item.gsi1sk, value))
        return out
