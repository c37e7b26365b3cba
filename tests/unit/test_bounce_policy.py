"""Bounce counting and suppression rules (Odoo / Discourse style), on the in-memory key-value fake."""

from __future__ import annotations

import time

from mailgate import suppression
from mailgate.bounce_policy import (
    BouncePolicy, note_inbound_from, record_bounce, record_complaint, score,
)
from mailgate_dev.fakes import MemoryKeyValueRepository

D = "example.test"
WEEK = 7 * 24 * 3600


def test_a_hard_bounce_suppresses_the_address_at_once():
    kv = MemoryKeyValueRepository()
    out = record_bounce(kv, D, "Gone@Customer.example", permanent=True, status="5.1.1", reason="userunknown")
    assert out["newly_suppressed"] and out["score"] == 2
    entry = suppression.is_suppressed(kv, D, "gone@customer.example")
    assert entry["source"] == "hard-bounce" and "5.1.1" in entry["reason"]


def test_soft_bounces_suppress_only_when_the_score_reaches_the_threshold():
    kv = MemoryKeyValueRepository()
    outs = [record_bounce(kv, D, "full@customer.example", permanent=False, reason="mailboxfull") for _ in range(4)]
    assert [o["suppressed"] for o in outs] == [False, False, False, True]
    assert [o["score"] for o in outs] == [1, 2, 3, 4]
    assert suppression.is_suppressed(kv, D, "full@customer.example")["source"] == "soft-bounces"


def test_soft_bounces_older_than_the_window_no_longer_count():
    kv = MemoryKeyValueRepository()
    now = time.time()
    for weeks_ago in (20, 15, 14):
        record_bounce(kv, D, "old@customer.example", permanent=False, now=now - weeks_ago * WEEK)
    out = record_bounce(kv, D, "old@customer.example", permanent=False, now=now)
    assert out["score"] == 1 and not out["suppressed"]
    assert score(kv, D, "old@customer.example", now=now) == 1


def test_discourse_mode_two_hard_bounces_reach_the_threshold():
    kv = MemoryKeyValueRepository()
    policy = BouncePolicy(hard_suppresses=False)  # Discourse: hard = 2, soft = 1, threshold 4
    first = record_bounce(kv, D, "x@customer.example", permanent=True, policy=policy)
    second = record_bounce(kv, D, "x@customer.example", permanent=True, policy=policy)
    assert not first["suppressed"] and second["newly_suppressed"]


def test_odoo_numbers_five_bounces_are_a_parameter():
    kv = MemoryKeyValueRepository()
    policy = BouncePolicy(threshold=5)
    outs = [record_bounce(kv, D, "y@customer.example", permanent=False, policy=policy) for _ in range(5)]
    assert [o["suppressed"] for o in outs] == [False] * 4 + [True]


def test_suppression_is_per_sending_domain():
    kv = MemoryKeyValueRepository()
    record_bounce(kv, "a.example", "z@customer.example", permanent=True)
    assert suppression.is_suppressed(kv, "a.example", "z@customer.example") is not None
    assert suppression.is_suppressed(kv, "b.example", "z@customer.example") is None


def test_complaint_suppresses_and_a_second_one_changes_nothing():
    kv = MemoryKeyValueRepository()
    first = record_complaint(kv, D, "angry@customer.example", feedback_type="abuse")
    second = record_complaint(kv, D, "angry@customer.example", feedback_type="abuse")
    assert first["newly_suppressed"] and second["suppressed"] and not second["newly_suppressed"]
    assert suppression.is_suppressed(kv, D, "angry@customer.example")["reason"] == "complaint (abuse)"


def test_a_bounce_counted_again_under_its_key_adds_nothing_and_says_what_it_did_the_first_time():
    """A run cut short after counting is retried whole: the count must not double, and the retry
    must report what the first count did (the event it publishes is the one the first would have)."""
    kv = MemoryKeyValueRepository()
    for i in range(3):
        record_bounce(kv, D, "full@customer.example", permanent=False, key=f"b{i}")
    fourth = record_bounce(kv, D, "full@customer.example", permanent=False, key="b3")
    later = record_bounce(kv, D, "other@customer.example", permanent=True, key="h1")
    assert fourth["newly_suppressed"] and fourth["score"] == 4

    assert record_bounce(kv, D, "full@customer.example", permanent=False, key="b3") == fourth
    assert record_bounce(kv, D, "full@customer.example", permanent=False, key="b1")["score"] == 2
    assert record_bounce(kv, D, "other@customer.example", permanent=True, key="h1") == later
    assert score(kv, D, "full@customer.example") == 4 and score(kv, D, "other@customer.example") == 2
    assert suppression.is_suppressed(kv, D, "full@customer.example")["source"] == "soft-bounces"
    assert note_inbound_from(kv, "full@customer.example")["unsuppressed"] == [D]  # its index was written


def test_a_complaint_recorded_again_under_its_key_says_it_suppressed_the_address():
    kv = MemoryKeyValueRepository()
    first = record_complaint(kv, D, "angry@customer.example", key="c1")
    assert record_complaint(kv, D, "angry@customer.example", key="c1") == first
    assert not record_complaint(kv, D, "angry@customer.example", key="c2")["newly_suppressed"]


def test_inbound_mail_resets_the_score_and_lifts_only_score_made_suppressions():
    kv = MemoryKeyValueRepository()
    for _ in range(4):
        record_bounce(kv, D, "back@customer.example", permanent=False)
    record_bounce(kv, D, "dead@customer.example", permanent=True)
    suppression.suppress(kv, D, "manual@customer.example", "asked us to stop")

    for addr in ("back@customer.example", "dead@customer.example", "manual@customer.example"):
        note_inbound_from(kv, addr)

    assert suppression.is_suppressed(kv, D, "back@customer.example") is None
    assert score(kv, D, "back@customer.example") == 0
    assert suppression.is_suppressed(kv, D, "dead@customer.example") is not None
    assert suppression.is_suppressed(kv, D, "manual@customer.example") is not None
    # After the reset it takes the full threshold again.
    assert not record_bounce(kv, D, "back@customer.example", permanent=False)["suppressed"]


def test_note_inbound_from_ignores_garbage():
    kv = MemoryKeyValueRepository()
    assert note_inbound_from(kv, "")["reset"] == []
    assert note_inbound_from(kv, "not an address")["reset"] == []


def test_outbound_sees_a_hard_bounce_whatever_the_case_of_the_address_and_why():
    kv = MemoryKeyValueRepository()
    record_bounce(kv, D, "gone@customer.example", permanent=True, status="5.1.1")
    assert suppression.is_suppressed(kv, D, "ok@customer.example") is None
    assert "hard bounce" in suppression.is_suppressed(kv, D, "Gone@customer.example")["reason"]


def test_a_flood_keeps_a_bounded_history():
    kv = MemoryKeyValueRepository()
    policy = BouncePolicy(max_events=10, threshold=10_000)
    for _ in range(500):
        record_bounce(kv, D, "flood@customer.example", permanent=False, policy=policy)
    item = kv.get_item("bscore#flood@customer.example#example.test")
    assert len(item["events"]) == 10 and score(kv, D, "flood@customer.example", policy=policy) == 10
