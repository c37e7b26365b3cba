"""The local stack as a new user meets it: `mailgate dev`, then mail sent with smtplib."""

import json
import smtplib
import time

import boto3
import pytest

from mailgate_dev.local.stack import LocalStack, Ports, free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = LocalStack(state_dir=tmp_path_factory.mktemp("local"),
                   ports=Ports(aws=free_port(), smtp=free_port(), sink=free_port()), fetch_every=3600)
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def app_events(stack):
    """What the application would consume: an EventBridge rule on the bus, delivering to a queue."""
    kw = {"endpoint_url": stack.endpoint, "region_name": "us-east-1"}
    sqs, events = boto3.client("sqs", **kw), boto3.client("events", **kw)
    url = sqs.create_queue(QueueName="app-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = stack.settings.event_bus_name
    events.put_rule(Name="app", EventBusName=bus, EventPattern=json.dumps({"source": ["mailgate"]}))
    events.put_targets(Rule="app", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])

    def read(n_wanted: int = 1, timeout: float = 10.0):
        got, deadline = [], time.monotonic() + timeout
        while len(got) < n_wanted and time.monotonic() < deadline:
            for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                got.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return got

    return read


def wait_for(predicate, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def send(stack, raw: bytes, to: list[str], mail_from: str = "ann@client.test") -> str:
    with smtplib.SMTP("127.0.0.1", stack.ports.smtp, timeout=10) as smtp:
        code, reply = smtp.ehlo()
        assert code == 250
        smtp.sendmail(mail_from, to, raw)
        return smtp.noop()[1].decode()


def test_the_stack_is_deployed_from_the_template_and_writes_its_state(stack):
    state = json.loads((stack.state_dir / "stack.json").read_text())
    assert state["endpoint"] == stack.endpoint
    cfn = boto3.client("cloudformation", endpoint_url=stack.endpoint, region_name="us-east-1")
    resources = cfn.describe_stack_resources(StackName="mailgate")["StackResources"]
    kinds = {r["ResourceType"] for r in resources}
    assert {"AWS::SES::ReceiptRule", "AWS::DynamoDB::Table", "AWS::S3::BucketPolicy",
            "AWS::SecretsManager::Secret", "AWS::SQS::Queue", "AWS::Lambda::Function"} <= kinds
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in resources)
    ses = boto3.client("ses", endpoint_url=stack.endpoint, region_name="us-east-1")
    assert ses.describe_active_receipt_rule_set()["Metadata"]["Name"] == state["outputs"]["ReceiptRuleSetName"]


def test_mail_to_sales_is_stored_raw_then_routed_to_a_new_record_with_an_event(stack, app_events):
    raw = (b"From: Ann <ann@client.test>\r\nTo: sales@example.test\r\nSubject: Quote please\r\n"
           b"Message-ID: <quote-1@client.test>\r\n\r\nHello, we need 40 chairs.\r\n")
    send(stack, raw, ["sales@example.test"])
    c = stack.container()
    s3 = boto3.client("s3", endpoint_url=stack.endpoint, region_name="us-east-1")
    keys = wait_for(lambda: [o["Key"] for o in s3.list_objects_v2(Bucket=c.settings.bucket_name,
                                                                    Prefix="raw/ses/").get("Contents", [])])
    assert any(s3.get_object(Bucket=c.settings.bucket_name, Key=k)["Body"].read() == raw for k in keys)
    record = wait_for(lambda: next((r for r in c.messages.list() if r.message_id == "quote-1@client.test"), None))
    assert record.outcome == "new-record" and record.raw_key.startswith("raw/ses/")
    events = app_events(1)
    assert events[0]["detail-type"] == "Record To Create"
    assert events[0]["detail"]["model"] == "crm.lead"
    assert "40 chairs" in json.dumps(events[0]["detail"])


def test_the_same_message_delivered_twice_creates_one_record(stack):
    raw = (b"From: bob@client.test\r\nTo: sales@example.test\r\nSubject: Twice\r\n"
           b"Message-ID: <twice@client.test>\r\n\r\nOnce only.\r\n")
    send(stack, raw, ["sales@example.test"], "bob@client.test")
    send(stack, raw, ["sales@example.test"], "bob@client.test")
    c = stack.container()
    wait_for(lambda: len(stack.receiver.received) >= 2 and
             any(r.message_id == "twice@client.test" for r in c.messages.list()))
    time.sleep(1.0)  # let the second asynchronous invocation finish
    assert [r.message_id for r in c.messages.list(limit=200)].count("twice@client.test") == 1


def test_a_recipient_outside_the_gateway_domains_is_refused_like_ses_does(stack):
    with smtplib.SMTP("127.0.0.1", stack.ports.smtp, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("ann@client.test")
        code, reply = smtp.rcpt("someone@elsewhere.test")
    assert code == 550 and b"no receipt rule" in reply


def test_a_second_stack_on_the_same_ports_says_which_port_is_taken(stack, tmp_path):
    from mailgate.errors import ConfigError

    with pytest.raises(ConfigError, match=f"port {stack.ports.aws} .* already in use"):
        LocalStack(state_dir=tmp_path, ports=stack.ports).start()


def test_a_reply_to_the_reply_address_joins_the_thread_and_the_follower_is_notified_signed(stack, app_events):
    import email
    import email.policy

    from mailgate import tokens

    c = stack.container()
    raw = (b"From: Dora <dora@client.test>\r\nTo: sales@example.test\r\nSubject: Desks\r\n"
           b"Message-ID: <desks-1@client.test>\r\n\r\nTen desks, please.\r\n")
    send(stack, raw, ["sales@example.test"], "dora@client.test")
    first = wait_for(lambda: next((r for r in c.messages.list() if r.message_id == "desks-1@client.test"), None))
    c.threads.add_follower(first.thread_id, "rep@staff.test")
    app_events(1)  # the Record To Create
    reply_to = tokens.reply_address(c.token_key, "catchall", "example.test", first.thread_id)
    reply = (f"From: Dora <dora@client.test>\r\nTo: {reply_to}\r\nSubject: Re: Desks\r\n"
             f"Message-ID: <desks-2@client.test>\r\nIn-Reply-To: <desks-1@client.test>\r\n\r\n"
             f"Make it twelve.\r\n\r\nOn Monday Dora wrote:\r\n> Ten desks, please.\r\n").encode()
    send(stack, reply, [reply_to], "dora@client.test")
    second = wait_for(lambda: next((r for r in c.messages.list() if r.message_id == "desks-2@client.test"), None))
    assert second.outcome == "thread" and second.thread_id == first.thread_id
    [event] = app_events(1)
    assert event["detail-type"] == "Message Routed To Thread"
    assert event["detail"]["reply_text"].strip() == "Make it twelve."
    # The follower (not the author) is notified through the outbound queue, DKIM-signed, with
    # the thread's reply address to answer to.
    delivered = wait_for(lambda: [m for m in stack.sink.messages if "rep@staff.test" in m["rcpt_tos"]], timeout=30)
    notice = email.message_from_bytes(delivered[0]["raw"], policy=email.policy.default)
    assert notice["DKIM-Signature"] and "Make it twelve." in notice.get_body(("plain",)).get_content()
    assert tokens.parse_reply_address(c.token_key, notice["Reply-To"].addresses[0].addr_spec) == first.thread_id
    assert not [m for m in stack.sink.messages if "dora@client.test" in m["rcpt_tos"]]


def test_concurrent_invocations_of_one_ses_event_make_one_result(stack):
    import threading

    from mailgate_dev.local.invoker import invoke
    from mailgate_dev.local.ses_receiver import build_ses_event, ses_message_id

    c = stack.container()
    raw = (b"From: eve@client.test\r\nTo: sales@example.test\r\nSubject: Race\r\n"
           b"Message-ID: <race@client.test>\r\n\r\nsame event, four invocations\r\n")
    ses_id = ses_message_id()
    c.raw_store.put(c.settings.ses_raw_prefix + ses_id, raw)
    event = build_ses_event(raw, mail_from="eve@client.test", recipients=["sales@example.test"],
                            message_id=ses_id, function_arn="arn:aws:lambda:us-east-1:123456789012:function:x")
    results = []
    threads = [threading.Thread(target=lambda: results.append(invoke("inbound", event))) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    keys = {r["results"][0]["key"] for r in results}
    assert len(results) == 4 and len(keys) == 1
    assert [r.message_id for r in c.messages.list(limit=500)].count("race@client.test") == 1
