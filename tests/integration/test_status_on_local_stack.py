"""`mailgate status` on the local stack (the template deployed into the emulator), as a person
running the gateway reads it."""

from __future__ import annotations

import json
import smtplib
import time

import boto3
import pytest

from mailgate_dev.cli.main import main
from mailgate_dev.local.stack import free_port
from tests.integration.test_local_stack import stack  # noqa: F401 - the fixture: a local stack per module

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(stack, monkeypatch, capsys):
    monkeypatch.setenv("MAILGATE_LOCAL_DIR", str(stack.state_dir))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_status_shows_a_disabled_mailbox_and_a_non_empty_dead_letter_queue(stack, cli):
    # A mailbox that failed for five days: its next failed run disables it (the fetch worker's
    # health rule); its host refuses connections.
    assert cli("server", "add-imap", "office", "--host", "127.0.0.1", "--port", str(free_port()),
               "--user", "me", "--no-password")[0] == 0
    c = stack.container()
    c.kv.put_item("health#office", {"failing_since": time.time() - 6 * 86400, "consecutive_failures": 1400,
                                    "last_success": time.time() - 6 * 86400 - 300})
    assert cli("fetch", "now", "office")[0] == 1
    # A fetch job that failed every receive: what SQS's redrive puts in the dead-letter queue.
    boto3.client("sqs", endpoint_url=stack.endpoint, region_name="us-east-1").send_message(
        QueueUrl=stack.outputs["FetchDeadLetterQueueUrl"], MessageBody=json.dumps({"server": "office"}))
    with smtplib.SMTP("127.0.0.1", stack.ports.smtp, timeout=10) as smtp:
        smtp.sendmail("ann@client.test", ["sales@example.test"],
                      b"From: ann@client.test\r\nTo: sales@example.test\r\nSubject: Quote\r\n"
                      b"Message-ID: <status-1@client.test>\r\n\r\nForty chairs, please.\r\n")
    deadline = time.monotonic() + 15  # SES invokes the inbound function asynchronously
    while not c.messages.list(limit=5, direction="in") and time.monotonic() < deadline:
        time.sleep(0.1)

    code, out, err = cli("status")
    assert code == 1, err  # something needs a person
    attention = out.split("Needs attention\n")[1].split("\n\n")[0]
    assert "FetchDeadLetterQueue holds 1 message(s) that failed every retry" in attention
    assert "mailbox office disabled after failing since" in attention and "host unreachable" in attention
    assert "`mailgate server enable office`" in attention
    assert [line.split()[:2] for line in out.splitlines() if line.strip().startswith("FetchDeadLetterQueue")] == [
        ["FetchDeadLetterQueue", "1"]]
    assert "in   new-record 1" in out
    assert "Alarms: no alarms (local stack)" in out

    code, out, _ = cli("status", "--json")
    state = json.loads(out)
    dlq = next(q for q in state["queues"] if q["name"] == "FetchDeadLetterQueue")
    assert dlq["dead_letter"] and dlq["visible"] == 1
    (office,) = state["mailboxes"]
    assert office["health"] == "disabled" and office["disabled_at"] and office["lag_seconds"] > 6 * 86400
    assert state["messages_24h"]["in"] == {"new-record": 1}
    assert state["alarms"] == {"local": True, "in_alarm": []}
    assert [d["domain"] for d in state["dns"]] == ["example.test"]


def test_status_of_a_healthy_stack_is_all_clear_and_watch_redraws(stack, cli, monkeypatch):
    sqs = boto3.client("sqs", endpoint_url=stack.endpoint, region_name="us-east-1")
    sqs.purge_queue(QueueUrl=stack.outputs["FetchDeadLetterQueueUrl"])
    assert cli("server", "remove", "office")[0] == 0
    c = stack.container()
    for r in c.messages.list(limit=50):  # the previous test's message stays in the ledger: fine, it routed
        assert r.outcome != "failed"
    code, out, _ = cli("status")
    assert code == 0 and "All clear" in out and "no incoming server" in out

    frames = []
    monkeypatch.setattr("time.sleep", lambda s: frames.append(s) or (_ for _ in ()).throw(KeyboardInterrupt))
    code, out, _ = cli("status", "--watch", "2", "--json")
    assert code == 130 and frames == [2.0]
    assert json.loads(out.splitlines()[0])["attention"] == []


def test_status_of_a_deployed_stack_names_its_alarms_in_alarm(stack, cli, monkeypatch):
    """The same command with --stack: outputs from CloudFormation, alarms from CloudWatch (the
    emulator's stack is the deployed one here; its alarms never fire by themselves)."""
    cloudwatch = boto3.client("cloudwatch", endpoint_url=stack.endpoint, region_name="us-east-1")
    alarms = cloudwatch.describe_alarms(AlarmNamePrefix="mailgate-OutboundDeadLetterAlarm")["MetricAlarms"]
    assert alarms and alarms[0]["AlarmActions"] == [stack.outputs["AlarmTopicArn"]]
    cloudwatch.set_alarm_state(AlarmName=alarms[0]["AlarmName"], StateValue="ALARM",
                               StateReason="Threshold Crossed: 1 datapoint [3.0] was greater than the threshold (0.0)")
    monkeypatch.setenv("AWS_ENDPOINT_URL", stack.endpoint)
    code, out, err = cli("--stack", "mailgate", "status", "--json")
    state = json.loads(out)
    assert state["stack"] == "stack mailgate" and state["alarms"]["local"] is False
    assert [a["name"] for a in state["alarms"]["in_alarm"]] == [alarms[0]["AlarmName"]]
    assert state["attention"][0].startswith(f"alarm {alarms[0]['AlarmName']}: Threshold Crossed")
    cloudwatch.set_alarm_state(AlarmName=alarms[0]["AlarmName"], StateValue="OK", StateReason="test over")
