"""What the handlers tell CloudWatch (EMF lines on stdout), as the alarms and the dashboard read it."""

from __future__ import annotations

import json

import pytest

from mailgate.domain import IncomingServer
from mailgate.entrypoints import _runtime, fetch_worker, outbound
from mailgate.services import fetch
from mailgate_dev import fakes


def emf(capsys) -> list[dict]:
    """The metric lines printed since the last call: {name: value(s), dimensions...}."""
    out = []
    for line in capsys.readouterr().out.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if "_aws" in doc:
            out.append(doc)
    return out


def values(lines: list[dict], name: str) -> list[float]:
    got = []
    for doc in lines:
        v = doc.get(name)
        if v is not None:
            got += v if isinstance(v, list) else [v]
    return got


@pytest.fixture(autouse=True)
def _clean_metrics():
    _runtime.metrics.clear_metrics()
    _runtime.emit_tallies()
    yield
    _runtime.metrics.clear_metrics()


class Unreachable:
    def __call__(self, server, password):
        from mailgate.errors import TransientError

        raise TransientError("connection refused", code="unreachable")


def test_a_failing_mailbox_reports_how_long_it_has_failed_even_when_the_job_is_handed_out_again(capsys):
    import time

    from mailgate.errors import TransientError

    c = fakes.in_memory(mailboxes=Unreachable())
    c.config.put_incoming(IncomingServer(name="shop", protocol="imap", host="h", port=993, user="u"))
    c.secrets.put("mailgate/server/shop", "pw")
    c.kv.put_item("health#shop", {"failing_since": time.time() - 4000, "consecutive_failures": 12,
                                  "last_success": time.time() - 4300})
    with pytest.raises(TransientError):  # SQS hands the job out again
        fetch.run_job(c, {"server": "shop"}, deadline=time.monotonic() + 60, observe=fetch_worker.observe)
    _runtime.metrics.flush_metrics()
    lines = emf(capsys)
    assert values(lines, "FetchFailingSeconds") == [pytest.approx(4000, abs=5)]
    assert values(lines, "FetchLagSeconds") == [pytest.approx(4300, abs=5)]
    assert all(doc.get("service") == "mailgate" for doc in lines)


def test_fetched_messages_count_per_outcome_like_received_ones(capsys):
    res = fetch.FetchResult(server="shop", outcomes={"new-record": 2, "failed": 1}, lag_seconds=310.0)
    fetch_worker.observe(res)
    _runtime.metrics.flush_metrics()
    lines = emf(capsys)
    assert values(lines, "InboundNewRecord") == [2.0] and values(lines, "InboundFailed") == [1.0]
    assert values(lines, "FetchLagSeconds") == [310.0] and values(lines, "FetchFailingSeconds") == [0.0]


def test_outbound_counts_each_recipient_once_per_transport_when_its_request_is_settled(capsys):
    outbound.count_recipients({"status": "retrying", "transport": "ses", "recipients": [
        {"address": "a@x.test", "status": "sent"}, {"address": "b@x.test", "status": "deferred"}]})
    outbound.count_recipients({"status": "partial", "transport": "ses", "recipients": [
        {"address": "a@x.test", "status": "sent"}, {"address": "b@x.test", "status": "failed"}]})
    outbound.count_recipients({"status": "duplicate", "transport": "ses", "recipients": [
        {"address": "a@x.test", "status": "sent"}]})
    outbound.count_recipients({"status": "sent", "transport": "office-smtp", "recipients": [
        {"address": "c@x.test", "status": "sent"}]})
    _runtime.emit_tallies()
    lines = {(next(iter(set(d) - {"_aws", "service", "Transport"})), d["Transport"]): d for d in emf(capsys)}
    assert {k: values([d], k[0]) for k, d in lines.items()} == {
        ("OutboundSent", "ses"): [1.0], ("OutboundFailed", "ses"): [1.0], ("OutboundDeferred", "ses"): [1.0],
        ("OutboundSent", "office-smtp"): [1.0]}
    for d in lines.values():
        (dims,) = d["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
        assert sorted(dims) == ["Transport", "service"] and d["service"] == "mailgate"
