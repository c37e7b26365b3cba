"""The fetch schedule index and the batched job queueing, on the emulator's DynamoDB and SQS."""

from __future__ import annotations

import importlib
import json

import pytest

from mailgate.adapters import aws as aws_adapters
from mailgate.adapters import dynamo
from mailgate.domain import IncomingServer
from mailgate.errors import TransientError
from mailgate.services import fetch

pytestmark = pytest.mark.integration
dispatch_mod = importlib.import_module("mailgate.services.fetch.dispatch")
T = 1_800_000_000.0


def server(name: str, **kw) -> IncomingServer:
    return IncomingServer(name=name, protocol="imap", host="h", port=993, user="u", **kw)


def queued(c) -> list[str]:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=c.settings.endpoint_url, region_name="us-east-1")
    names = []
    while True:
        got = sqs.receive_message(QueueUrl=c.settings.fetch_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return sorted(names)
        for m in got:
            names.append(json.loads(m["Body"])["server"])
            sqs.delete_message(QueueUrl=c.settings.fetch_queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_the_index_holds_enabled_servers_by_due_time_and_counts_the_disabled(aws):
    c = aws
    for i in range(12):  # more than one SQS batch of ten
        c.config.put_incoming(server(f"box{i:02d}", enabled=i != 11, interval_minutes=60 if i % 2 else 5))
    assert len(c.config.due_incoming(T)) == 11 and c.config.count_disabled_incoming() == 1
    assert fetch.dispatch(c, now=T) == 11
    assert queued(c) == [f"box{i:02d}" for i in range(11)]
    assert [e.name for e in c.config.due_incoming(T + 300)] == [f"box{i:02d}" for i in range(0, 11, 2)]
    assert fetch.dispatch(c, now=T + 300) == 6
    stale = c.config.due_incoming(T + 3600)[0]
    assert c.config.reschedule_incoming(stale, T + 9000)
    assert not c.config.reschedule_incoming(stale, T + 9000)  # moved meanwhile: the condition fails
    assert c.config.delete_server("box00") and "box00" not in {e.name for e in c.config.due_incoming(T + 99999)}


def test_servers_saved_before_the_index_existed_are_scheduled_by_the_first_run(aws):
    c = aws
    c.config.put_incoming(server("legacy"))
    dynamo.ScheduleItem("fetchsched#legacy", "fetchsched").delete()  # as an older version left it
    dispatch_mod._index_checked.discard(c.kv)
    assert c.config.due_incoming(T) == []
    assert fetch.dispatch(c, now=T) == 1 and queued(c) == ["legacy"]


def test_send_many_reports_what_sqs_did_not_take_and_the_dispatch_keeps_it_due(aws):
    c = aws
    missing = aws_adapters.SqsQueue(c.outbound_queue.clients, c.settings.fetch_queue_url + "-gone")
    assert missing.send_many([{"server": "x"}] * 12) == list(range(12))
    c.fetch_queue = missing
    c.config.put_incoming(server("later"))
    with pytest.raises(TransientError):
        fetch.dispatch(c, now=T)
    assert [e.name for e in c.config.due_incoming(T)] == ["later"]
