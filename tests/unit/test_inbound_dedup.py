"""Deduplication of inbound mail: what must merge merges (SES's duplicate deliveries, retries,
concurrent invocations, one message through SES and a fetch), and nothing an outsider sends
first can make a real message a "duplicate" of theirs."""

from __future__ import annotations

import hashlib

from mailgate.domain import MessageRecord
from mailgate.inbound_model import message_key, previous_message_key
from mailgate.message import parse
from mailgate.services import inbound

from .inbound_support import deliver, mail, stack

ORDER = (b"From: Olga Buyer <olga@customer.test>\r\nTo: sales@example.test, office@customer-mailbox.test\r\n"
         b"Cc: boss@customer.test\r\nSubject: Order 2 - 40 chairs\r\nDate: Tue, 3 Mar 2026 10:00:00 +0100\r\n"
         b"Message-ID: <o2@customer.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
         b"\r\nPlease deliver 40 chairs by Friday.\r\n\r\nOlga\r\n")


def _via_ses(raw: bytes) -> bytes:
    """The copy SES stores: its trace and verdict fields on top, CRLF as received."""
    return (b"Return-Path: <olga@customer.test>\r\nReceived: from mail.customer.test (mail.customer.test "
            b"[192.0.2.7]) by inbound-smtp.us-east-1.amazonaws.com with SMTP id abc\r\n"
            b"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\nReceived-SPF: pass\r\n"
            b"Authentication-Results: amazonses.com; spf=pass; dkim=pass\r\n") + raw


def _via_fetch(raw: bytes) -> bytes:
    """The copy the customer's mailbox holds: other trace fields, LF line ends, a trailing blank."""
    return (b"Return-Path: <olga@customer.test>\r\nDelivered-To: office@customer-mailbox.test\r\n"
            b"Received: from mx.customer-mailbox.test by imap.customer-mailbox.test with LMTP id xyz\r\n"
            b"Received: from mail.customer.test by mx.customer-mailbox.test with ESMTPS id 77\r\n"
            b"X-Spam-Status: No, score=-0.1\r\nX-Original-To: office@customer-mailbox.test\r\n"
            + raw).replace(b"\r\n", b"\n") + b"\n"


def _events(c, detail_type="Record To Create"):
    return [d for t, d in c.events.published if t == detail_type]


def test_an_outsider_sending_the_message_id_first_does_not_make_the_real_message_a_duplicate():
    c = stack()
    squat = (b"From: eve@attacker.test\r\nTo: sales@example.test\r\nSubject: hello\r\n"
             b"Message-ID: <o2@customer.test>\r\n\r\nfirst!\r\n")
    early = deliver(c, squat)
    real = deliver(c, _via_ses(ORDER))

    assert real.key != early.key and real.outcome == "new-record" and real.sender == "olga@customer.test"
    assert real.thread_id != early.thread_id
    assert [e["message"]["from"] for e in _events(c)] == ["eve@attacker.test", "olga@customer.test"]


def test_one_message_through_ses_and_a_fetch_is_one_record_and_one_event():
    c = stack()
    by_ses = deliver(c, _via_ses(ORDER))
    c.raw_store.put("raw/fetch/o2.eml", _via_fetch(ORDER))
    by_fetch = inbound.ingest(c, "raw/fetch/o2.eml", source="imap:office")

    assert by_fetch.key == by_ses.key and by_fetch.source == "ses"
    assert len(c.messages.records) == 1 and len(_events(c)) == 1


def test_a_message_without_message_id_merges_its_copies_and_nothing_else():
    c = stack()
    bare = ORDER.replace(b"Message-ID: <o2@customer.test>\r\n", b"")
    first = deliver(c, _via_ses(bare))
    c.raw_store.put("raw/fetch/bare.eml", _via_fetch(bare))
    again = inbound.ingest(c, "raw/fetch/bare.eml", source="imap:office")
    other = deliver(c, _via_ses(bare.replace(b"40 chairs by Friday", b"41 chairs by Friday")))

    assert again.key == first.key and other.key != first.key
    assert len(c.messages.records) == 2


def test_the_key_reads_origin_fields_and_body_never_trace_fields():
    base = message_key(ORDER)
    assert message_key(_via_ses(ORDER)) == base
    for changed in (ORDER.replace(b"Subject: Order 2", b"Subject: Order 3"),
                    ORDER.replace(b"Date: Tue, 3 Mar 2026 10:00:00", b"Date: Tue, 3 Mar 2026 10:00:01"),
                    ORDER.replace(b"From: Olga Buyer <olga@", b"From: Olga Buyer <olgb@"),
                    ORDER.replace(b"Cc: boss@", b"Cc: bos@"),
                    ORDER.replace(b"40 chairs", b"41 chairs")):
        assert message_key(changed) != base


def test_a_message_recorded_under_the_previous_key_is_found_by_replay_and_not_recorded_twice():
    """Records made before this rule are keyed by the Message-ID alone (`in:mid:`), or the raw
    digest (`in:raw:`). A redelivery of the same bytes (an SES retry straddling the upgrade) finds
    that record; a different message with its Message-ID does not."""
    c = stack()
    raw = _via_ses(ORDER)
    parsed = parse(raw)
    old_key = previous_message_key(parsed)
    assert old_key == "in:mid:" + hashlib.sha256(b"o2@customer.test").hexdigest()[:40]
    c.raw_store.put("raw/ses/before-upgrade", raw)
    c.messages.claim(MessageRecord(key=old_key, raw_key="raw/ses/before-upgrade", source="ses",
                                   message_id=parsed.message_id, digest=parsed.digest, outcome="new-record",
                                   thread_id="t-before"))

    again = deliver(c, raw, key="raw/ses/before-upgrade")
    assert again.key == old_key and len(c.messages.records) == 1
    assert inbound.replay(c, "raw/ses/before-upgrade").key == old_key
    squatted = deliver(c, mail(message_id="o2@customer.test", body="another message\n"))
    assert squatted.key != old_key and len(c.messages.records) == 2
