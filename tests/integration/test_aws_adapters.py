"""The DynamoDB, S3, SQS, EventBridge and Secrets Manager adapters against the emulator over HTTP."""

import json
import threading

import boto3
import pytest

from mailgate.domain import Alias, AliasDomain, IncomingServer, MessageRecord, OutgoingServer, Thread
from mailgate.errors import NotFound

pytestmark = pytest.mark.integration


def test_alias_domain_and_aliases_round_trip_through_dynamodb(aws):
    aws.config.put_domain(AliasDomain("Example.TEST", loop_allowlist=("boss@example.test",)))
    aws.config.put_alias(Alias("example.test", "Sales", "crm.lead", defaults={"team": "eu"}))
    aws.config.put_alias(Alias("example.test", "support", "helpdesk.ticket", contact_policy="followers"))

    domain = aws.config.get_domain("example.test")
    assert domain.catchall_address == "catchall@example.test"
    assert domain.loop_allowlist == ("boss@example.test",)
    assert aws.config.get_alias("EXAMPLE.test", "sales").defaults == {"team": "eu"}
    assert [a.name for a in aws.config.list_aliases("example.test")] == ["sales", "support"]
    assert [d.name for d in aws.config.list_domains()] == ["example.test"]
    assert aws.config.delete_alias("example.test", "sales") is True
    assert aws.config.delete_alias("example.test", "sales") is False
    assert aws.config.get_alias("example.test", "sales") is None


def test_servers_are_listed_by_direction_and_outgoing_by_priority(aws):
    aws.config.put_incoming(IncomingServer("office", "imap", "imap.example.test", 993, "me"))
    aws.config.put_outgoing(OutgoingServer("backup", "smtp2.example.test", 587, priority=20))
    aws.config.put_outgoing(OutgoingServer("main", "smtp.example.test", 465, security="ssl", priority=5))
    assert [s.name for s in aws.config.list_incoming()] == ["office"]
    assert [s.name for s in aws.config.list_outgoing()] == ["main", "backup"]
    assert aws.config.get_outgoing("office") is None
    assert aws.config.delete_server("office") and not aws.config.delete_server("office")


def test_thread_followers_and_message_id_index(aws):
    aws.threads.put_thread(Thread("t1", model="crm.lead", record_id="42", followers=["a@x.test"]))
    aws.threads.add_follower("t1", "b@x.test")
    aws.threads.add_follower("t1", "A@x.test")
    assert aws.threads.get_thread("t1").followers == ["a@x.test", "b@x.test"]
    assert aws.threads.find_thread_for_record("crm.lead", "42").thread_id == "t1"
    aws.threads.index_message_id("m1@x.test", "t1")
    assert aws.threads.threads_for_message_ids(["m0@x", "m1@x.test"]) == {"m1@x.test": "t1"}
    aws.threads.index_message_id("m2@x.test", "t1")
    aws.threads.index_message_id("other@x.test", "t2")
    assert aws.threads.recent_message_ids("t1") == ["m1@x.test", "m2@x.test"]
    assert aws.threads.recent_message_ids("t1", limit=1) == ["m2@x.test"]
    # the first thread a Message-ID was indexed in keeps it (anyone can send mail under a known one)
    aws.threads.index_message_id("m1@x.test", "t2")
    assert aws.threads.threads_for_message_ids(["m1@x.test"]) == {"m1@x.test": "t1"}
    assert aws.threads.recent_message_ids("t2") == ["other@x.test"]


def test_linking_a_thread_to_a_record_writes_the_link_only_and_once(aws):
    aws.threads.put_thread(Thread("t9", model="crm.lead", followers=["a@x.test"]))
    aws.threads.add_follower("t9", "b@x.test")
    assert aws.threads.link_record("t9", "crm.lead", "7") is True
    assert aws.threads.link_record("t9", "crm.lead", "7") is True  # the same link again
    assert aws.threads.link_record("t9", "crm.lead", "8") is False  # another record: refused
    assert aws.threads.link_record("nope", "crm.lead", "9") is False
    thread = aws.threads.get_thread("t9")
    assert (thread.record_id, thread.followers) == ("7", ["a@x.test", "b@x.test"])
    assert aws.threads.find_thread_for_record("crm.lead", "7").thread_id == "t9"


def test_message_claim_is_exactly_once_under_concurrency(aws):
    wins = []

    def claim():
        wins.append(aws.messages.claim(MessageRecord(key="k1", raw_key="raw/k1", subject="hi")))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert wins.count(True) == 1
    record = aws.messages.get("k1")
    record.outcome = "thread"
    aws.messages.update(record)
    assert [r.outcome for r in aws.messages.list(direction="in")] == ["thread"]


def test_counter_window_and_key_value_conditions(aws):
    assert [aws.counters.incr("s#a", window_seconds=60) for _ in range(3)] == [1, 2, 3]
    assert aws.counters.get("s#a") == 3
    assert aws.kv.put_item("lease#box", {"owner": "w1"}, ttl_seconds=60, if_absent=True)
    assert not aws.kv.put_item("lease#box", {"owner": "w2"}, ttl_seconds=60, if_absent=True)
    assert aws.kv.put_item("cursor#box", {"version": 1, "uid": 5}, if_version=0)
    assert not aws.kv.put_item("cursor#box", {"version": 1, "uid": 9}, if_version=0)
    assert aws.kv.get_item("cursor#box")["uid"] == 5
    assert [k for k, _ in aws.kv.scan_prefix("lease#")] == ["lease#box"]


def _secret_reads(clients) -> list[str]:
    """The GetSecretValue calls the store's client makes, as the SDK sends them."""
    reads: list[str] = []
    clients.secretsmanager.meta.events.register(
        "before-parameter-build.secrets-manager.GetSecretValue", lambda params, **kw: reads.append(params["SecretId"]))
    return reads


def test_a_warm_store_reads_a_secret_once_and_sees_it_rotated_within_its_cache_age(aws):
    import time

    from mailgate.adapters.aws import Clients, SecretsManagerStore

    clients = Clients(aws.settings)
    # a cache age of a few seconds: the twenty reads and the rotation below must fall within it
    # even on a loaded machine (with 1 s a slow emulator call made the test flaky)
    store, reads = SecretsManagerStore(clients, max_age=4), _secret_reads(clients)
    store.put("t/server/rotating", "before")
    assert [store.get("t/server/rotating") for _ in range(20)] == ["before"] * 20
    assert reads == ["t/server/rotating"]  # one call for twenty messages
    # rotated by someone else (Secrets Manager rotation, the CLI on another machine)
    sm = boto3.client("secretsmanager", endpoint_url=aws.settings.endpoint_url, region_name="us-east-1")
    sm.put_secret_value(SecretId="t/server/rotating", SecretString="after")
    assert store.get("t/server/rotating") == "before"  # still within its cache age
    time.sleep(4.1)
    assert store.get("t/server/rotating") == "after"
    assert len(reads) == 2


def test_a_rotated_reply_token_key_is_in_use_within_the_secret_cache_age(aws):
    import time

    from mailgate import tokens
    from mailgate.adapters.aws import SecretsManagerStore

    aws.secrets = SecretsManagerStore(aws.raw_store.clients, max_age=1)
    before = aws.token_key
    sent = tokens.reply_address(before, "catchall", "example.test", "threadbeforerot")
    sm = boto3.client("secretsmanager", endpoint_url=aws.settings.endpoint_url, region_name="us-east-1")
    sm.put_secret_value(SecretId=aws.settings.token_secret_id, SecretString=tokens.rotate(before).to_secret())
    time.sleep(1.1)
    after = aws.token_key
    assert (before.current.kid, after.current.kid, after.previous.kid) == ("aa", "ab", "aa")
    assert tokens.parse_reply_address(after, sent) == "threadbeforerot"  # addresses in circulation


def test_secret_store_says_what_is_missing_or_unreadable(aws):
    from mailgate.errors import PermanentError

    with pytest.raises(NotFound, match="t/server/none"):
        aws.secrets.get("t/server/none")
    aws.secrets.put("t/server/none", "now there")  # not remembered as missing
    assert aws.secrets.get("t/server/none") == "now there"
    sm = boto3.client("secretsmanager", endpoint_url=aws.settings.endpoint_url, region_name="us-east-1")
    sm.create_secret(Name="t/server/binary", SecretBinary=b"\x00\x01")
    with pytest.raises(PermanentError, match="binary"):
        aws.secrets.get("t/server/binary")


def test_raw_store_events_queue_and_secrets(aws):
    aws.raw_store.put("raw/x.eml", b"Subject: hi\r\n\r\nbody")
    assert aws.raw_store.get("raw/x.eml").endswith(b"body")
    assert aws.raw_store.exists("raw/x.eml") and not aws.raw_store.exists("raw/y.eml")
    with pytest.raises(NotFound):
        aws.raw_store.get("raw/y.eml")
    aws.events.publish("Message Outcome", {"key": "k"})
    aws.outbound_queue.send({"to": ["a@x.test"]})
    sqs = boto3.client("sqs", endpoint_url=aws.settings.endpoint_url, region_name="us-east-1")
    got = sqs.receive_message(QueueUrl=aws.settings.outbound_queue_url, VisibilityTimeout=0)["Messages"][0]
    assert json.loads(got["Body"]) == {"to": ["a@x.test"]}
    aws.outbound_queue.change_visibility(got["ReceiptHandle"], 600)  # backoff: not visible for 10 min
    assert "Messages" not in sqs.receive_message(QueueUrl=aws.settings.outbound_queue_url, WaitTimeSeconds=0)
    aws.secrets.put("t/server/x", "s3cret")
    aws.secrets.put("t/server/x", "n3w")
    assert aws.secrets.get("t/server/x") == "n3w"
    assert aws.token_key.current.secret.startswith(b"local-token-key-")


def test_a_throttled_table_raises_transient_errors_and_a_refused_key_a_permanent_one(aws):
    """Services see the core's two failure kinds, never pynamodb's: throttling is retried (the
    invocation fails, SQS/SES deliver again), a key the table refuses is recorded as failed."""
    from botocore.exceptions import ClientError

    from mailgate.adapters.dynamo import Item
    from mailgate.errors import PermanentError, TransientError

    def throttle(**kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "DynamoDB")

    events = Item._get_connection().connection.client.meta.events
    operations = ("GetItem", "Query", "PutItem", "DeleteItem", "UpdateItem")
    for op in operations:
        events.register(f"before-call.dynamodb.{op}", throttle)
    try:
        calls = [lambda: aws.config.get_domain("example.test"), aws.config.list_domains,
                 lambda: aws.threads.get_thread("t1"), lambda: aws.messages.claim(MessageRecord("in:k1", "raw/k1")),
                 lambda: aws.messages.list(limit=5), lambda: aws.counters.incr("loop#a#b", window_seconds=60),
                 lambda: aws.kv.put_item("lease#x", {"owner": "me"}, if_absent=True),
                 lambda: aws.kv.delete_item("lease#x"), lambda: aws.kv.scan_prefix("lease#")]
        for call in calls:
            with pytest.raises(TransientError):
                call()
    finally:
        for op in operations:
            events.unregister(f"before-call.dynamodb.{op}", throttle)
    with pytest.raises(PermanentError):
        aws.messages.claim(MessageRecord("in:" + "k" * 3000, "raw/k"))  # a key over DynamoDB's 2,048 bytes
    assert aws.messages.claim(MessageRecord("in:k1", "raw/k1"))  # the table itself is fine


def test_an_unreachable_service_is_a_transient_error(aws, monkeypatch):
    """No connection at all (a network fault, an endpoint down) may pass: retried, not recorded as
    a permanent failure."""
    import dataclasses
    import socket

    from mailgate.adapters import aws as aws_adapters
    from mailgate.errors import TransientError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens there once the socket is closed
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    settings = dataclasses.replace(aws.settings, endpoint_url=f"http://127.0.0.1:{closed}")
    clients = aws_adapters.Clients(settings)
    with pytest.raises(TransientError):
        aws_adapters.S3RawMailStore(clients, settings.bucket_name).get("raw/x.eml")
    with pytest.raises(TransientError):
        aws_adapters.EventBridgePublisher(clients, settings.event_bus_name).publish("Message Outcome", {"k": 1})
