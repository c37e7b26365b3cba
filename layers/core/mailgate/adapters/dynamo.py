"""DynamoDB adapters: the single table's pynamodb models and the repositories over them.

One table, generic keys (template.yaml declares them; tests/unit/test_models_schema.py checks
the models against it):

| item            | pk                      | sk            | gsi1pk                   | gsi1sk              |
|-----------------|-------------------------|---------------|--------------------------|---------------------|
| alias domain    | domain#<name>           | domain        | domains                  | <name>              |
| alias           | domain#<name>           | alias#<local> | aliases                  | <domain>#<local>    |
| incoming server | server#<name>           | server        | servers#in               | <name>              |
| fetch schedule  | fetchsched#<name>       | fetchsched    | fetchsched#<0-7>         | due#<ms>#<name> / off#<name> |
| outgoing server | server#<name>           | server        | servers#out              | <priority>#<name>   |
| delivery target | target#<name>           | target        | targets                  | <name>              |
| thread          | thread#<id>             | thread        | record#<model>#<id>      | thread              |
| Message-ID index| msgid#<message-id>      | msgid         |                          |                     |
| message ledger  | msg#<key>               | msg           | messages#<in|out>        | <received_at>#<key> |
| counter         | counter#<key>           | counter       |                          |                     |
| key-value       | kv#<key>                | kv            | kv#<namespace>           | <key>               |
| outbox entry    | outbox#<key>#<version>  | outbox        | outbox                   | <written_at>#<owner>|
| routing marker  | routing#<sha(raw key)>  | routing       |                          |                     |

Items that age carry `ttl` (epoch seconds) for DynamoDB's TTL; because DynamoDB deletes expired
items only eventually (and the emulator never), reads also check `ttl` themselves.
"""

from __future__ import annotations

import functools
import json
import time
import zlib
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Iterable

from pynamodb.attributes import (
    BooleanAttribute, DiscriminatorAttribute, JSONAttribute, ListAttribute, NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.exceptions import DoesNotExist, PutError, PynamoDBException, TransactWriteError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from ..bounce_policy import SCORE_PREFIX, SOFT_PREFIX
from ..domain import (Alias, AliasDomain, DeliveryTarget, FetchSchedule, IncomingServer, MessageRecord,
    OutgoingServer, Thread)
from ..effects import HOLD_SECONDS, Effect, owner_of
from ..errors import PermanentError, TransientError
from ..inbound_model import Attempt, DomainCache, LookupKeys, Snapshot, attempt_key, contact_key
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


class TargetItem(Item, discriminator="target"):
    name = UnicodeAttribute()
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
    #: the record's version (a replay's write is conditional on it); absent on old items: 0
    version = NumberAttribute(null=True)


class CounterItem(Item, discriminator="counter"):
    # Named `hits` in Python: `count` would shadow pynamodb's Model.count() class method.
    hits = NumberAttribute(attr_name="count", default=0)


class ScheduleItem(Item, discriminator="fetchsched"):
    """An incoming server's place in the fetch schedule: gsi1 sorts enabled servers by when they
    are due (`due#<epoch ms, 15 digits>#<name>`), disabled ones apart (`off#<name>`)."""

    name = UnicodeAttribute()
    due_ms = NumberAttribute(null=True)
    interval = NumberAttribute(default=5)


class KvItem(Item, discriminator="kv"):
    data = JSONAttribute()
    version = NumberAttribute(default=0)
    active = BooleanAttribute(default=True)


class OutboxItem(Item, discriminator="outbox"):
    """The pending effects of one recorded outcome (ports.Outbox): written in the same
    transaction as the record, removed once every effect is done."""

    owner = UnicodeAttribute()
    written_at = NumberAttribute()
    #: a sweep holds the entry until then (epoch seconds)
    claimed_until = NumberAttribute(null=True)
    data = JSONAttribute()  # {"effects": [Effect.to_dict(), ...]}


class MarkerItem(Item, discriminator="routing"):
    """An attempt at routing a raw message (ports.InboundStore.begin): written before routing,
    removed by the commit; kept with `recorded` when a killed attempt's message was recorded."""

    data = JSONAttribute(null=True)  # what the attempt wrote: started, until, source, recipients
    attempts = NumberAttribute(default=0)
    recorded = UnicodeAttribute(null=True)


MODELS = (Item, DomainItem, AliasItem, ServerItem, ScheduleItem, TargetItem, ThreadItem, MessageIdItem, MessageItem,
          CounterItem, KvItem, OutboxItem, MarkerItem)


def bind_models(settings: Settings, botocore_session=None) -> type[Item]:
    """Point every model at the configured table, region and (locally) endpoint.

    All item kinds share one connection (they are one table), and with `botocore_session` the
    boto3 clients' session too: pynamodb would otherwise make a botocore session per model class
    and load the service models again for each, which a cold start pays for.
    """
    for model in MODELS:
        model.Meta.table_name = settings.table_name
        model.Meta.region = settings.region
        model.Meta.host = settings.endpoint_url
        if model is not Item and "_connection" in model.__dict__:
            delattr(model, "_connection")  # inherit Item's connection
    Item._connection = None
    conn = Item._get_connection()
    if botocore_session is not None:
        conn.connection._local.session = botocore_session
    return Item


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(d, default=list))


def _store_error(exc: PynamoDBException, what: str) -> PermanentError | TransientError:
    """pynamodb's error as the core's. Only a refused request (ValidationException: a key or an
    item too large, say) fails the same way again; throttling, an unreachable or missing table, a
    conflicting transaction may pass, and are retried."""
    code = getattr(exc, "cause_response_code", None) or ""
    cause = getattr(exc, "cause", None) or exc
    if code == "ValidationException" or "ValidationException" in str(exc):
        return PermanentError(f"{what} was refused: {cause}", code="dynamodb-validation")
    return TransientError(f"{what} failed: {code or cause}", code="aws-transient")


def _translating(cls):
    """Every public method of a repository raises the core's errors, not pynamodb's (conditional
    writes that lose a race are return values, handled inside the methods)."""
    for name, fn in list(vars(cls).items()):
        if name.startswith("_") or not callable(fn) or isinstance(fn, (staticmethod, classmethod)):
            continue  # private helpers and static ones (conditions, keys) make no calls

        def wrap(fn=fn, name=name):
            @functools.wraps(fn)
            def translated(*args, **kwargs):
                try:
                    return fn(*args, **kwargs)
                except PynamoDBException as exc:
                    raise _store_error(exc, f"DynamoDB {name}") from exc
            return translated

        setattr(cls, name, wrap())
    return cls


# --- configuration ---------------------------------------------------------------------------


@_translating
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
        item = ServerItem(f"server#{server.name}", "server", gsi1pk="servers#in", gsi1sk=server.name,
                          name=server.name, direction="in", data=_clean(asdict(server)))
        with TransactWrite(connection=Item._get_connection().connection) as tx:
            tx.save(item)  # the server and its schedule entry together: the index never drifts
            tx.save(_schedule_item(server.name, 0 if server.enabled else None, server.interval_minutes))

    def due_incoming(self, now: float) -> list[FetchSchedule]:
        upto = f"due#{_ms(now):015d}#\uffff"
        due = [FetchSchedule(i.name, (i.due_ms or 0) / 1000, int(i.interval or 5))
               for shard in range(SCHEDULE_SHARDS)
               for i in ScheduleItem.gsi1.query(f"{SCHEDULE}#{shard}", ScheduleItem.gsi1sk.between("due#", upto))
               if isinstance(i, ScheduleItem)]
        return sorted(due, key=lambda e: (e.due, e.name))

    def reschedule_incoming(self, entry: FetchSchedule, due: float) -> bool:
        item = ScheduleItem(f"fetchsched#{entry.name}", "fetchsched")
        new = _schedule_item(entry.name, due, entry.interval_minutes)
        try:
            item.update(actions=[ScheduleItem.gsi1sk.set(new.gsi1sk), ScheduleItem.due_ms.set(new.due_ms)],
                        condition=ScheduleItem.due_ms == _ms(entry.due))
            return True
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return False
            raise

    def count_disabled_incoming(self) -> int:
        return sum(ScheduleItem.gsi1.count(f"{SCHEDULE}#{shard}", ScheduleItem.gsi1sk.startswith("off#"))
                   for shard in range(SCHEDULE_SHARDS))

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
        ScheduleItem(f"fetchsched#{name}", "fetchsched").delete()
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

    def get_target(self, name: str) -> DeliveryTarget | None:
        try:
            return DeliveryTarget(**TargetItem.get(f"target#{name}", "target").data)
        except DoesNotExist:
            return None

    def list_targets(self) -> list[DeliveryTarget]:
        return [DeliveryTarget(**i.data) for i in TargetItem.gsi1.query("targets")]

    def put_target(self, target: DeliveryTarget) -> None:
        TargetItem(f"target#{target.name}", "target", gsi1pk="targets", gsi1sk=target.name, name=target.name,
                   data=_clean(asdict(target))).save()

    def delete_target(self, name: str) -> bool:
        try:
            TargetItem(f"target#{name}", "target").delete(condition=Item.pk.exists())
            return True
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise


SCHEDULE = "fetchsched"
#: The schedule index is spread over this many gsi1 partitions: a dispatch moves every due entry
#: at once, and one partition key of an index takes about 1,000 writes a second.
SCHEDULE_SHARDS = 8


def _ms(t: float) -> int:
    return max(0, int(round(t * 1000)))


def _schedule_item(name: str, due: float | None, interval: int) -> ScheduleItem:
    """A server's schedule entry: due at `due` (epoch seconds), or disabled (None)."""
    sort = f"off#{name}" if due is None else f"due#{_ms(due):015d}#{name}"
    shard = zlib.crc32(name.encode()) % SCHEDULE_SHARDS
    return ScheduleItem(f"fetchsched#{name}", "fetchsched", gsi1pk=f"{SCHEDULE}#{shard}", gsi1sk=sort, name=name,
                        due_ms=None if due is None else _ms(due), interval=max(1, int(interval or 5)))


def _domain(data: dict[str, Any]) -> AliasDomain:
    data = dict(data)
    data["loop_allowlist"] = tuple(data.get("loop_allowlist") or ())
    return AliasDomain(**data)


def _is_condition_failure(exc: Exception) -> bool:
    cause = getattr(exc, "cause_response_code", None) or getattr(exc, "cause", None)
    text = f"{cause} {exc}"
    return "ConditionalCheckFailed" in text


# --- threads and the Message-ID index ---------------------------------------------------------


@_translating
class DynamoThreadRepository:
    def __init__(self, table: type[Item] = Item) -> None:
        self.table = table

    def get_thread(self, thread_id: str) -> Thread | None:
        try:
            return _thread(ThreadItem.get(f"thread#{thread_id}", "thread"))
        except DoesNotExist:
            return None

    @staticmethod
    def _thread_item(thread: Thread) -> ThreadItem:
        gsi = {}
        if thread.model and thread.record_id:
            gsi = {"gsi1pk": f"record#{thread.model}#{thread.record_id}", "gsi1sk": "thread"}
        return ThreadItem(f"thread#{thread.thread_id}", "thread", thread_id=thread.thread_id,
                          model=thread.model or None, record_id=thread.record_id or None,
                          subject=thread.subject or None, followers=list(thread.followers),
                          created_at=thread.created_at, **gsi)

    def put_thread(self, thread: Thread) -> None:
        self._thread_item(thread).save()

    def find_thread_for_record(self, model: str, record_id: str) -> Thread | None:
        for item in ThreadItem.gsi1.query(f"record#{model}#{record_id}", limit=1):
            return _thread(item)
        return None

    def link_record(self, thread_id: str, model: str, record_id: str) -> bool:
        # An update of the link's fields only, on condition that the thread exists and is bound to
        # no other record: a follower written meanwhile stays, and two links cannot both win.
        t = ThreadItem
        try:
            t(f"thread#{thread_id}", "thread").update(
                actions=[t.model.set(model), t.record_id.set(record_id),
                         t.gsi1pk.set(f"record#{model}#{record_id}"), t.gsi1sk.set("thread")],
                condition=t.pk.exists() & (t.record_id.does_not_exist()
                                           | ((t.record_id == record_id) & (t.model == model))))
            return True
        except Exception as exc:
            if _is_condition_failure(exc):
                return False
            raise

    def add_follower(self, thread_id: str, address: str) -> None:
        thread = self.get_thread(thread_id)
        if thread is None:
            return
        if address.lower() in (f.lower() for f in thread.followers):
            return
        ThreadItem(f"thread#{thread_id}", "thread").update(
            actions=[ThreadItem.followers.set(ThreadItem.followers.append([address]))])

    def index_message_id(self, message_id: str, thread_id: str) -> None:
        MessageIdItem(f"msgid#{message_id}", "msgid").update(actions=index_actions(message_id, thread_id))

    def recent_message_ids(self, thread_id: str, limit: int = 32) -> list[str]:
        rows = MessageIdItem.gsi1.query(f"thread-msgs#{thread_id}", scan_index_forward=False, limit=limit)
        return [i.message_id for i in rows][::-1]

    def threads_for_message_ids(self, message_ids: Iterable[str]) -> dict[str, str]:
        keys = list(dict.fromkeys(m for m in message_ids if m))[:100]
        if not keys:
            return {}
        # One BatchGetItem (up to 100 keys) rather than one read per id.
        return {i.message_id: i.thread_id for i in MessageIdItem.batch_get([(f"msgid#{m}", "msgid") for m in keys])}


def index_actions(message_id: str, thread_id: str, when: float | None = None) -> list:
    """The update that indexes `message_id` in `thread_id` unless it is indexed already.

    First writer wins: a Message-ID is no secret (everyone a message was copied to has read it),
    so a later message carrying a known one, a stranger's say, must not re-point the replies that
    name it (In-Reply-To, References) to its own thread. `if_not_exists` on every field makes the
    write an update that never fails, so it can join the inbound commit's transaction, where a
    failed condition would cancel the whole commit. gsi1 lists a thread's message ids by time
    (References of a reply)."""
    # The sort key only orders by time; its tail is cut so that a long non-ASCII Message-ID (up
    # to 500 characters, 2,000 bytes) stays under DynamoDB's 1,024-byte limit for sort keys.
    tail = message_id.encode("utf-8", "replace")[:900].decode("utf-8", "ignore")
    m = MessageIdItem
    # the key holds only this kind of item, so its discriminator can be set every time
    return [m.kind.set(MessageIdItem), m.message_id.set(m.message_id | message_id),
            m.thread_id.set(m.thread_id | thread_id), m.gsi1pk.set(m.gsi1pk | f"thread-msgs#{thread_id}"),
            m.gsi1sk.set(m.gsi1sk | f"{_iso(when or time.time())}#{tail}")]


def _thread(item: ThreadItem) -> Thread:
    return Thread(thread_id=item.thread_id, model=item.model or "", record_id=item.record_id or "",
                  subject=item.subject or "", followers=list(item.followers or []), created_at=item.created_at)


# --- the message ledger -----------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: A ledger item keeps the whole record as one JSON string, and DynamoDB items are at most 400 KB.
MAX_RECORD_JSON = 350_000


def _fit_record(data: dict[str, Any]) -> dict[str, Any]:
    """The record as stored: when its JSON would not fit in an item, the bulkiest lists of
    `detail` (a thousand attachments, say) keep their first entries and the rest are counted in
    detail["omitted"]; other bulky values are dropped, named there. The record in hand (and the
    events made from it) keep everything; attachments themselves are in S3 regardless."""
    excess = len(json.dumps(data)) - MAX_RECORD_JSON
    detail = data.get("detail")
    if excess <= 0 or not isinstance(detail, dict):
        return data
    omitted: dict[str, Any] = {}
    sizes = {name: len(json.dumps(value)) for name, value in detail.items()}
    for name in sorted(sizes, key=sizes.get, reverse=True):
        if excess <= 0:
            break
        value, before = detail[name], sizes[name]
        if isinstance(value, list):
            budget, used, n = before - excess, 2, 0
            for entry in value:
                used += len(json.dumps(entry)) + 2
                if used > budget:
                    break
                n += 1
            detail[name] = value[:n]
            omitted[name] = f"{len(value) - n} of {len(value)} entries not kept (the ledger item would exceed 400 KB)"
        else:
            detail[name] = None
            omitted[name] = f"{before} bytes not kept (the ledger item would exceed 400 KB)"
        excess -= before - len(json.dumps(detail[name]))
    detail["omitted"] = omitted
    return data


@_translating
class DynamoMessageRepository:
    def __init__(self, table: type[Item] = Item) -> None:
        self.table = table

    @staticmethod
    def _item(record: MessageRecord) -> MessageItem:
        return MessageItem(f"msg#{record.key}", "msg", gsi1pk=f"messages#{record.direction}",
                           gsi1sk=f"{_iso(record.received_at)}#{record.key}", key=record.key,
                           direction=record.direction, outcome=record.outcome,
                           received_at=record.received_at, data=_fit_record(_clean(asdict(record))),
                           version=record.version)

    @staticmethod
    def at_version(version: int):
        """The condition "the stored record is still at `version`" (an item without one is at 0)."""
        condition = Item.pk.exists() & (MessageItem.version == version)
        if version == 0:
            condition = condition | (Item.pk.exists() & MessageItem.version.does_not_exist())
        return condition

    def claim(self, record: MessageRecord) -> bool:
        try:
            # Conditional create: two concurrent deliveries of one message cannot both win.
            self._item(record).save(condition=Item.pk.does_not_exist())
            return True
        except PutError as exc:
            if _is_condition_failure(exc):
                return False
            raise

    def replace(self, record: MessageRecord, *, version: int) -> bool:
        try:
            self._item(record).save(condition=self.at_version(version))
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


@_translating
class DynamoCounterRepository:
    def __init__(self, table: type[Item] = Item, clock=time.time) -> None:
        self.table = table
        self.clock = clock

    def incr(self, key: str, *, window_seconds: int) -> int:
        now = int(self.clock())
        item = CounterItem(f"counter#{key}", "counter")
        try:
            # Count within the live window (ttl in the future) ...
            item.update(actions=[CounterItem.hits.add(1)], condition=CounterItem.ttl > now)
            return int(item.hits)
        except UpdateError as exc:
            if not _is_condition_failure(exc):
                raise
        # ... or start a new window. A concurrent starter makes us fall back to counting.
        try:
            CounterItem(f"counter#{key}", "counter", hits=1, ttl=now + window_seconds).save(
                condition=Item.pk.does_not_exist() | (CounterItem.ttl <= now))
            return 1
        except PutError as exc:
            if not _is_condition_failure(exc):
                raise
            item.update(actions=[CounterItem.hits.add(1)])
            return int(item.hits)

    def get(self, key: str) -> int:
        try:
            item = CounterItem.get(f"counter#{key}", "counter")
        except DoesNotExist:
            return 0
        return int(item.hits) if (item.ttl or 0) > self.clock() else 0


@_translating
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
        return self._value(item)

    @staticmethod
    def _value(item: KvItem) -> dict[str, Any]:
        """The value as written (as the in-memory fake returns it); the version the conditions
        compare with is added only when it is not 0 and the value does not carry it."""
        value = dict(item.data or {})
        if "version" not in value and item.version:
            value["version"] = int(item.version)
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
                # Version 0 is "no item"; an expired item reads as none (as in the fake), so it counts too.
                vc = vc | KvItem.version.does_not_exist() | Item.pk.does_not_exist() | (KvItem.ttl <= int(now))
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
                out.append((item.gsi1sk, self._value(item)))
        return out


# --- the inbound path's store: one batched read, one transaction ------------------------------


def _window_bucket(key: str, window: int, now: float) -> tuple[str, str, float]:
    """The current and previous fixed-window items of a counter, and how far into the window we are.

    Counting over fixed windows and weighting the previous one by the part of it still inside a
    sliding window (count = current + previous * (1 - elapsed)) approximates "N in the last
    `window` seconds" without conditional writes, so the increment can join the message's
    transaction; and it does not depend on DynamoDB's TTL deletion, which is only eventual.
    """
    # A domain saved with a 0-minute window (the model does not forbid it) counts per second
    # rather than dividing by zero and failing every message's routing.
    window = max(int(window), 1)
    bucket = int(now // window)
    return (f"counter#{key}#{bucket}", f"counter#{key}#{bucket - 1}", (now % window) / window)


#: how long an attempt marker outlives its deadline (DynamoDB's TTL removes it after that)
MARKER_DAYS = 7


class DynamoInboundStore:
    """`ports.InboundStore` over the table: `load` is one BatchGetItem (plus one for threads that
    only the Message-ID index or a forced thread names), `commit` is one TransactWriteItems whose
    first item is the message record, conditional on its key being new (or, for a replay, on its
    version).
    """

    def __init__(self, config, *, gateway_domain: str = "", window_seconds: int = 120 * 60, clock=time.time) -> None:
        self.clock = clock
        self.window = window_seconds
        self.gateway_domain = gateway_domain
        self.domains = DomainCache(config.list_domains)

    def begin(self, raw_key: str, *, until: float, facts: dict[str, Any]) -> Attempt:
        """One UpdateItem on the marker: counts the attempt, returns the old marker."""
        key = attempt_key(raw_key)
        now = self.clock()
        data = _clean({**facts, "raw_key": raw_key, "started": now, "until": until})
        try:
            answer = MarkerItem._get_connection().update_item(f"routing#{key}", "routing", actions=[
                MarkerItem.data.set(data), MarkerItem.attempts.add(1), MarkerItem.kind.set(MarkerItem),
                # kept a week past its deadline at most: by then the message is recorded either way
                MarkerItem.ttl.set(int(until + MARKER_DAYS * 86400)),
            ], return_values="ALL_OLD")
        except PynamoDBException as exc:
            raise _store_error(exc, "marking the start of routing") from exc
        old = answer.get("Attributes")
        previous = MarkerItem.from_raw_data(old) if old else None
        number = int(previous.attempts or 0) + 1 if previous is not None else 1
        recorded = (previous.recorded or "") if previous is not None else ""
        killed = None
        if previous is not None and not recorded and float((previous.data or {}).get("until", 0)) < now:
            killed = {**(previous.data or {}), "attempts": number - 1}
        return Attempt(key=key, raw_key=raw_key, number=number, until=until, killed=killed, recorded=recorded)

    def abandon(self, attempt: Attempt) -> None:
        if attempt.recorded:
            return  # it says where the message is: kept
        try:
            MarkerItem(f"routing#{attempt.key}", "routing").delete()
        except PynamoDBException as exc:
            raise _store_error(exc, "removing the routing marker") from exc

    def load(self, keys: LookupKeys) -> Snapshot:
        snap = Snapshot(domains=self.domains(), gateway_domain=self.gateway_domain)
        now = self.clock()
        wanted: list[tuple[str, str]] = []
        wanted += [(f"domain#{d.lower()}", f"alias#{n.lower()}") for d, n in keys.aliases]
        wanted += [(f"msgid#{m}", "msgid") for m in keys.message_ids]
        wanted += [(f"thread#{t}", "thread") for t in keys.thread_ids]
        contacts = {f"kv#{contact_key(a)}": a.lower() for a in keys.contacts}
        wanted += [(k, "kv") for k in contacts]
        windows = {}
        for key in keys.counter_keys:
            cur, prev, elapsed = _window_bucket(key, self._window_for(key), now)
            windows[key] = (cur, prev, elapsed)
            wanted += [(cur, "counter"), (prev, "counter")]
        # Whether the sender has a bounce score to reset (bounce_policy.note_inbound_from), read
        # in the same batch so that the common path does not pay two queries for it.
        bounce_keys = {f"kv#{p}{a.lower()}#{d}": a.lower() for a in keys.contacts for d in snap.domains
                       for p in (SCORE_PREFIX, SOFT_PREFIX)}
        wanted += [(k, "kv") for k in bounce_keys]
        wanted += [(f"msg#{k}", "msg") for k in keys.ledger_keys]
        snap.bounce_state = {a.lower(): False for a in keys.contacts}
        got = self._batch(wanted)
        for (pk, sk), item in got.items():
            if pk in bounce_keys:
                snap.bounce_state[bounce_keys[pk]] = True
            if isinstance(item, MessageItem):
                snap.recorded[item.key] = str((item.data or {}).get("digest") or "")
            elif isinstance(item, AliasItem):
                snap.aliases[(item.domain, item.name)] = Alias(**item.data)
            elif isinstance(item, MessageIdItem):
                snap.index[item.message_id] = item.thread_id
            elif isinstance(item, ThreadItem):
                snap.threads[item.thread_id] = _thread(item)
            elif isinstance(item, KvItem) and pk in contacts and self._live(item, now):
                snap.known_senders.add(contacts[pk])
        for key, (cur, prev, elapsed) in windows.items():
            current = got.get((cur, "counter"))
            previous = got.get((prev, "counter"))
            snap.counts[key] = int((current.hits if current else 0)
                                   + (previous.hits if previous else 0) * (1 - elapsed))
        self._second_read(snap)
        return snap

    def _second_read(self, snap: Snapshot) -> None:
        """The threads named only by what the first read found."""
        more = [t for t in list(snap.index.values()) +
                [a.force_thread_id for a in snap.aliases.values() if a.force_thread_id]
                if t and t not in snap.threads]
        if more:
            for item in self._batch([(f"thread#{t}", "thread") for t in dict.fromkeys(more)]).values():
                if isinstance(item, ThreadItem):
                    snap.threads[item.thread_id] = _thread(item)

    def _window_for(self, key: str) -> int:
        """Loop counter keys end with the alias address; its domain sets the window."""
        domain = self.domains().get(key.rpartition("@")[2].lower())
        return int(domain.loop_window_minutes * 60) if domain else self.window

    @staticmethod
    def _live(item: Item, now: float) -> bool:
        return item.ttl is None or item.ttl > now

    @staticmethod
    def _batch(keys: list[tuple[str, str]]) -> dict[tuple[str, str], Item]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        # pynamodb sends BatchGetItem in chunks of 100 and retries unprocessed keys.
        try:
            return {(i.pk, i.sk): i for i in Item.batch_get(keys)}
        except PynamoDBException as exc:
            # a key the table refuses is the message's fault (recorded as failed); throttled or
            # unreachable, the invocation is retried (services.inbound re-raises TransientError)
            raise _store_error(exc, "reading the routing facts") from exc

    def commit(self, record: MessageRecord, *, new_thread, index, follower, counter, contact,
               replace: bool = False, effects: list[Effect] = (), attempt: Attempt | None = None) -> bool:
        now = self.clock()
        conn = Item._get_connection().connection  # the table's client: no new session per message
        version = record.version
        if replace:
            record.version += 1
        try:
            with TransactWrite(connection=conn) as tx:
                # First: the record, only if new (or still at the version read). A duplicate
                # delivery (or a concurrent replay) cancels the whole transaction.
                condition = DynamoMessageRepository.at_version(version) if replace else Item.pk.does_not_exist()
                tx.save(DynamoMessageRepository._item(record), condition=condition)
                self._route_items(tx, now, new_thread, index, follower, counter, contact)
                if effects:  # the outbox entry: the effects are pending exactly when the outcome is recorded,
                    # held by this invocation until its end (a concurrent duplicate leaves them to it)
                    held = attempt.until if attempt is not None else now + HOLD_SECONDS
                    tx.save(DynamoOutbox.item(owner_of(record.key, record.version), effects, now, held))
                if attempt is not None and attempt.killed is not None:
                    tx.update(MarkerItem(f"routing#{attempt.key}", "routing"),
                              actions=[MarkerItem.recorded.set(record.key)])
                elif attempt is not None:
                    tx.delete(MarkerItem(f"routing#{attempt.key}", "routing"))
        except TransactWriteError as exc:
            record.version = version
            # The record is the only item with a condition (pynamodb sends deletes before puts,
            # so its reason is not always the first).
            reasons = getattr(exc, "cancellation_reasons", None) or []
            if any(getattr(r, "code", "") == "ConditionalCheckFailed" for r in reasons if r is not None):
                return False
            # The items themselves refused (a key or an item too large): a retry would fail the
            # same way, so the caller records the message as failed instead.
            raise _store_error(exc, f"recording message {record.key}") from exc
        return True

    @staticmethod
    def _route_items(tx: TransactWrite, now: float, new_thread, index, follower, counter, contact) -> None:
        if new_thread is not None:
            tx.save(DynamoThreadRepository._thread_item(new_thread))
        for message_id, thread_id in dict(index).items():
            tx.update(MessageIdItem(f"msgid#{message_id}", "msgid"), actions=index_actions(message_id, thread_id, now))
        if follower is not None and (new_thread is None or new_thread.thread_id != follower[0]):
            thread_id, address = follower
            tx.update(ThreadItem(f"thread#{thread_id}", "thread"), actions=[
                ThreadItem.followers.set(ThreadItem.followers.append([address]))])
        if counter is not None:
            key, window = counter
            cur, _, _ = _window_bucket(key, window, now)
            # An update creates the item when missing: set the discriminator too, or
            # pynamodb would read it back as a bare Item.
            tx.update(CounterItem(cur, "counter"), actions=[
                CounterItem.hits.add(1), CounterItem.ttl.set(int(now + 2 * window)),
                CounterItem.kind.set(CounterItem)])
        if contact:
            k = contact_key(contact)
            tx.save(KvItem(f"kv#{k}", "kv", gsi1pk=DynamoKeyValueRepository._namespace(k), gsi1sk=k,
                           data={"address": contact, "since": now}, version=0))


# --- the outbox: effects pending until done ----------------------------------------------------


@_translating
class DynamoOutbox:
    """`ports.Outbox` over the table: one item per recorded outcome with pending effects, listed
    oldest first by gsi1 (partition `outbox`) for the sweep."""

    def __init__(self, table: type[Item] = Item, clock=time.time) -> None:
        self.table = table
        self.clock = clock

    @staticmethod
    def item(owner: str, effects: list[Effect], written_at: float, held_until: float | None = None) -> OutboxItem:
        return OutboxItem(f"outbox#{owner}", "outbox", gsi1pk="outbox", gsi1sk=f"{_iso(written_at)}#{owner}",
                          owner=owner, written_at=written_at, claimed_until=held_until,
                          data={"effects": [e.to_dict() for e in effects]})

    def write(self, record: MessageRecord, owner: str, effects: list[Effect]) -> None:
        if not effects:
            DynamoMessageRepository._item(record).save()
            return
        conn = Item._get_connection().connection
        try:
            with TransactWrite(connection=conn) as tx:
                tx.save(DynamoMessageRepository._item(record))
                tx.save(self.item(owner, effects, self.clock()))
        except TransactWriteError as exc:
            raise _store_error(exc, f"recording message {record.key}") from exc

    def pending(self, owner: str) -> list[Effect]:
        try:
            item = OutboxItem.get(f"outbox#{owner}", "outbox", consistent_read=True)
        except DoesNotExist:
            return []
        return [Effect.from_dict(e) for e in (item.data or {}).get("effects", [])]

    def settle(self, owner: str, remaining: list[Effect]) -> None:
        item = OutboxItem(f"outbox#{owner}", "outbox")
        if not remaining:
            item.delete()
            return
        try:
            item.update(actions=[OutboxItem.data.set({"effects": [e.to_dict() for e in remaining]}),
                                 OutboxItem.claimed_until.remove()], condition=Item.pk.exists())
        except UpdateError as exc:
            if not _is_condition_failure(exc):
                raise  # gone meanwhile: another run finished them all

    def due(self, *, older_than: float, limit: int = 100) -> list[str]:
        before = self.clock() - older_than
        rows = OutboxItem.gsi1.query("outbox", OutboxItem.gsi1sk < _iso(before), limit=limit)
        return [i.owner for i in rows if isinstance(i, OutboxItem)][:limit]

    def claim(self, owner: str, *, seconds: float) -> bool:
        now = self.clock()
        try:
            OutboxItem(f"outbox#{owner}", "outbox").update(
                actions=[OutboxItem.claimed_until.set(now + seconds)],
                condition=Item.pk.exists() & (OutboxItem.claimed_until.does_not_exist()
                                              | (OutboxItem.claimed_until < now)))
            return True
        except UpdateError as exc:
            if _is_condition_failure(exc):
                return False
            raise
