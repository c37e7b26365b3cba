"""Faults injected into the inbound and outbound paths on the AWS emulator: a real handler in a
process of its own, killed (os._exit) at a named failpoint between two steps, then the retry
Lambda or SQS would make, or the outbox sweep. Asserted on what the application sees: the events
on its bus (an EventBridge rule delivering to a queue), the ledger, the mail in the SMTP sink.
0 lost, 0 doubled (an event repeated after a crash carries the same event_id, which the
application drops).

The fetch path's faults are in the fetch tests (tests/integration/test_fetch_*.py).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time

import boto3
import pytest

from mailgate import bootstrap, bounce_policy, failpoints, keyring, tokens
from mailgate import settings as settings_mod
from mailgate import dkim as D
from mailgate.adapters.dynamo import DynamoOutbox
from mailgate.adapters.senders import Transports
from mailgate.domain import Alias, AliasDomain, MessageRecord, OutgoingServer, Thread, server_secret_id
from mailgate.services import inbound, outbound, outbox
from mailgate_dev.local.invoker import invoke, scheduled_event, sqs_event
from mailgate_dev.local.ses_receiver import build_ses_event, ses_message_id

pytestmark = pytest.mark.integration
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# --- the world: a stack on the emulator, the application's view of it ------------------------


@pytest.fixture
def c(aws):
    aws.config.put_domain(AliasDomain("example.test", dkim_selector="mg"))
    aws.config.put_alias(Alias("example.test", "sales", "crm.lead"))
    bootstrap.set_container(aws)
    yield aws
    bootstrap.set_container(None)


@pytest.fixture
def app(c):
    """What the application consumes: a rule on the bus delivering every event to a queue.
    `app()` returns the events received since the last call, waiting for at least `n`."""
    kw = {"endpoint_url": c.settings.endpoint_url, "region_name": "us-east-1"}
    sqs, events = boto3.client("sqs", **kw), boto3.client("events", **kw)
    name = c.settings.event_bus_name
    url = sqs.create_queue(QueueName=f"app-{name}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="app", EventBusName=name, EventPattern=json.dumps({"source": ["mailgate"]}))
    events.put_targets(Rule="app", EventBusName=name, Targets=[{"Id": "q", "Arn": arn}])

    def read(n: int = 0, timeout: float = 3.0) -> list[dict]:
        got, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            for m in messages:
                got.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            if not messages:
                if len(got) >= n:
                    break
                time.sleep(0.1)
        return got

    return read


def _env(s) -> dict[str, str]:
    return {**os.environ, settings_mod.TABLE_NAME: s.table_name, settings_mod.BUCKET_NAME: s.bucket_name,
            settings_mod.EVENT_BUS_NAME: s.event_bus_name, settings_mod.OUTBOUND_QUEUE_URL: s.outbound_queue_url,
            settings_mod.FETCH_QUEUE_URL: s.fetch_queue_url, settings_mod.GATEWAY_DOMAIN: s.gateway_domain,
            settings_mod.TOKEN_SECRET_ID: s.token_secret_id, settings_mod.DKIM_SECRET_PREFIX: s.dkim_secret_prefix,
            settings_mod.SERVER_SECRET_PREFIX: s.server_secret_prefix, settings_mod.AWS_ENDPOINT_URL: s.endpoint_url,
            # the stack's own topic, not one a local stack started earlier left in this environment
            settings_mod.FEEDBACK_TOPIC_ARN: s.feedback_topic_arn,
            "POWERTOOLS_METRICS_NAMESPACE": "mailgate", "POWERTOOLS_DEV": "false"}


def run_killed(c, tmp_path, function: str, event: dict, failpoint: str, **kw) -> None:
    """The handler in a process of its own, which must die at `failpoint`."""
    path = tmp_path / f"{function}-event.json"
    path.write_text(json.dumps(event))
    args = [sys.executable, "-m", "tests.fixtures._lambda_process", function, str(path)]
    if kw.get("cafile"):
        args += ["--cafile", str(kw["cafile"])]
    proc = subprocess.run(args, cwd=REPO, env={**_env(c.settings), "MAILGATE_FAILPOINTS": failpoint},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == failpoints.KILLED, f"exit {proc.returncode}: {proc.stderr[-2000:]}"


def later(c, seconds: float):
    """The container as Lambda's retry or the sweep sees it `seconds` from now (the killed
    invocation's hold on its effects, and its attempt marker, have run out by then)."""
    c.inbound.clock = lambda: time.time() + seconds
    c.outbox = DynamoOutbox(clock=lambda: time.time() + seconds)
    return c


# --- inbound ------------------------------------------------------------------------------------


def receive(c, raw: bytes, to: str = "sales@example.test") -> dict:
    """SES's part: the raw message stored by the S3 action, and the Lambda action's event."""
    ses_id = ses_message_id()
    c.raw_store.put(c.settings.ses_raw_prefix + ses_id, raw)
    return build_ses_event(raw, mail_from="ann@client.test", recipients=[to], message_id=ses_id,
                           function_arn="arn:aws:lambda:us-east-1:123456789012:function:mailgate-inbound")


def quote(n: str) -> bytes:
    return (f"From: Ann <ann@client.test>\r\nTo: sales@example.test\r\nSubject: Quote {n}\r\n"
            f"Message-ID: <fault-{n}@client.test>\r\n\r\nWe need 40 chairs.\r\n").encode()


def ids(events: list[dict]) -> list[str]:
    return [e["detail"]["event_id"] for e in events]


def test_killed_after_the_commit_the_retry_publishes_the_event_once(c, app, tmp_path):
    event = receive(c, quote("commit"))
    run_killed(c, tmp_path, "inbound", event, "inbound.after-commit")
    [record] = c.messages.list(direction="in")
    assert record.outcome == "new-record" and app() == []  # recorded, the application not told
    invoke("inbound", event)  # a retry while the killed invocation could still run: left alone
    assert app() == []
    later(c, 180)
    invoke("inbound", event)  # Lambda's retry, after that invocation's end
    [seen] = app(1)
    assert seen["detail-type"] == "Record To Create" and seen["detail"]["message_key"] == record.key
    invoke("inbound", event)
    assert app() == [] and len(c.messages.list(direction="in")) == 1


def test_killed_after_the_commit_the_sweep_publishes_the_event_and_the_notification_once(c, app, tmp_path):
    c.threads.put_thread(Thread("t1", model="crm.lead", record_id="5", followers=["rep@example.org"]))
    addr = tokens.reply_address(c.token_key, "catchall", "example.test", "t1")
    event = receive(c, quote("sweep").replace(b"To: sales@example.test", f"To: {addr}".encode()), to=addr)
    run_killed(c, tmp_path, "inbound", event, "inbound.after-commit")
    assert app() == []
    assert outbox.sweep(c)["entries"] == 0  # too young: its writer may still be at work
    later(c, 600)
    assert invoke("outbox_sweep", scheduled_event("mailgate-outbox-sweep"))["entries"] == 1  # the schedule's run
    [seen] = app(1)
    assert seen["detail-type"] == "Message Routed To Thread"
    queued = boto3.client("sqs", endpoint_url=c.settings.endpoint_url, region_name="us-east-1").receive_message(
        QueueUrl=c.settings.outbound_queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["to"] for m in queued] == [["rep@example.org"]]
    assert outbox.sweep(later(c, 1200))["entries"] == 0 and app() == []


def test_killed_after_publishing_before_settling_the_repeat_carries_the_same_event_id(c, app, tmp_path):
    event = receive(c, quote("settle"))
    run_killed(c, tmp_path, "inbound", event, "outbox.before-settle")
    first = app(1)
    outbox.sweep(later(c, 600))
    repeat = app(1)
    assert len(first) == len(repeat) == 1 and ids(first) == ids(repeat)  # the application drops it
    assert outbox.sweep(later(c, 1200))["entries"] == 0


def test_killed_while_routing_the_retry_records_it_failed_without_routing_again(c, app, tmp_path, monkeypatch):
    event = receive(c, quote("routing"))
    run_killed(c, tmp_path, "inbound", event, "inbound.routing")
    assert c.messages.list(direction="in") == [] and app() == []
    routed = []
    monkeypatch.setattr(inbound.routing, "decide", lambda *a, **k: routed.append(1))
    later(c, 180)
    [result] = invoke("inbound", event)["results"]
    assert routed == [] and result["outcome"] == "failed" and "attempt 1" in result["reason"]
    monkeypatch.undo()
    c.inbound.clock = time.time
    invoke("inbound", event)  # Lambda's last retry: the same record, nothing routed
    assert [r.key for r in c.messages.list(direction="in")] == [result["key"]]
    again = inbound.replay(c, result["key"])  # the operator, after a fix
    assert again.outcome == "new-record"
    assert [e["detail-type"] for e in app(1)] == ["Record To Create"]


# --- outbound ------------------------------------------------------------------------------------


@pytest.fixture
def relay(c, smtp_server, smtp_tls):
    """The customer's SMTP host (STARTTLS + AUTH) as the outgoing server of example.test; the
    retries run in this process, whose transports trust the test CA like the killed one's."""
    c.transports = Transports(cafile=str(smtp_tls.ca_file))
    key = D.generate_key("rsa", 2048)
    c.secrets.put(keyring.secret_id(c.settings, "example.test", "mg"), D.private_pem(key))
    secret = server_secret_id(c.settings.server_secret_prefix, "smtp", "relay")
    c.secrets.put(secret, smtp_server.password)
    c.config.put_outgoing(OutgoingServer(name="relay", host="127.0.0.1", port=smtp_server.port, secret_id=secret,
                                         user=smtp_server.user, security="starttls", from_filter="example.test"))
    return smtp_server


def send_event(c, key: str) -> dict:
    body = json.dumps({"idempotency_key": key, "from": "Billing <billing@example.test>",
                       "to": ["bob@example.org", "carol@example.org"], "subject": "Invoice", "text": "Invoice."})
    return sqs_event([{"MessageId": f"m-{key}", "ReceiptHandle": f"h-{key}", "Body": body,
                       "Attributes": {"ApproximateReceiveCount": "1"}}], "arn:aws:sqs:us-east-1:123456789012:out")


def lease_expired(c, key: str) -> None:
    """SQS hands the request out again after its visibility timeout (360 s), when the killed
    worker's 5-minute lease has run out."""
    c.kv.delete_item(f"outlease#{outbound.recorded_ref(c, key)}")


def delivered(sink) -> list[str]:
    return [r for m in sink.messages for r in m.rcpt_tos]


def test_killed_after_the_send_before_the_record_the_recipient_is_never_sent_twice(c, app, relay, smtp_tls,
                                                                                    tmp_path):
    run_killed(c, tmp_path, "outbound", send_event(c, "inv-1"), "outbound.after-send", cafile=smtp_tls.ca_file)
    assert delivered(relay) == ["bob@example.org"] and app() == []
    lease_expired(c, "inv-1")
    assert invoke("outbound", send_event(c, "inv-1")) == {"batchItemFailures": []}
    assert delivered(relay) == ["bob@example.org", "carol@example.org"]  # bob once, carol once
    [seen] = app(1)
    statuses = {r["address"]: r["status"] for r in seen["detail"]["recipients"]}
    # the transport cannot say whether bob's transaction finished: reported, not repeated
    assert statuses == {"bob@example.org": "unknown", "carol@example.org": "sent"}


def test_killed_after_the_record_before_the_send_result_the_retry_publishes_it_once(c, app, relay, smtp_tls,
                                                                                      tmp_path):
    run_killed(c, tmp_path, "outbound", send_event(c, "inv-2"), "outbound.after-record", cafile=smtp_tls.ca_file)
    assert delivered(relay) == ["bob@example.org", "carol@example.org"] and app() == []
    lease_expired(c, "inv-2")
    assert invoke("outbound", send_event(c, "inv-2")) == {"batchItemFailures": []}
    [seen] = app(1)
    assert seen["detail-type"] == "Send Result" and seen["detail"]["status"] == "sent"
    assert delivered(relay) == ["bob@example.org", "carol@example.org"]
    assert invoke("outbound", send_event(c, "inv-2")) == {"batchItemFailures": []} and app() == []


# --- feedback -----------------------------------------------------------------------------------


def ses_bounce(c) -> dict:
    """SES's bounce notification (through the stack's SNS topic) for a message we sent."""
    c.messages.claim(MessageRecord(key="out:k5xq3b7yzm2a4c6e8g0i", raw_key="outbound/k5xq3b7yzm2a4c6e8g0i.eml",
                                   direction="out", recipients=["nobody@customer.example"],
                                   message_id="<k5xq3b7yzm2a4c6e8g0i@example.test>"))
    return json.loads((pathlib.Path(REPO) / "events" / "sns-ses-bounce.json").read_text())


def test_killed_between_counting_a_bounce_and_publishing_it_the_retry_publishes_it_once(c, app, tmp_path):
    event = ses_bounce(c)
    run_killed(c, tmp_path, "feedback", event, "feedback.before-publish")
    assert app() == []
    [result] = invoke("feedback", event)["results"]  # SNS's retry of the failed invocation
    [seen] = app(1)
    assert result["outcome"] == "bounced" and seen["detail-type"] == "Bounce"
    assert seen["detail"]["address"] == "nobody@customer.example" and seen["detail"]["newly_suppressed"] is True
    assert bounce_policy.score(c.kv, "example.test", "nobody@customer.example") == 2  # counted once
    assert invoke("feedback", event)["results"][0]["outcome"] == "duplicate" and app() == []


def test_killed_after_publishing_a_bounce_the_retry_counts_it_once_and_a_repeat_has_its_id(c, app, tmp_path):
    event = ses_bounce(c)
    run_killed(c, tmp_path, "feedback", event, "feedback.after-publish")
    first = app(1)
    invoke("feedback", event)
    seen = first + app()
    assert len(seen) >= 1 and len(set(ids(seen))) == 1 and all(ids(seen))  # the application drops a repeat
    assert bounce_policy.score(c.kv, "example.test", "nobody@customer.example") == 2
    assert invoke("feedback", event)["results"][0]["outcome"] == "duplicate" and app() == []
