"""Reading template.yaml, and creating emulator resources from it.

The table's key schema, indexes and TTL attribute are read from the template's `Table` resource,
so tests and the local stack cannot drift from what is deployed.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from mailgate.errors import ConfigError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]  # dev/mailgate_dev/local/resources.py
TEMPLATE = REPO_ROOT / "template.yaml"


def load_template(path: pathlib.Path | str = TEMPLATE) -> dict[str, Any]:
    """The template as a dict, intrinsic tags (!Ref, !Sub, ...) kept as CloudFormation does."""
    from samtranslator.yaml_helper import yaml_parse

    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}; run from the repository root") from exc
    try:
        data = yaml_parse(text)
    except Exception as exc:  # yaml's errors carry the line and column
        raise ConfigError(f"{path} does not parse: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict) or "Resources" not in data:
        raise ConfigError(f"{path} has no Resources section")
    return data


def table_definition(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """CreateTable arguments (without TableName) from the template's DynamoDB table."""
    template = template or load_template()
    tables = [r for r in template["Resources"].values() if r.get("Type") == "AWS::DynamoDB::Table"]
    if len(tables) != 1:
        raise ConfigError(f"template.yaml should declare exactly one DynamoDB table, found {len(tables)}")
    props = tables[0]["Properties"]
    args = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    ttl = props.get("TimeToLiveSpecification") or {}
    return {"create": args, "ttl_attribute": ttl.get("AttributeName")}


def create_test_resources(endpoint: str, suffix: str, region: str = "us-east-1") -> dict[str, str]:
    """A fresh table, bucket, two queues, an event bus and the token secret in the emulator."""
    import boto3

    kw = {"region_name": region, "endpoint_url": endpoint}
    ddb, s3, sqs = boto3.client("dynamodb", **kw), boto3.client("s3", **kw), boto3.client("sqs", **kw)
    events, sm = boto3.client("events", **kw), boto3.client("secretsmanager", **kw)
    names = {"table": f"mailgate-{suffix}", "bucket": f"mailgate-raw-{suffix}", "bus": f"mailgate-{suffix}",
             "token_secret": f"t{suffix}/reply-token-key"}
    definition = table_definition()
    ddb.create_table(TableName=names["table"], **definition["create"])
    if definition["ttl_attribute"]:
        ddb.update_time_to_live(TableName=names["table"], TimeToLiveSpecification={
            "Enabled": True, "AttributeName": definition["ttl_attribute"]})
    s3.create_bucket(Bucket=names["bucket"])
    for q in ("outbound", "fetch"):
        dlq = sqs.create_queue(QueueName=f"mailgate-{q}-dlq-{suffix}")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        names[f"{q}_queue_url"] = sqs.create_queue(QueueName=f"mailgate-{q}-{suffix}", Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
            "VisibilityTimeout": "60"})["QueueUrl"]
        names[f"{q}_dlq_url"] = dlq
    events.create_event_bus(Name=names["bus"])
    # the shape template.yaml's TokenKeySecret generates: one key, id "aa"
    sm.create_secret(Name=names["token_secret"],
                     SecretString=json.dumps({"current": "aa", "aa": f"local-token-key-{suffix}"}))
    return names
