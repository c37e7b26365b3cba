"""The outbox sweep's AWS calls are all allowed by its role: every kind of effect left pending by a
killed invocation (events, a follower notification, a polite answer, a bounce, a Send Result),
carried out by the sweep on the emulator while every botocore call is recorded."""

from __future__ import annotations

import time

import pytest

from mailgate import failpoints, tokens
from mailgate.adapters.dynamo import DynamoOutbox
from mailgate.services import inbound, outbound, outbox
from tests.integration.test_iam_covers_the_calls import DOMAIN, _check, _fresh, calls, configured  # noqa: F401

pytestmark = pytest.mark.integration


class Killed(BaseException):
    pass


def _die():
    raise Killed()


def _killed_after_commit(c, raw: bytes, key: str, to: str) -> None:
    c.raw_store.put(key, raw)
    failpoints.enable("inbound.after-commit", _die)
    try:
        with pytest.raises(Killed):
            inbound.ingest(c, key, source="ses", envelope_recipients=[to])
    finally:
        failpoints.disable()


def test_the_outbox_sweeps_calls_are_all_allowed(configured, calls):  # noqa: F811
    c = _fresh(configured)
    failpoints.enable("outbound.after-record", _die)
    try:
        with pytest.raises(Killed):
            outbound.send(c, {"idempotency_key": "sweep-1", "from": f"sales@{DOMAIN}", "to": ["gone@customer.test"],
                              "subject": "Hello", "text": "Hi.", "record": {"model": "sale.order", "id": "3"}})
    finally:
        failpoints.disable()
    ref = outbound.recorded_ref(c, "sweep-1")
    first = inbound.ingest(c, _put(c, b"From: ann@customer.test\r\nTo: sales@example.test\r\nSubject: Quote\r\n"
                                      b"Message-ID: <s1@customer.test>\r\n\r\n40 chairs.\r\n", "raw/ses/s1"),
                           source="ses", envelope_recipients=[f"sales@{DOMAIN}"])
    c.threads.add_follower(first.thread_id, "rep@example.org")
    reply_to = tokens.reply_address(c.token_key, "catchall", DOMAIN, first.thread_id)
    _killed_after_commit(c, b"From: ann@customer.test\r\nSubject: Re: Quote\r\nMessage-ID: <s2@customer.test>\r\n"
                            b"\r\nAnd 4 tables.\r\n", "raw/ses/s2", reply_to)
    _killed_after_commit(c, b"From: carl@customer.test\r\nSubject: Hi\r\nMessage-ID: <s3@customer.test>\r\n\r\nHi\r\n",
                         "raw/ses/s3", f"nobody@{DOMAIN}")
    _killed_after_commit(c, b"From: MAILER-DAEMON@mx.customer.test\r\nSubject: Undelivered Mail\r\n"
                            b"Message-ID: <sb@mx.customer.test>\r\nContent-Type: multipart/report; "
                            b"report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: "
                            b"message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; "
                            b"gone@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n", "raw/ses/sb",
                         tokens.verp_address(c.token_key, "bounce", DOMAIN, ref, 0))
    s = _fresh(configured, outbox=DynamoOutbox(clock=lambda: time.time() + 3600))  # a later run, cold
    calls.clear()
    counts = outbox.sweep(s)
    assert counts["entries"] == 4 and counts["pending"] == 0, counts
    assert {op for svc, op, _ in calls if svc == "s3"} == {"GetObject"}  # rebuilt from the raw messages
    _check("OutboxSweepFunction", calls, s.settings)


def _put(c, raw: bytes, key: str) -> str:
    c.raw_store.put(key, raw)
    return key
