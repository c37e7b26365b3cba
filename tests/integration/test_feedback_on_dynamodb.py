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
