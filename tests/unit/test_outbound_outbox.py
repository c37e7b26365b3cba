"""Outbound's Send Result is recorded with the outcome it reports (the outbox), and a request that
can never be sent is recorded and reported, not retried until it vanishes."""

from __future__ import annotations

import json
import pathlib
import time

import pytest

from mailgate import failpoints
from mailgate.entrypoints import outbound as outbound_handler
from mailgate.errors import TransientError
from mailgate.services import outbound
from mailgate.services import outbox as outbox_service

# the outbound tests' world: example.test with a DKIM key, in memory
from .test_outbound_service import FakeSender, c, req, results, rsa_key  # noqa: F401 - c, rsa_key are fixtures

REPO = pathlib.Path(__file__).resolve().parents[2]


class Killed(BaseException):
    pass


@pytest.fixture(autouse=True)
def _no_failpoints():
    yield
    failpoints.disable()


class FlakyBus:
    """EventBridge that refuses the next `down` publications."""

    def __init__(self, working, down: int = 1) -> None:
        self.working, self.down = working, down

    def publish(self, detail_type, detail):
        if self.down:
            self.down -= 1
            raise TransientError("EventBridge: InternalFailure")
        self.working.publish(detail_type, detail)


def test_an_eventbridge_failure_after_the_send_keeps_the_send_result_for_the_retry(c):
    """SES accepted the mail, then PutEvents failed: the retry used to find the record done and
    say "duplicate", and the application never heard that its mail went out."""
    ses = FakeSender("ses")
    published, c.events = c.events, FlakyBus(c.events)
    first = outbound.send(c, req(), senders={"ses": ses})
    assert first["status"] == "retrying" and "not published yet" in first["reason"]
    assert published.published == [] and len(ses.transactions) == 2
    again = outbound.send(c, req(), senders={"ses": ses})  # SQS hands the request out again
    [result] = [d for t, d in published.published if t == outbound.SEND_RESULT]
    assert result["status"] == "sent" and again["status"] == "duplicate"
    assert len(ses.transactions) == 2  # nothing sent twice
    outbound.send(c, req(), senders={"ses": ses})
    assert len(published.published) == 1


def test_a_crash_between_the_record_and_the_send_result_is_made_good_by_the_retry_or_the_sweep(c):
    def die():
        raise Killed()

    failpoints.enable("outbound.after-record", die)
    ses = FakeSender("ses")
    with pytest.raises(Killed):
        outbound.send(c, req(), senders={"ses": ses})
    failpoints.disable()
    c.kv.delete_item(f"outlease#{outbound.recorded_ref(c, 'order-42-confirmation')}")  # its lease, expired
    assert results(c) == []
    outbound.send(c, req(), senders={"ses": ses})
    [result] = results(c)
    assert result["status"] == "sent" and result["event_id"].endswith("#1:result")
    assert outbox_service.sweep(c, older_than=0)["entries"] == 0 and len(ses.transactions) == 2


def test_the_send_result_has_exactly_the_fields_of_the_documented_sample(c):
    sample = json.loads((REPO / "events" / "eventbridge" / "send-result.json").read_text())
    outbound.send(c, req(), senders={"ses": FakeSender("ses")})
    [result] = results(c)
    assert set(result) == set(sample["detail"])


def test_a_request_that_compose_or_signing_cannot_handle_is_rejected_once_with_a_send_result(c, monkeypatch):
    """Anything raised inside compose or DKIM signing fails the same way on every retry: the request
    used to fail its SQS batch until it reached the dead-letter queue, with no record and no event."""
    def broken(*args, **kwargs):
        raise ValueError("header field name contains a newline")

    monkeypatch.setattr(outbound.D, "sign_message", broken)
    ses = FakeSender("ses")
    event = {"Records": [{"messageId": "m1", "receiptHandle": "h1", "body": json.dumps(req())}]}
    out = outbound_handler.handle(c, event, deadline=time.monotonic() + 30, senders=outbound.Senders(c, {"ses": ses}))
    assert out == {"batchItemFailures": []}  # done with: not handed out again
    [result] = results(c)
    assert result["status"] == "rejected" and result["error"] == "compose-failed"
    assert "newline" in result["reason"] and ses.transactions == []
    record = c.messages.get("out:" + outbound.recorded_ref(c, "order-42-confirmation"))
    assert record.outcome == "rejected" and "newline" in record.reason


def test_a_header_name_with_a_newline_is_rejected_with_a_send_result_not_retried(c):
    ses = FakeSender("ses")
    bad = req(headers={"X-Note\r\nBcc: victim@example.org": "hi"})
    event = {"Records": [{"messageId": "m1", "receiptHandle": "h1", "body": json.dumps(bad)}]}
    out = outbound_handler.handle(c, event, deadline=time.monotonic() + 30, senders=outbound.Senders(c, {"ses": ses}))
    assert out == {"batchItemFailures": []}
    [result] = results(c)
    assert result["status"] == "rejected" and ses.transactions == []


def test_a_send_result_with_a_huge_server_answer_fits_eventbridge(c):
    from mailgate import jsonfit

    ses = FakeSender("ses", {"carol@example.org": ("failed", 550)})
    original = ses.send

    def chatty(envelopes, raw, **kw):
        out = original(envelopes, raw, **kw)
        for r in out:
            r.detail = "\U0001F600" * 30_000  # a server that answers with 360 KB of escaped JSON
        return out

    ses.send = chatty
    outbound.send(c, req(), senders={"ses": ses})
    [result] = results(c)
    assert jsonfit.size(result) + len(outbound.SEND_RESULT) + len("mailgate") <= jsonfit.EVENT_ENTRY_BYTES
