"""The fetch worker's guarantees, against a fake mailbox and the in-memory ports."""

from __future__ import annotations

import json
import pathlib
import time

import pytest

from mailgate.domain import IncomingServer, MessageRecord
from mailgate.entrypoints import fetch_worker
from mailgate.errors import PermanentError, TransientError
from mailgate.ports import MailItem
from mailgate.services import fetch
from mailgate_dev import fakes


def make_raw(n: int, *, size: int = 0, attachment: bool = False) -> bytes:
    body = f"message number {n}\r\n" + ("x" * size)
    if attachment:
        return (f"From: a@example.org\r\nTo: b@example.net\r\nSubject: m{n}\r\n"
                f"Message-ID: <m{n}@example.org>\r\nMIME-Version: 1.0\r\n"
                'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
                "--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
                '--B\r\nContent-Type: application/pdf; name="big.pdf"\r\n'
                'Content-Disposition: attachment; filename="big.pdf"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--B--\r\n").encode()
    return (f"From: a@example.org\r\nTo: b@example.net\r\nSubject: m{n}\r\n"
            f"Message-ID: <m{n}@example.org>\r\n\r\n{body}").encode()


class Crash(BaseException):
    """Stands for the process dying at a chosen point (no `except Exception` can swallow it)."""


class FakeImap:
    """A folder with UIDs, flags and UIDVALIDITY; records every command the worker sends."""

    protocol = "imap"

    def __init__(self, uidvalidity: int = 100):
        self.uidvalidity = uidvalidity
        self.messages: dict[int, tuple[bytes, set[str]]] = {}
        self.next_uid = 1
        self.calls: list[tuple] = []
        self.crash_on_ack = 0
        self.vanish_on_fetch: set[int] = set()
        self.exists = 0
        self.on_fetch = None
        self.leave_out: dict[int, int] = {}  # UID -> how many more UID FETCH answers leave it out

    def add(self, raw: bytes, flags=()) -> int:
        uid = self.next_uid
        self.next_uid += 1
        self.messages[uid] = (raw, set(flags))
        return uid

    def reset(self, uidvalidity: int) -> None:
        """The folder was recreated: same messages, new UIDVALIDITY, UIDs from 1."""
        old = [self.messages[u] for u in sorted(self.messages)]
        self.uidvalidity, self.messages, self.next_uid = uidvalidity, {}, 1
        for raw, flags in old:
            self.add(raw, flags)

    # the Mailbox protocol
    def connect(self): self.calls.append(("connect",))
    def login(self): self.calls.append(("login",))

    def select(self, readonly=False):
        self.exists = len(self.messages)
        return self.exists

    def open(self):
        self.connect()
        self.login()
        self.select()

    def list_since(self, last_uid):
        self.calls.append(("list", last_uid))
        return [MailItem(u, str(u), len(self.messages[u][0])) for u in sorted(self.messages) if u > last_uid]

    def fetch(self, items):
        self.calls.append(("fetch", [i.ref for i in items]))
        if self.on_fetch:
            self.on_fetch()
        for i in items:
            if i.ref in self.vanish_on_fetch:
                self.messages.pop(i.ref, None)
            if self.leave_out.get(i.ref, 0) > 0:
                self.leave_out[i.ref] -= 1  # a server bug: the answer says OK but lacks this UID
                continue
            if i.ref in self.messages:
                yield i, self.messages[i.ref][0]

    def missing(self, items):
        """UID SEARCH: None for what is gone, the reason for what is still there."""
        self.calls.append(("missing", [i.ref for i in items]))
        return {i.ref: None if i.ref not in self.messages else "left out of the UID FETCH answer"
                for i in items}

    def ack(self, items, mode, move_to=""):
        if self.crash_on_ack:
            self.crash_on_ack -= 1
            raise Crash("killed between store and ack")
        self.calls.append(("ack", mode, [i.ref for i in items]))
        for i in items:
            if mode == "seen" and i.ref in self.messages:
                self.messages[i.ref][1].add("\\Seen")
            if mode in ("delete", "move"):
                self.messages.pop(i.ref, None)

    def set_timeout(self, seconds): pass
    def close(self): self.calls.append(("close",))


class FakePop(FakeImap):
    protocol = "pop"

    def __init__(self):
        super().__init__()
        self.committed_deletes: list[str] = []
        self.pending: list[int] = []
        self.refuse: dict[int, list[str]] = {}  # UID -> the next RETR answers (-ERR ...) for it
        self.refused: dict[int, str] = {}

    def list_all(self):
        return [MailItem(n, f"uidl-{u}", len(self.messages[u][0]))
                for n, u in enumerate(sorted(self.messages), start=1)]

    def fetch(self, items):
        order = sorted(self.messages)
        self.calls.append(("fetch", [i.ref for i in items]))
        for i in items:
            uid = order[i.ref - 1]
            if self.refuse.get(uid):
                self.refused[i.ref] = self.refuse[uid].pop(0)
                continue
            yield i, self.messages[uid][0]

    def missing(self, items):
        # RFC 1939 section 8: the maildrop is locked for the session, nothing vanishes meanwhile
        return {i.ref: self.refused.get(i.ref, "not returned") for i in items}

    def ack(self, items, mode, move_to=""):
        self.calls.append(("ack", mode, [i.ident for i in items]))
        if mode == "delete":
            self.pending += [int(i.ident.split("-")[1]) for i in items]

    def commit(self):
        for u in self.pending:
            self.messages.pop(u, None)
        self.pending = []


class RecordingIngest:
    """Stands for mailgate.services.inbound.ingest: dedups by Message-ID like the real one."""

    def __init__(self, fail_for: dict[str, Exception] | None = None):
        self.calls: list[tuple[str, str]] = []
        self.deadlines: list[float | None] = []
        self.fail_for = fail_for or {}

    def __call__(self, c, raw_key, *, source, envelope_recipients, verdicts=None, deadline=None, raw=None):
        raw = c.raw_store.get(raw_key)  # the raw bytes must be stored before ingest is called
        self.calls.append((raw_key, source))
        self.deadlines.append(deadline)
        mid = next((l.split(b":", 1)[1].strip().decode() for l in raw.split(b"\r\n")
                    if l.lower().startswith(b"message-id:")), raw_key)
        if mid in self.fail_for:
            raise self.fail_for[mid]
        record = MessageRecord(key=f"mid:{mid}", raw_key=raw_key, source=source, message_id=mid)
        c.messages.claim(record)
        return record


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture
def c():
    c = fakes.in_memory()
    c.config.put_incoming(IncomingServer(name="shop", protocol="imap", host="imap.example.org",
                                         port=993, user="shop", ack="seen"))
    c.secrets.put("mailgate/server/shop", "pw")
    return c


def run(c, box, ingest, *, name="shop", max_messages=1000, deadline=None, clock=None, now=None):
    clock = clock or Clock()
    return fetch.fetch_mailbox(c, name, deadline=deadline if deadline is not None else clock() + 300,
                               max_messages=max_messages, mailbox_factory=lambda s, p: box,
                               ingest=ingest, clock=clock, now=now or Clock(1_700_000_000))


def ledger(c):
    return sorted(r.key for r in c.messages.list(limit=100000))


def test_new_mail_is_stored_before_routing_and_acknowledged_only_after():
    c = fakes.in_memory()
    c.config.put_incoming(IncomingServer(name="shop", protocol="imap", host="h", port=993, user="u", ack="seen"))
    c.secrets.put("mailgate/server/shop", "pw")
    order = []
    put = c.raw_store.put
    c.raw_store.put = lambda key, data, **kw: (order.append(("store", key)), put(key, data, **kw))[1]
    box = FakeImap()
    for n in range(3):
        box.add(make_raw(n))
    ack = box.ack
    box.ack = lambda items, mode, move_to="": (order.append(("ack", mode)), ack(items, mode, move_to))[1]
    ingest = RecordingIngest()
    inner = ingest.__call__
    res = run(c, box, lambda c_, k, **kw: (order.append(("ingest", k)), inner(c_, k, **kw))[1])

    assert res.status == "ok" and res.fetched == 3 and res.stored == 3 and res.acked == 3
    kinds = [o[0] for o in order]
    assert kinds == ["store", "store", "store", "ingest", "ingest", "ingest", "ack"]
    routed = [o[1] for o in order if o[0] == "ingest"]
    assert [c.raw_store.get(k) for k in routed] == [make_raw(0), make_raw(1), make_raw(2)]  # in order
    assert all("\\Seen" in flags for _, flags in box.messages.values())
    assert all(k.startswith("raw/fetch/") and k.endswith(".eml") for k in c.raw_store.objects)
    assert ledger(c) == ["mid:<m0@example.org>", "mid:<m1@example.org>", "mid:<m2@example.org>"]


def test_crash_between_store_and_ack_neither_loses_nor_duplicates(c):
    box = FakeImap()
    for n in range(5):
        box.add(make_raw(n))
    box.crash_on_ack = 1
    ingest = RecordingIngest()
    with pytest.raises(Crash):
        run(c, box, ingest)
    assert len(c.raw_store.objects) == 5  # stored durably before the crash
    assert not any("\\Seen" in f for _, f in box.messages.values())  # nothing acknowledged

    res = run(c, box, ingest)
    assert res.status == "ok"
    assert res.duplicates == 5 and res.stored == 0 and res.acked == 5
    assert c.raw_store.puts == 5  # each raw message written once
    assert len(ledger(c)) == 5  # each message recorded once
    assert run(c, box, ingest).fetched == 0  # the cursor moved past them


def test_a_bug_in_the_worker_is_recorded_in_the_server_health_and_raised(c):
    box = FakeImap()
    box.add(make_raw(1))
    box.ack = lambda *a, **kw: {}["no such key"]
    with pytest.raises(KeyError):
        run(c, box, RecordingIngest())
    h = fetch.health(c, "shop")
    assert h["consecutive_failures"] == 1 and h["last_error_code"] == "internal"
    assert "KeyError" in h["last_error"]
    assert c.kv.get_item("lease#shop") is None


def test_second_worker_is_turned_away_while_the_first_holds_the_lease(c):
    box = FakeImap()
    box.add(make_raw(1))
    seen = {}

    def second_worker():
        seen["res"] = run(c, FakeImap(), RecordingIngest())

    box.on_fetch = second_worker
    res = run(c, box, RecordingIngest())
    assert res.status == "ok" and res.fetched == 1
    assert seen["res"].status == "busy" and seen["res"].fetched == 0
    assert c.kv.get_item("lease#shop") is None  # released at the end


def test_lease_left_by_a_killed_worker_is_taken_over_once_it_expires(c):
    wall = Clock(1_700_000_000)
    c.kv.put_item("lease#shop", {"owner": "dead", "expires_at": wall() + 100, "version": 1})
    box = FakeImap()
    box.add(make_raw(1))
    assert run(c, box, RecordingIngest(), now=wall).status == "busy"
    wall.t += 101
    res = run(c, box, RecordingIngest(), now=wall)
    assert res.status == "ok" and res.fetched == 1


def test_poison_message_is_kept_with_its_error_and_does_not_block_the_mailbox(c):
    box = FakeImap()
    for n in range(3):
        box.add(make_raw(n))
    ingest = RecordingIngest(fail_for={"<m1@example.org>": PermanentError("routing blew up")})
    res = run(c, box, ingest)
    assert res.status == "ok" and res.ingested == 2 and res.failed == 1 and res.acked == 3
    failed = [r for r in c.messages.list() if r.outcome == "failed"]
    assert len(failed) == 1 and "routing blew up" in failed[0].reason
    assert c.raw_store.exists(failed[0].raw_key)  # kept: can be replayed after a fix
    again = run(c, box, ingest)
    assert again.fetched == 0  # not fetched forever
    assert fetch.health(c, "shop")["failed_messages"] == 1


def test_transient_routing_failure_is_retried_then_kept_as_failed_after_three_runs(c):
    box = FakeImap()
    for n in range(3):
        box.add(make_raw(n))
    ingest = RecordingIngest(fail_for={"<m1@example.org>": TransientError("table throttled")})
    first = run(c, box, ingest)
    assert first.ingested == 1 and first.more and first.acked == 1  # stops at m1, keeps order
    second = run(c, box, ingest)
    assert second.ingested == 0 and second.failed == 0
    third = run(c, box, ingest)
    assert third.failed == 1 and third.ingested == 1
    assert run(c, box, ingest).fetched == 0
    assert len([k for k in ledger(c) if k.startswith("mid:")]) == 2


def test_uidvalidity_reset_refetches_the_folder_without_storing_anything_twice(c):
    box = FakeImap(uidvalidity=100)
    for n in range(4):
        box.add(make_raw(n))
    ingest = RecordingIngest()
    assert run(c, box, ingest).fetched == 4
    box.reset(uidvalidity=200)
    box.add(make_raw(99))
    res = run(c, box, ingest)
    assert res.uidvalidity_reset and res.fetched == 5 and res.duplicates == 4 and res.stored == 1
    assert len(ledger(c)) == 5
    assert c.kv.get_item("cursor#shop")["uidvalidity"] == 200


def test_mail_a_person_already_read_is_still_fetched(c):
    box = FakeImap()
    box.add(make_raw(1), flags={"\\Seen"})
    box.add(make_raw(2))
    res = run(c, box, RecordingIngest())
    assert res.fetched == 2 and len(ledger(c)) == 2


def test_message_deleted_between_listing_and_fetching_is_counted_not_failed(c):
    box = FakeImap()
    for n in range(3):
        box.add(make_raw(n))
    box.vanish_on_fetch = {2}
    res = run(c, box, RecordingIngest())
    assert res.status == "ok" and res.fetched == 2 and res.vanished == 1 and res.missing == 0
    assert ("missing", [2]) in box.calls  # passed only once the server confirms it is gone (UID SEARCH)
    assert c.kv.get_item("cursor#shop")["last_uid"] == 3


def test_time_budget_stops_cleanly_and_the_next_run_carries_on(c, monkeypatch):
    monkeypatch.setattr(fetch.worker, "CHUNK_MESSAGES", 10)
    box = FakeImap()
    for n in range(50):
        box.add(make_raw(n))
    clock = Clock(0.0)
    box.on_fetch = lambda: setattr(clock, "t", clock.t + 4.0)  # each chunk takes 4 s
    res = run(c, box, RecordingIngest(), clock=clock, deadline=9.0)
    assert res.status == "ok" and res.more and res.fetched == 10  # 5 s left < 4 s chunk + 2 s margin
    assert c.kv.get_item("cursor#shop")["last_uid"] == 10
    res2 = run(c, box, RecordingIngest(), clock=Clock(0.0), deadline=1000.0)
    assert res2.fetched == 40 and not res2.more and len(ledger(c)) == 50


def test_message_cap_per_run(c):
    box = FakeImap()
    for n in range(25):
        box.add(make_raw(n))
    res = run(c, box, RecordingIngest(), max_messages=10)
    assert res.fetched == 10 and res.more
    assert run(c, box, RecordingIngest(), max_messages=10).fetched == 10
    assert run(c, box, RecordingIngest(), max_messages=10).fetched == 5


def test_chunks_are_fetched_in_one_call_each(c, monkeypatch):
    monkeypatch.setattr(fetch.worker, "CHUNK_MESSAGES", 100)
    box = FakeImap()
    for n in range(250):
        box.add(make_raw(n))
    run(c, box, RecordingIngest())
    fetches = [call for call in box.calls if call[0] == "fetch"]
    assert [len(f[1]) for f in fetches] == [100, 100, 50]


def test_message_over_the_size_cap_is_left_on_the_server_and_recorded(c):
    c.config.put_incoming(IncomingServer(name="shop", protocol="imap", host="h", port=993, user="u",
                                         ack="delete", max_message_bytes=1000))
    box = FakeImap()
    box.add(make_raw(1))
    big = box.add(make_raw(2, size=5000))
    res = run(c, box, RecordingIngest())
    assert res.skipped == 1 and res.fetched == 1
    assert big in box.messages  # not deleted: never stored
    skip = c.kv.get_item(f"fetchskip#shop#{big}")
    assert skip["reason"] == "too-large" and "over the cap of 1000" in skip["detail"]


def test_routing_is_given_the_workers_deadline_less_its_safety_margin(c):
    # so that a message whose routing never finishes is stopped (and kept as failed) by routing's
    # own time limit before the Lambda is killed, instead of being routed again by the next run
    import time

    box = FakeImap()
    box.add(make_raw(1))
    ingest = RecordingIngest()
    clock = Clock(5000.0)
    before = time.monotonic()
    run(c, box, ingest, clock=clock, deadline=clock() + 100)
    [deadline] = ingest.deadlines
    assert deadline is not None
    # the worker's clock is its own; ingest's deadline is on time.monotonic()
    assert before + 100 - 2 * fetch.worker.SAFETY_SECONDS <= deadline <= time.monotonic() + 100


def test_attachments_dropped_when_the_server_says_so_and_original_kept():
    c = fakes.in_memory()
    c.config.put_incoming(IncomingServer(name="shop", protocol="imap", host="h", port=993, user="u",
                                         attachments=False))
    c.secrets.put("mailgate/server/shop", "pw")
    box = FakeImap()
    box.add(make_raw(1, attachment=True))
    ingest = RecordingIngest()
    run(c, box, ingest)
    routed_key = ingest.calls[0][0]
    assert routed_key.endswith(".noattach.eml")
    routed = c.raw_store.get(routed_key)
    assert b"JVBERi0xLjQK" not in routed and b"attachment 'big.pdf' removed" in routed
    assert b"hello" in routed
    original = [k for k in c.raw_store.objects if not k.endswith(".noattach.eml")]
    assert b"JVBERi0xLjQK" in c.raw_store.get(original[0])


def test_wrong_password_is_recorded_and_a_server_failing_for_five_days_is_disabled(c):
    class Refusing(FakeImap):
        def open(self):
            raise PermanentError("authentication failed for user 'shop'", code="auth-failed")

    wall = Clock(1_700_000_000)
    res = run(c, Refusing(), RecordingIngest(), now=wall)
    assert res.status == "failed" and res.error_code == "auth-failed" and not res.transient
    h = fetch.health(c, "shop")
    assert h["last_error"].startswith("authentication failed") and h["consecutive_failures"] == 1
    assert c.config.get_incoming("shop").enabled
    wall.t += 5 * 86400
    run(c, Refusing(), RecordingIngest(), now=wall)
    assert not c.config.get_incoming("shop").enabled
    (detail_type, detail), = c.events.published
    assert detail_type == "Fetch Server Disabled" and detail["server"] == "shop"
    assert detail["consecutive_failures"] == 2
    sample = json.loads((pathlib.Path(__file__).resolve().parents[2] / "events" / "eventbridge"
                         / "fetch-server-disabled.json").read_text())
    assert sample["detail-type"] == detail_type and set(sample["detail"]) == set(detail)
    assert run(c, FakeImap(), RecordingIngest()).status == "disabled"


def test_success_clears_the_failure_streak(c):
    class Timeout(FakeImap):
        def open(self):
            raise TransientError("timed out after 15s during greeting", code="timeout")

    run(c, Timeout(), RecordingIngest())
    assert fetch.health(c, "shop")["last_error"].startswith("timed out")
    run(c, FakeImap(), RecordingIngest())
    h = fetch.health(c, "shop")
    assert h["consecutive_failures"] == 0 and h["failing_since"] is None and h["last_success"]


def test_missing_password_is_a_clear_permanent_failure(c):
    c.config.put_incoming(IncomingServer(name="shop", protocol="imap", host="h", port=993, user="u",
                                         secret_id="mailgate/server/shop"))
    c.secrets.delete("mailgate/server/shop")
    res = run(c, FakeImap(), RecordingIngest())
    assert res.status == "failed" and "secret 'mailgate/server/shop' does not exist" in res.error
    assert not res.transient


def test_pop_mailbox_uses_uidl_and_redoes_deletions_lost_before_quit():
    c = fakes.in_memory()
    c.config.put_incoming(IncomingServer(name="pop", protocol="pop", host="h", port=995, user="u",
                                         ack="delete"))
    c.secrets.put("mailgate/server/pop", "pw")
    box = FakePop()
    for n in range(3):
        box.add(make_raw(n))
    box.commit = lambda: (_ for _ in ()).throw(Crash("died before QUIT"))  # DELEs rolled back
    with pytest.raises(Crash):
        run(c, box, RecordingIngest(), name="pop")
    assert len(box.messages) == 3
    box2 = FakePop()
    box2.messages, box2.next_uid = box.messages, box.next_uid
    box2.add(make_raw(3))
    res = run(c, box2, RecordingIngest(), name="pop")
    assert res.fetched == 1 and "re-deleted 3" in res.notes[0]
    assert box2.messages == {} and len(ledger(c)) == 4


def test_dispatch_sends_one_request_per_due_server_and_honours_each_interval():
    c = fakes.in_memory()
    c.config.put_incoming(IncomingServer(name="a", protocol="imap", host="h", port=993, user="u"))
    c.config.put_incoming(IncomingServer(name="hourly", protocol="imap", host="h", port=993, user="u",
                                         interval_minutes=60))
    c.config.put_incoming(IncomingServer(name="off", protocol="pop", host="h", port=995, user="u",
                                         enabled=False))
    t = 1_700_000_000
    assert fetch.dispatch(c, now=t) == 2
    assert sorted(m["server"] for m in c.fetch_queue.sent) == ["a", "hourly"]
    assert fetch.dispatch(c, now=t + 60) == 0
    assert fetch.dispatch(c, now=t + 300) == 1 and c.fetch_queue.sent[-1] == {"server": "a"}
    assert fetch.dispatch(c, now=t + 3600) == 2


def test_sqs_batch_retries_only_transient_failures(c):
    c.config.put_incoming(IncomingServer(name="down", protocol="imap", host="h", port=993, user="u"))
    c.config.put_incoming(IncomingServer(name="badpw", protocol="imap", host="h", port=993, user="u"))
    c.secrets.put("mailgate/server/down", "pw")
    c.secrets.put("mailgate/server/badpw", "pw")

    class Box(FakeImap):
        def __init__(self, server):
            super().__init__()
            self.server = server
            self.add(make_raw(hash(server.name) % 1000))

        def open(self):
            if self.server.name == "down":
                raise TransientError("host unreachable", code="unreachable")
            if self.server.name == "badpw":
                raise PermanentError("authentication failed", code="auth-failed")

    event = {"Records": [
        {"messageId": "1", "body": json.dumps({"server": "shop"})},
        {"messageId": "2", "body": json.dumps({"server": "down"})},
        {"messageId": "3", "body": json.dumps({"server": "badpw"})},
        {"messageId": "4", "body": "not json"},
        {"messageId": "5", "body": json.dumps({"no": "server"})},
    ]}
    c.mailboxes = lambda server, password: Box(server)
    out = fetch_worker.handle(c, event, deadline=time.monotonic() + 60)
    assert out == {"batchItemFailures": [{"itemIdentifier": "2"}]}
    assert fetch.health(c, "badpw")["last_error_code"] == "auth-failed"
    assert len(ledger(c)) == 1


def test_jobs_left_without_time_are_handed_out_again_untouched(c):
    box = FakeImap()
    box.add(make_raw(1))
    c.mailboxes = lambda server, password: box
    event = {"Records": [{"messageId": "1", "body": json.dumps({"server": "shop"})}]}
    out = fetch_worker.handle(c, event, deadline=time.monotonic() + fetch.worker.SAFETY_SECONDS)
    assert out == {"batchItemFailures": [{"itemIdentifier": "1"}]}
    assert ledger(c) == [] and box.calls == []


def test_a_job_stopped_by_its_message_cap_queues_its_continuation(c):
    box = FakeImap()
    for n in range(3):
        box.add(make_raw(n))
    c.mailboxes = lambda server, password: box
    first = fetch.run_job(c, {"server": "shop"}, deadline=time.monotonic() + 60, max_messages=2)
    assert (first.status, first.ingested, first.more) == ("ok", 2, True)
    assert c.fetch_queue.sent == [{"server": "shop", "continue": True}]
    last = fetch.run_job(c, c.fetch_queue.sent[0], deadline=time.monotonic() + 60, max_messages=2)
    assert (last.ingested, last.more) == (1, False) and len(c.fetch_queue.sent) == 1
    assert len(ledger(c)) == 3


def test_test_connection_reports_each_step():
    c = fakes.in_memory()
    server = IncomingServer(name="shop", protocol="imap", host="h", port=993, user="shop")
    c.secrets.put("mailgate/server/shop", "pw")
    box = FakeImap()
    box.add(make_raw(1))
    steps = fetch.test_connection(c, server, mailbox_factory=lambda s, p: box)
    assert [s.name for s in steps] == ["connect", "tls", "login", "folder", "count"]
    assert all(s.ok for s in steps) and steps[-1].detail == "1 message(s) on the server"

    class BadCert(FakeImap):
        def connect(self):
            raise PermanentError("certificate not trusted for h:993", code="tls-untrusted")

    steps = fetch.test_connection(c.secrets, server, mailbox_factory=lambda s, p: BadCert())
    assert [(s.name, s.ok) for s in steps] == [("connect", True), ("tls", False)]
    assert "certificate not trusted" in steps[1].detail


def test_fresh_messages_skip_the_exists_check_only_a_crashed_chunk_pays_it(c):
    checks = []
    exists = c.raw_store.exists
    c.raw_store.exists = lambda key: (checks.append(key), exists(key))[1]
    box = FakeImap()
    for n in range(5):
        box.add(make_raw(n))
    run(c, box, RecordingIngest())
    assert checks == []  # new UIDs above the cursor cannot be stored yet: one PUT each, no HEAD
    for n in range(5, 8):
        box.add(make_raw(n))
    box.crash_on_ack = 1
    with pytest.raises(Crash):
        run(c, box, RecordingIngest())
    c.kv.delete_item("lease#shop")
    res = run(c, box, RecordingIngest())
    assert len(checks) == 3 and res.duplicates == 3 and c.raw_store.puts == 8


def test_a_fetched_message_is_routed_from_the_bytes_the_worker_holds_not_read_back(c, monkeypatch):
    # the worker has just stored the bytes: reading them back from the raw store cost one S3
    # GET per fetched message
    from mailgate.services import inbound

    box = FakeImap()
    box.add(make_raw(1))
    reads = []
    get = c.raw_store.get
    monkeypatch.setattr(c.raw_store, "get", lambda key: reads.append(key) or get(key))
    res = run(c, box, inbound.ingest)
    assert res.ingested == 1 and res.failed == 0
    assert reads == []
