"""The local stack as a new user meets it: `mailgate dev`, then mail sent with smtplib."""

import json
import smtplib
import time

import boto3
import pytest

from mailgate.local.stack import LocalStack, Ports, free_port

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
