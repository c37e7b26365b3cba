"""The outbox port and the attempt marker on DynamoDB (the emulator) and on the fake: the same
answers, so the unit tests of the fake say what the deployed store does."""

from __future__ import annotations

import time

import pytest

from mailgate.adapters.dynamo import DynamoOutbox
from mailgate.domain import MessageRecord
from mailgate.effects import Effect
from mailgate_dev import fakes

pytestmark = pytest.mark.integration


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["dynamodb", "memory"])
def store(request):
    """(container, outbox, inbound store, clock): the container's stores with a clock to move."""
    clock = Clock()
    if request.param == "memory":
        c = fakes.in_memory()
        c.outbox = c.inbound.outbox = fakes.MemoryOutbox(c.messages, clock)
    else:
        c = request.getfixturevalue("aws")
        c.outbox = DynamoOutbox(clock=clock)
        c.inbound.clock = clock
    c.inbound.clock = clock
    return c, c.outbox, c.inbound, clock


def effects(*names: str) -> list[Effect]:
    return [Effect(id=f"o#0:{n}", kind="event", args={"n": n}) for n in names]


def test_an_outbound_record_and_its_effects_are_written_together_and_settled_away(store):
    c, box, _, clock = store
    record = MessageRecord(key="out:abc", raw_key="outbound/abc.eml", direction="out", outcome="sent")
    box.write(record, "out:abc#0", effects("result"))
    assert c.messages.get("out:abc").outcome == "sent"
    assert [e.id for e in box.pending("out:abc#0")] == ["o#0:result"]
    box.settle("out:abc#0", [])
    assert box.pending("out:abc#0") == []


def test_a_commit_writes_the_effects_held_by_its_writer_until_its_end(store):
    c, box, inbound_store, clock = store
    attempt = inbound_store.begin("raw/ses/m1", until=clock.t + 120, facts={"source": "ses"})
    record = MessageRecord(key="in:mid:m1", raw_key="raw/ses/m1", outcome="new-record")
    assert inbound_store.commit(record, new_thread=None, index=[], follower=None, counter=None, contact=None,
                                effects=effects("event", "notify"), attempt=attempt)
    assert [e.id for e in box.pending("in:mid:m1#0")] == ["o#0:event", "o#0:notify"]
    assert not box.claim("in:mid:m1#0", seconds=60)  # the writer holds it
    clock.t += 121
    assert box.due(older_than=100) == ["in:mid:m1#0"] and box.due(older_than=200) == []
    assert box.claim("in:mid:m1#0", seconds=60) and not box.claim("in:mid:m1#0", seconds=60)
    left = box.pending("in:mid:m1#0")[1:]
    left[0].attempts, left[0].error = 1, "throttled"
    box.settle("in:mid:m1#0", left)
    [still] = box.pending("in:mid:m1#0")
    assert (still.id, still.attempts, still.error) == ("o#0:notify", 1, "throttled")
    assert box.claim("in:mid:m1#0", seconds=60)  # settling releases the claim
    # the commit removed the marker: the next attempt is a first one again
    assert inbound_store.begin("raw/ses/m1", until=clock.t + 120, facts={}).number == 1


def test_the_marker_counts_attempts_and_says_when_the_one_before_was_killed(store):
    _, _, inbound_store, clock = store
    first = inbound_store.begin("raw/ses/m2", until=clock.t + 120, facts={"source": "ses", "recipients": ["a@x.test"]})
    assert (first.number, first.killed) == (1, None)
    clock.t += 30  # a concurrent delivery while the first may still be running
    second = inbound_store.begin("raw/ses/m2", until=clock.t + 120, facts={"source": "ses"})
    assert (second.number, second.killed) == (2, None)
    clock.t += 200  # the retry after the second's invocation ended without a word
    third = inbound_store.begin("raw/ses/m2", until=clock.t + 120, facts={"source": "ses"})
    assert third.number == 3 and third.killed["source"] == "ses" and third.killed["attempts"] == 2
    inbound_store.abandon(third)
    assert inbound_store.begin("raw/ses/m2", until=clock.t + 120, facts={}).number == 1


def test_after_a_kill_the_marker_keeps_where_the_message_was_recorded(store):
    c, _, inbound_store, clock = store
    inbound_store.begin("raw/ses/m3", until=clock.t + 120, facts={"source": "ses"})
    clock.t += 200
    retry = inbound_store.begin("raw/ses/m3", until=clock.t + 120, facts={"source": "ses"})
    assert retry.killed is not None
    failed = MessageRecord(key="in:raw:m3", raw_key="raw/ses/m3", outcome="failed", reason="killed")
    assert inbound_store.commit(failed, new_thread=None, index=[], follower=None, counter=None, contact=None,
                                attempt=retry)
    later = inbound_store.begin("raw/ses/m3", until=clock.t + 120, facts={"source": "ses"})
    assert later.recorded == "in:raw:m3" and later.killed is None
    inbound_store.abandon(later)  # a recorded marker is kept
    assert inbound_store.begin("raw/ses/m3", until=clock.t + 120, facts={}).recorded == "in:raw:m3"
