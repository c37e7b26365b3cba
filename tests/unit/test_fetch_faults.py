"""Fetch never deletes or skips what it did not store, and one bad message never blocks a mailbox:
the fetch worker against fake mailboxes that answer with temporary errors, leave out UIDs, or
hold a message whose routing never finishes.

The same faults against servers on 127.0.0.1 (scripted POP3/IMAP servers, Dovecot, the AWS
emulator, a worker process that is killed) are in tests/integration/test_fetch_faults.py.
"""

from __future__ import annotations

import pytest

from mailgate.domain import IncomingServer
from mailgate.services import fetch
from mailgate.services.fetch import worker

from tests.unit.test_fetch_service import (  # noqa: F401 - c is a fixture
    Clock, Crash, FakeImap, FakePop, RecordingIngest, c, ledger, make_raw, run)


def pop_server(c, **kw):
    c.config.put_incoming(IncomingServer(name="pop", protocol="pop", host="h", port=995, user="u",
                                         **{"ack": "delete", **kw}))
    c.secrets.put("mailgate/server/pop", "pw")


def test_pop3_retr_refused_with_sys_temp_is_retried_and_never_deleted_unread(c):
    # RFC 3206: [SYS/TEMP] is a temporary failure of the server; the message is still there
    pop_server(c)
    box = FakePop()
    uids = [box.add(make_raw(n)) for n in range(3)]
    box.refuse[uids[1]] = ["-ERR [SYS/TEMP] cannot read the message file now"]
    first = run(c, box, RecordingIngest(), name="pop")
    assert first.status == "ok" and first.fetched == 2 and first.vanished == 0
    assert uids[1] in box.messages  # not deleted: never stored
    assert ledger(c) == ["mid:<m0@example.org>", "mid:<m2@example.org>"]
    second = run(c, box, RecordingIngest(), name="pop")
    assert second.fetched == 1 and box.messages == {}
    assert ledger(c) == ["mid:<m0@example.org>", "mid:<m1@example.org>", "mid:<m2@example.org>"]


def test_pop3_message_gone_from_the_uidl_list_is_forgotten_without_a_trace(c):
    pop_server(c)
    box = FakePop()
    uids = [box.add(make_raw(n)) for n in range(2)]
    box.refuse[uids[0]] = ["-ERR no such message"]
    run(c, box, RecordingIngest(), name="pop")
    del box.messages[uids[0]]  # a person deleted it: the UIDL list confirms it is gone
    results = [run(c, box, RecordingIngest(), name="pop") for _ in range(worker.MAX_FETCH_ATTEMPTS)]
    assert [(r.fetched, r.missing, r.skipped) for r in results] == [(0, 0, 0)] * worker.MAX_FETCH_ATTEMPTS
    assert c.kv.scan_prefix("fetchskip#") == []  # gone, not "skipped"


def test_pop3_message_over_the_size_cap_is_never_deleted_even_with_ack_delete(c):
    pop_server(c, max_message_bytes=1000)
    box = FakePop()
    box.add(make_raw(1))
    big = box.add(make_raw(2, size=5000))
    assert run(c, box, RecordingIngest(), name="pop").skipped == 1
    res = run(c, box, RecordingIngest(), name="pop")  # the next run re-deletes only what was stored
    assert res.fetched == 0
    assert list(box.messages) == [big]
    assert c.kv.get_item(f"fetchskip#pop#uidl-{big}")["reason"] == "too-large"


def test_imap_fetch_answer_that_leaves_out_a_uid_never_moves_the_cursor_past_it(c):
    box = FakeImap()
    for n in range(4):
        box.add(make_raw(n))
    box.leave_out[2] = 1  # the answer to UID FETCH 1:4 says OK but lacks UID 2
    first = run(c, box, RecordingIngest())
    assert first.fetched == 3 and first.vanished == 0 and first.skipped == 0
    assert "\\Seen" not in box.messages[2][1]  # not acknowledged: never stored
    second = run(c, box, RecordingIngest())
    assert second.fetched == 1
    assert ledger(c) == sorted(f"mid:<m{n}@example.org>" for n in range(4))
    assert all("\\Seen" in flags for _, flags in box.messages.values())
    assert run(c, box, RecordingIngest()).fetched == 0


def test_a_uid_left_out_run_after_run_is_recorded_and_skipped_visibly(c):
    c.config.put_incoming(IncomingServer(name="shop", protocol="imap", host="h", port=993, user="u",
                                         ack="delete"))
    box = FakeImap()
    for n in range(3):
        box.add(make_raw(n))
    box.leave_out[2] = 1000
    results = [run(c, box, RecordingIngest()) for _ in range(worker.MAX_FETCH_ATTEMPTS)]
    assert [r.skipped for r in results] == [0] * (worker.MAX_FETCH_ATTEMPTS - 1) + [1]
    assert list(box.messages) == [2]  # left on the server, never deleted unread
    skip = c.kv.get_item("fetchskip#shop#2")
    assert skip["reason"] == "not-returned" and skip["attempts"] == worker.MAX_FETCH_ATTEMPTS
    assert "left out of the UID FETCH answer" in skip["detail"] and "left on the server" in skip["detail"]
    assert fetch.health(c, "shop")["skipped_messages"] == 1
    assert run(c, box, RecordingIngest()).fetched == 0  # skipped: not fetched again
    assert len(ledger(c)) == 2


class Killed:
    """An ingest that never returns for one message: the worker is stopped (Lambda's timeout)."""

    def __init__(self, poison: bytes):
        self.poison, self.inner, self.kills = poison, RecordingIngest(), 0

    def __call__(self, c, raw_key, **kw):
        if self.poison in c.raw_store.get(raw_key):
            self.kills += 1
            raise Crash("the worker was stopped while routing this message")
        return self.inner(c, raw_key, **kw)


@pytest.mark.parametrize("protocol", ["imap", "pop"])
def test_routing_that_never_finishes_is_isolated_and_the_mailbox_moves_on(c, protocol):
    c.config.put_incoming(IncomingServer(name="shop", protocol=protocol, host="h", port=995, user="u",
                                         ack="delete"))
    box = FakePop() if protocol == "pop" else FakeImap()
    for n in range(5):
        box.add(make_raw(n))
    ingest = Killed(b"<m2@example.org>")
    for attempt in range(10):
        try:
            res = run(c, box, ingest)
            break
        except Crash:
            c.kv.delete_item("lease#shop")  # a killed worker's lease; it would expire on its own
    else:
        pytest.fail("the mailbox is blocked: every run dies routing the same message")
    assert ingest.kills == worker.MAX_INGEST_ATTEMPTS
    assert res.status == "ok" and res.failed == 1
    (failed,) = [r for r in c.messages.list() if r.outcome == "failed"]
    assert failed.reason.startswith("routing did not finish within")
    assert f"{worker.MAX_INGEST_ATTEMPTS} attempts" in failed.reason
    assert b"<m2@example.org>" in c.raw_store.get(failed.raw_key)  # kept for a replay
    assert sorted(k for k in ledger(c) if k.startswith("mid:")) == [
        f"mid:<m{n}@example.org>" for n in (0, 1, 3, 4)]
    assert box.messages == {}  # all five stored, so all five deleted on the server
    again = run(c, box, ingest)
    assert again.fetched == 0 and ingest.kills == worker.MAX_INGEST_ATTEMPTS


def test_a_run_stops_between_messages_when_routing_eats_its_time(c, monkeypatch):
    monkeypatch.setattr(worker, "CHUNK_MESSAGES", 50)
    box = FakeImap()
    for n in range(20):
        box.add(make_raw(n))
    clock = Clock(0.0)
    inner = RecordingIngest()
    started = []

    def slow_ingest(c_, raw_key, **kw):
        started.append(clock.t)
        clock.t += 5.0  # each message takes 5 s to route
        return inner(c_, raw_key, **kw)

    res = run(c, box, slow_ingest, clock=clock, deadline=40.0)
    assert res.status == "ok" and res.more and 0 < res.ingested < 20
    assert max(started) + 5.0 <= 40.0  # no routing was started that could not finish in time
    assert sum("\\Seen" in f for _, f in box.messages.values()) == res.ingested
    rest = run(c, box, inner)
    assert res.ingested + rest.ingested == 20 and len(ledger(c)) == 20


def test_pop3_cursor_written_before_skipped_messages_had_a_list_of_their_own_deletes_none_of_them(c):
    # A cursor of the earlier layout kept a message over the size cap among the UIDLs taken,
    # which the next run re-deleted; its fetchskip record tells it apart.
    pop_server(c, max_message_bytes=1000)
    box = FakePop()
    box.add(make_raw(1))
    big = box.add(make_raw(2, size=5000))
    c.kv.put_item("cursor#pop", {"protocol": "pop", "account": "u@h", "seen": [f"uidl-{big}"], "version": 1})
    c.kv.put_item(f"fetchskip#pop#uidl-{big}", {"reason": "too-large", "size": 5100, "at": 1.0, "detail": "..."})
    res = run(c, box, RecordingIngest(), name="pop")
    assert res.fetched == 1 and big in box.messages
    assert run(c, box, RecordingIngest(), name="pop").fetched == 0 and list(box.messages) == [big]
