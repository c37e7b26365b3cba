"""Hostile sizes through the real DynamoDB store: what the in-memory fakes accept but the table
refuses (keys over 1 KB / 2 KB, items over 400 KB) must still end in a recorded outcome, never in
an invocation that fails and is retried until the message is given up."""

import json

import pytest

from mailgate.domain import Alias, AliasDomain, MessageRecord
from mailgate.errors import PermanentError
from mailgate.services import inbound

pytestmark = pytest.mark.integration


@pytest.fixture
def c(aws):
    aws.config.put_domain(AliasDomain("example.test"))
    aws.config.put_alias(Alias("example.test", "sales", "crm.lead"))
    return aws


def deliver(c, raw: bytes, key: str):
    c.raw_store.put(key, raw)
    return inbound.ingest(c, key, source="ses", envelope_recipients=["sales@example.test"])


def test_mail_from_an_overlong_address_is_recorded_not_retried_for_ever(c):
    sender = "a" * 1100 + "@client.test"  # RFC 5321 allows 64 + 255; the table's sort keys 1,024 bytes
    raw = (f"From: {sender}\r\nTo: sales@example.test\r\nSubject: long\r\nMessage-ID: <long1@client.test>\r\n"
           "\r\nhello\r\n").encode()
    record = deliver(c, raw, "raw/ses/long1")
    assert record.outcome == "new-record"
    assert c.messages.get(record.key).outcome == "new-record"
    assert record.sender == ""  # not an address anyone can be answered at


def test_a_message_with_hundreds_of_attachments_is_recorded_and_its_ledger_says_what_it_left_out(c, capsys, monkeypatch):
    parts = "".join(
        f"--B\r\nContent-Type: image/png\r\nContent-ID: <{'c' * 400}{i}@x>\r\n"
        f"Content-Disposition: inline; filename=\"{'f' * 200}{i}.png\"\r\n\r\nAAAA\r\n" for i in range(600))
    raw = ("From: ann@client.test\r\nTo: sales@example.test\r\nSubject: photos\r\nMessage-ID: <att1@client.test>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n"
           "\r\nsee attached\r\n" + parts + "--B--\r\n").encode()
    record = deliver(c, raw, "raw/ses/att1")
    assert record.outcome == "new-record" and len(record.detail["attachments"]) == 600
    stored = c.messages.get(record.key)
    assert stored.outcome == "new-record" and stored.thread_id == record.thread_id
    kept = len(stored.detail["attachments"])
    assert 0 < kept < 600
    assert stored.detail["omitted"]["attachments"].startswith(f"{600 - kept} of 600 entries not kept")
    # the application's event lists the first 50 and says there are more (EventBridge: 256 KB)
    from mailgate.message import parse
    payload = inbound.message_payload(record, parse(raw))
    assert len(payload["attachments"]) == 50 and payload["attachments_total"] == 600 and payload["truncated"]
    assert len(json.dumps(payload)) < 256_000
    from tests.unit.test_inbound_cli import run
    code, out, _ = run(["messages", "show", record.key], capsys, c, monkeypatch)
    assert code == 0 and f"Omitted:    attachments: {600 - kept} of 600 entries not kept" in out


def test_a_refused_transaction_is_a_permanent_failure_not_a_retry(c):
    store = c.inbound
    record = MessageRecord(key="in:raw:" + "k" * 3000, raw_key="raw/ses/x")  # hash key over 2,048 bytes
    with pytest.raises(PermanentError, match="refused"):
        store.commit(record, new_thread=None, index=[], follower=None, counter=None, contact=None)
