"""The transactional outbox on the in-memory stack: an outcome's effects are recorded with it, and
whatever stops the process between the two, the application hears of the message exactly once
(the emulator version, with the process really killed, is tests/integration/test_fault_injection.py)."""

from __future__ import annotations

import pytest

from mailgate import failpoints
from mailgate.domain import Thread
from mailgate.errors import TransientError
from mailgate.services import inbound, outbox
from mailgate_dev.fakes import MemoryOutbox

from .inbound_support import deliver, mail, notifications, reply_address, stack


class Killed(BaseException):
    """The process died here (no except clause of the code under test catches it)."""


class Clock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clocked():
    """The in-memory stack with the outbox and the attempt markers on a clock the test moves."""
    import time as time_mod

    clock = Clock(time_mod.time())
    c = stack()
    c.outbox = c.inbound.outbox = MemoryOutbox(c.messages, clock)
    c.inbound.clock = clock
    yield c, clock
    failpoints.disable()


def kill_at(name: str) -> None:
    def die():
        raise Killed(name)
    failpoints.enable(name, die)


def killed_at(c, point: str, key: str, raw: bytes, to: str = "sales@example.test") -> None:
    """ingest of `raw` (stored at `key`), the process dying at `point`."""
    kill_at(point)
    c.raw_store.put(key, raw)
    with pytest.raises(Killed):
        inbound.ingest(c, key, source="ses", envelope_recipients=[to])
    failpoints.disable()


def test_a_crash_between_the_record_and_its_event_leaves_the_event_pending_with_the_record(clocked):
    c, clock = clocked
    killed_at(c, "inbound.after-commit", "raw/ses/k1", mail(message_id="k1@customer.test"))
    [record] = c.messages.records.values()
    assert record.outcome == "new-record" and c.events.published == []
    [(owner, (_, _, effects))] = c.outbox.entries.items()
    assert owner == f"{record.key}#0" and "record-event" in [e.kind for e in effects]


def test_the_retry_after_the_writer_is_gone_publishes_the_event_once_with_its_stable_id(clocked):
    c, clock = clocked
    killed_at(c, "inbound.after-commit", "raw/ses/k2", mail(message_id="k2@customer.test"))
    # a concurrent duplicate while the killed invocation could still be running leaves it alone
    inbound.ingest(c, "raw/ses/k2", source="ses", envelope_recipients=["sales@example.test"])
    assert c.events.published == []
    clock.t += inbound.DEFAULT_ATTEMPT_SECONDS + 1  # Lambda's retry, after the invocation's end
    record = inbound.ingest(c, "raw/ses/k2", source="ses", envelope_recipients=["sales@example.test"])
    [(detail_type, detail)] = c.events.published
    assert detail_type == "Record To Create" and detail["message_key"] == record.key
    assert detail["event_id"] == f"{record.key}#0:event"
    assert c.outbox.entries == {}
    inbound.ingest(c, "raw/ses/k2", source="ses", envelope_recipients=["sales@example.test"])
    assert len(c.events.published) == 1


def test_the_sweep_publishes_what_a_killed_invocation_left_and_then_nothing(clocked):
    c, clock = clocked
    c.threads.put_thread(Thread("t9", model="crm.lead", record_id="9", followers=["rep@example.org"]))
    addr = reply_address(c, "t9")
    killed_at(c, "inbound.after-commit", "raw/ses/k3", mail(to=addr, message_id="k3@customer.test"), to=addr)
    assert outbox.sweep(c)["entries"] == 0  # too young: its writer may still be at work
    clock.t += inbound.DEFAULT_ATTEMPT_SECONDS + 1
    counts = outbox.sweep(c)
    assert counts["entries"] == 1 and counts["pending"] == 0 and counts["skipped"] == 0
    assert [t for t, _ in c.events.published] == ["Message Routed To Thread"]
    assert [n["to"] for n in notifications(c)] == [["rep@example.org"]]
    clock.t += 3600
    assert outbox.sweep(c)["entries"] == 0 and len(c.events.published) == 1


def test_a_crash_after_publishing_but_before_settling_repeats_the_event_under_the_same_id(clocked):
    """At least once: the consumer drops the repeat by its event_id."""
    c, clock = clocked
    killed_at(c, "outbox.before-settle", "raw/ses/k4", mail(message_id="k4@customer.test"))
    clock.t += inbound.DEFAULT_ATTEMPT_SECONDS + 1
    outbox.sweep(c)
    ids = [d["event_id"] for _, d in c.events.published]
    assert len(ids) == 2 and len(set(ids)) == 1 and c.outbox.entries == {}


def test_effects_the_bus_refused_for_a_while_are_published_by_the_sweep_when_it_is_back(clocked):
    c, clock = clocked

    class Down:
        def publish(self, detail_type, detail):
            raise TransientError("EventBridge unreachable")

    working, c.events = c.events, Down()
    c.raw_store.put("raw/ses/k5", mail(message_id="k5@customer.test"))
    with pytest.raises(TransientError):
        inbound.ingest(c, "raw/ses/k5", source="ses", envelope_recipients=["sales@example.test"])
    [(_, (_, held, [effect]))] = c.outbox.entries.items()
    assert effect.attempts == 1 and "unreachable" in effect.error and held == 0.0  # left to anyone
    c.events = working
    clock.t += outbox.SWEEP_AFTER_SECONDS + 1
    assert outbox.sweep(c)["done"] == 1
    [(_, detail)] = c.events.published
    record = c.messages.get(detail["message_key"])
    assert "effects_error" not in record.detail and c.outbox.entries == {}


def test_an_effect_refused_for_good_is_dropped_named_on_the_record_and_the_rest_carried_out(clocked):
    from mailgate.errors import PermanentError

    c, clock = clocked
    c.threads.put_thread(Thread("t8", followers=["a@example.org", "b@example.org"]))
    addr = reply_address(c, "t8")
    sent = []

    class Picky:
        def send(self, body, *, dedup_id=None):
            if body["to"] == ["a@example.org"]:
                raise PermanentError("refused", code="aws-invalidparametervalue")
            sent.append(body)

        def change_visibility(self, receipt_handle, seconds):
            pass

    c.outbound_queue = Picky()
    record = deliver(c, mail(to=addr), recipients=[addr])
    assert [b["to"] for b in sent] == [["b@example.org"]]
    assert "notify" in c.messages.get(record.key).detail["effects_error"] and c.outbox.entries == {}


def test_the_outbox_entry_of_a_message_to_a_crowded_thread_stays_small():
    c = stack()
    followers = [f"f{i}@example.org" for i in range(inbound.MAX_NOTIFIED + 50)]
    c.threads.put_thread(Thread("crowd", followers=followers))
    addr = reply_address(c, "crowd")
    record = deliver(c, mail(to=addr), recipients=[addr])
    assert len(notifications(c)) == inbound.MAX_NOTIFIED
    assert c.messages.get(record.key).detail["notified"] == f"the first 1000 of {len(followers)} followers"
