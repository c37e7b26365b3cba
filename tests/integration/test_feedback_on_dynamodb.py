"""The feedback handler over the real DynamoDB adapters on the emulator."""

import copy
import json
import pathlib

import boto3
import pytest

from mailgate import suppression
from mailgate.domain import AliasDomain, MessageRecord
from mailgate.entrypoints import feedback as sns_action
from mailgate.errors import TransientError
from mailgate_dev.local import resources

pytestmark = pytest.mark.integration
EVENTS = pathlib.Path(__file__).resolve().parents[2] / "events"


def test_an_ses_bounce_arriving_while_the_table_is_unreachable_is_retried_not_dropped(aws):
    aws.config.put_domain(AliasDomain("example.test"))
    aws.messages.claim(MessageRecord(key="out:k5xq3b7yzm2a4c6e8g0i", raw_key="out/x.eml", direction="out",
                                     recipients=["nobody@customer.example"],
                                     message_id="<k5xq3b7yzm2a4c6e8g0i@example.test>"))
    event = json.loads((EVENTS / "sns-ses-bounce.json").read_text())
    ddb = boto3.client("dynamodb", endpoint_url=aws.settings.endpoint_url, region_name="us-east-1")
    items = ddb.scan(TableName=aws.settings.table_name)["Items"]
    ddb.delete_table(TableName=aws.settings.table_name)  # an outage of this test's own table

    with pytest.raises(TransientError):  # the invocation fails: SNS invokes it again
        sns_action.handle(aws, event)

    definition = resources.table_definition()
    ddb.create_table(TableName=aws.settings.table_name, **definition["create"])
    for item in items:
        ddb.put_item(TableName=aws.settings.table_name, Item=item)
    result = sns_action.handle(aws, copy.deepcopy(event))
    assert result["results"][0]["outcome"] == "bounced"
    assert suppression.is_suppressed(aws.kv, "example.test", "nobody@customer.example")["source"] == "hard-bounce"


def _dsn(recipient: str, ref: str, to: str) -> bytes:
    return (f"From: MAILER-DAEMON@mx.customer.example\r\nTo: {to}\r\nSubject: Undelivered Mail\r\n"
            f"Message-ID: <dsn-{recipient}-{to}@mx.customer.example>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
            "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.customer.example\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
            f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: shop@example.test\r\n"
            f"Message-ID: <{ref}@example.test>\r\nX-Mailgate-Id: {ref}\r\n\r\n--B--\r\n").encode()


def test_a_recipient_forging_a_dsn_for_a_co_recipient_gets_no_one_suppressed_and_a_verp_one_counts(aws):
    """Mallory received the message with bob: its X-Mailgate-Id is no proof. Through SES receiving
    (raw mail in S3, the inbound route, the ledger and suppression list in DynamoDB)."""
    from mailgate import tokens
    from mailgate.domain import new_id
    from mailgate.services import inbound

    aws.config.put_domain(AliasDomain("example.test"))
    ref = new_id()
    aws.messages.claim(MessageRecord(key="out:" + ref, raw_key=f"outbound/{ref}.eml", direction="out",
                                     recipients=["bob@customer.example", "mallory@customer.example"],
                                     message_id=f"<{ref}@example.test>", sender="shop@example.test"))

    aws.raw_store.put("raw/ses/forged", _dsn("bob@customer.example", ref, "bounce@example.test"))
    forged = inbound.ingest(aws, "raw/ses/forged", source="ses", envelope_recipients=["bounce@example.test"])

    assert forged.outcome == "bounce" and forged.detail["feedback"]["outcome"] == "unproven"
    assert suppression.list_suppressed(aws.kv) == []

    verp = tokens.verp_address(aws.token_key, "bounce", "example.test", ref, 0)
    aws.raw_store.put("raw/ses/genuine", _dsn("bob@customer.example", ref, verp))
    genuine = inbound.ingest(aws, "raw/ses/genuine", source="ses", envelope_recipients=[verp])

    assert genuine.detail["feedback"]["outcome"] == "bounced"
    assert [e["address"] for e in suppression.list_suppressed(aws.kv)] == ["bob@customer.example"]
