"""A slow or killed routing never loses a message: it is recorded `failed` with the reason, within
the invocation's time, and replayable; the retry of a killed invocation does not run it again."""

from __future__ import annotations

import re
import time

import pytest

from mailgate import failpoints
from mailgate.entrypoints import inbound as ses_action
from mailgate.services import inbound
from mailgate_dev.local.invoker import LambdaContext

from .inbound_support import mail, stack


class Killed(BaseException):
    pass


def ses_event(key: str, recipients=("sales@example.test",)) -> dict:
    """The SES Lambda action's event for the raw message at raw/ses/<key>."""
    return {"Records": [{"eventSource": "aws:ses", "eventVersion": "1.0", "ses": {
        "mail": {"messageId": key, "source": "ann@customer.test", "destination": list(recipients),
                 "headers": [], "commonHeaders": {}, "timestamp": "2026-11-26T10:00:00.000Z"},
        "receipt": {"recipients": list(recipients), "spamVerdict": {"status": "PASS"},
                    "virusVerdict": {"status": "PASS"}, "spfVerdict": {"status": "PASS"},
                    "dkimVerdict": {"status": "PASS"}, "dmarcVerdict": {"status": "PASS"},
                    "action": {"type": "Lambda"}}}}]}


def invoke_with(c, key: str, *, remaining_ms: int) -> dict:
    """The SES handler as Lambda runs it, with `remaining_ms` left before Lambda's timeout."""
    from mailgate import bootstrap

    bootstrap.set_container(c)
    try:
        return ses_action.handler(ses_event(key), LambdaContext("mailgate-inbound", timeout_ms=remaining_ms))
    finally:
        bootstrap.set_container(None)


@pytest.fixture(autouse=True)
def _no_failpoints():
    yield
    failpoints.disable()


def test_routing_that_never_ends_is_recorded_failed_before_the_lambda_timeout_and_replays(monkeypatch):
    c = stack()
    c.raw_store.put("raw/ses/slow1", mail(message_id="slow1@customer.test"))
    real_decide = inbound.routing.decide

    def forever(*args, **kwargs):
        while True:
            pass

    monkeypatch.setattr(inbound.routing, "decide", forever)
    started = time.monotonic()
    [result] = invoke_with(c, "slow1", remaining_ms=16_000)["results"]  # routing gets about 1 s
    assert time.monotonic() - started < 10
    assert result["outcome"] == "failed" and "routing did not finish within 1 s (attempt 1)" in result["reason"]
    assert c.messages.get(result["key"]).outcome == "failed" and c.events.published == []
    monkeypatch.setattr(inbound.routing, "decide", real_decide)  # the fix
    assert inbound.replay(c, result["key"]).outcome == "new-record"
    assert [t for t, _ in c.events.published] == ["Record To Create"]


def test_a_backtracking_pattern_in_the_parser_is_stopped_too(monkeypatch):
    """The regular-expression engine checks for signals while it matches: a catastrophic pattern
    (one C call) stops at the limit like Python code does."""
    from mailgate.inbound_model import message_key

    c = stack()
    raw = mail(message_id="slow2@customer.test")
    c.raw_store.put("raw/ses/slow2", raw)
    real_parse = inbound.message_mod.parse

    def backtracking(raw):
        re.match(r"(a+)+$", "a" * 64 + "b")
        return real_parse(raw)

    monkeypatch.setattr(inbound.message_mod, "parse", backtracking)
    [result] = invoke_with(c, "slow2", remaining_ms=16_000)["results"]
    assert result["outcome"] == "failed" and "did not finish" in result["reason"]
    assert result["key"] == message_key(raw)  # read from the raw bytes, not from the parse


def test_the_retry_of_an_invocation_killed_while_routing_records_it_without_routing_again(monkeypatch):
    """A C call that never returns, or memory exhausted: the process dies and nothing is written.
    Lambda retries; the marker the killed attempt left says what happened."""
    c = stack()
    c.raw_store.put("raw/ses/poison", mail(message_id="poison@customer.test"))

    def die():
        raise Killed()

    failpoints.enable("inbound.routing", die)
    with pytest.raises(Killed):
        invoke_with(c, "poison", remaining_ms=16_000)
    failpoints.disable()
    routed = []
    monkeypatch.setattr(inbound.routing, "decide", lambda *a, **k: routed.append(1))
    later = c.inbound.clock() + 120  # Lambda's retry, after the killed invocation's end
    monkeypatch.setattr(c.inbound, "clock", lambda: later)
    [result] = invoke_with(c, "poison", remaining_ms=16_000)["results"]
    assert routed == []
    assert result["outcome"] == "failed"
    assert re.search(r"routing did not finish within \d+ s \(attempt 1\)", result["reason"]), result["reason"]
    [record] = c.messages.records.values()
    assert record.detail["error"] == "killed" and record.raw_key == "raw/ses/poison"
    # the next retry (or a duplicate delivery of the same object) changes nothing
    assert invoke_with(c, "poison", remaining_ms=16_000)["results"][0]["key"] == record.key
    assert len(c.messages.records) == 1


def test_a_concurrent_delivery_while_the_first_is_still_routing_is_routed_not_taken_for_a_kill():
    c = stack()
    c.raw_store.put("raw/ses/twice", mail(message_id="twice@customer.test"))
    first = c.inbound.begin("raw/ses/twice", until=c.inbound.clock() + 100, facts={"source": "ses"})
    assert first.number == 1
    record = inbound.ingest(c, "raw/ses/twice", source="ses", envelope_recipients=["sales@example.test"])
    assert record.outcome == "new-record"


def test_a_transient_store_failure_is_retried_and_its_retry_is_not_taken_for_a_kill(monkeypatch):
    from mailgate.errors import TransientError

    c = stack()
    c.raw_store.put("raw/ses/throttled", mail(message_id="throttled@customer.test"))
    real_load = c.inbound.load

    def throttled(keys):
        raise TransientError("DynamoDB throttled")

    monkeypatch.setattr(c.inbound, "load", throttled)
    with pytest.raises(TransientError):
        inbound.ingest(c, "raw/ses/throttled", source="ses", envelope_recipients=["sales@example.test"])
    monkeypatch.setattr(c.inbound, "load", real_load)
    later = c.inbound.clock() + 3600
    monkeypatch.setattr(c.inbound, "clock", lambda: later)
    record = inbound.ingest(c, "raw/ses/throttled", source="ses", envelope_recipients=["sales@example.test"])
    assert record.outcome == "new-record"
