"""The in-memory fakes and the DynamoDB adapters keep the same contract: the unit tests of the
fetch, outbound and bounce code run on the fakes, the deployed stack on DynamoDB."""

from __future__ import annotations

import pytest

from mailgate.adapters.dynamo import DynamoConfigRepository, DynamoKeyValueRepository
from mailgate.domain import IncomingServer, OutgoingServer
from mailgate_dev.fakes import MemoryConfigRepository, MemoryKeyValueRepository

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["memory", "dynamodb"])
def store(request):
    clock = Clock()
    if request.param == "memory":
        return MemoryKeyValueRepository(clock=clock), MemoryConfigRepository(), clock
    aws = request.getfixturevalue("aws")
    return DynamoKeyValueRepository(clock=clock), DynamoConfigRepository(), clock


def test_conditional_puts_versions_and_expiry_behave_the_same(store):
    kv, _, clock = store
    assert kv.get_item("lease#a") is None
    assert kv.put_item("lease#a", {"owner": "w1", "version": 1}, ttl_seconds=60, if_absent=True)
    assert not kv.put_item("lease#a", {"owner": "w2", "version": 1}, ttl_seconds=60, if_absent=True)
    assert kv.get_item("lease#a") == {"owner": "w1", "version": 1}
    clock.t += 61  # expired: gone for readers and absent for a conditional create
    assert kv.get_item("lease#a") is None
    assert kv.put_item("lease#a", {"owner": "w2", "version": 1}, ttl_seconds=60, if_absent=True)
    # optimistic versions: a missing item is version 0; a stale version loses
    assert kv.put_item("sched#s", {"last": 1, "version": 1}, if_version=0)
    assert not kv.put_item("sched#s", {"last": 2, "version": 1}, if_version=0)
    assert kv.put_item("sched#s", {"last": 2, "version": 2}, if_version=1)
    assert kv.get_item("sched#s") == {"last": 2, "version": 2}
    # an expired item is version 0 for the next writer, as it reads as no item
    assert kv.put_item("bscore#a", {"n": 1, "version": 3}, ttl_seconds=10)
    clock.t += 11
    assert kv.get_item("bscore#a") is None
    assert kv.put_item("bscore#a", {"n": 2, "version": 1}, if_version=0)
    assert kv.get_item("bscore#a") == {"n": 2, "version": 1}
    # a plain value reads back exactly as written (no field added)
    kv.put_item("health#s", {"consecutive_failures": 0, "nested": {"a": [1, 2.5]}})
    assert kv.get_item("health#s") == {"consecutive_failures": 0, "nested": {"a": [1, 2.5]}}


def test_scan_prefix_is_ordered_by_key_and_skips_expired_items(store):
    kv, _, clock = store
    kv.put_item("supp#b.test#z@x", {"n": 1})
    kv.put_item("supp#a.test#y@x", {"n": 2})
    kv.put_item("supp#a.test#old@x", {"n": 3}, ttl_seconds=10)
    kv.put_item("suppx#a.test#w@x", {"n": 4})
    kv.delete_item("missing#key")
    assert [k for k, _ in kv.scan_prefix("supp#")] == ["supp#a.test#old@x", "supp#a.test#y@x", "supp#b.test#z@x"]
    clock.t += 11
    assert [v for _, v in kv.scan_prefix("supp#a.test#")] == [{"n": 2}]


def test_servers_of_both_kinds_share_one_name_space(store):
    _, config, _ = store
    config.put_outgoing(OutgoingServer(name="relay", host="smtp.example.test", port=587, user="u"))
    config.put_incoming(IncomingServer(name="relay", protocol="imap", host="imap.example.test", port=993, user="u"))
    assert config.get_outgoing("relay") is None and config.list_outgoing() == []
    assert config.get_incoming("relay").host == "imap.example.test"


@pytest.fixture(params=["memory", "dynamodb"])
def inbound_store(request):
    """The inbound store and the ledger it writes, as the unit tests and the deployed stack have them."""
    from mailgate_dev import fakes

    c = request.getfixturevalue("aws") if request.param == "dynamodb" else fakes.in_memory()
    return c.inbound, c.messages


def test_a_replay_commits_only_over_the_version_it_read(inbound_store):
    from dataclasses import replace

    from mailgate.domain import MessageRecord, Thread

    store, messages = inbound_store
    plain = dict(new_thread=None, index=[], follower=None, counter=None, contact=None)
    first = MessageRecord("in:mid:v1", "raw/ses/v1", outcome="unknown-recipient")
    assert store.commit(first, **plain)
    assert not store.commit(replace(first, outcome="bounce"), **plain)  # a second delivery changes nothing
    mine, theirs = messages.get(first.key), messages.get(first.key)  # two replays read version 0
    theirs.outcome = "new-record"
    assert store.commit(theirs, **dict(plain, new_thread=Thread("t9", model="crm.lead")), replace=True)
    assert theirs.version == 1 and messages.get(first.key).version == 1
    mine.outcome = "failed"
    assert not store.commit(mine, **plain, replace=True)  # lost the race: nothing written
    assert mine.version == 0 and messages.get(first.key).outcome == "new-record"
    assert not store.commit(MessageRecord("in:mid:gone", "raw/ses/gone"), **plain, replace=True)
    assert messages.get("in:mid:gone") is None  # a replay never creates a record
