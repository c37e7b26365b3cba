"""Least privilege, read from template.yaml as a reviewer reads it: what each function's role may
do after the SAM transform, against what its code calls (the ports each service uses, through the
DynamoDB, S3, SES and Secrets Manager adapters)."""

from __future__ import annotations

import pytest

from .test_template import FUNCTION_NAMES, cloudformation, template  # noqa: F401 - fixtures

TABLE = {"Table.Arn", "Table.Arn/index/*"}
#: DynamoDB calls per function: GetItem (get), BatchGetItem (the route's batched read), Query
#: (the gsi1 lists: domains, servers, thread ids, kv prefixes), PutItem (save; a transaction's
#: puts), UpdateItem (counters, followers), DeleteItem (leases, dedup markers, score resets).
DYNAMODB = {
    "InboundFunction": {"GetItem", "BatchGetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},
    "FetchWorkerFunction": {"GetItem", "BatchGetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},
    "FetchDispatcherFunction": {"GetItem", "Query", "PutItem", "UpdateItem"},
    # UpdateItem: a retry claims the Send Result left pending in the outbox
    "OutboundFunction": {"GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},
    # the dedup markers are written after the event, never taken back: no DeleteItem
    "FeedbackFunction": {"GetItem", "PutItem"},
    "DnsCheckFunction": {"GetItem", "Query", "PutItem"},
    # the outbox entries' claim and settle (UpdateItem, DeleteItem), and what the effects write
    "OutboxSweepFunction": {"GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},
    # the delivery record, the target, the ledger record, a thread
    "DeliveryFunction": {"GetItem", "PutItem"},
    # records, threads (linked: a conditional UpdateItem; found by record: gsi1), suppressions, the domains
    "ApiFunction": {"GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"},
}
BUCKET = "RawMailBucket.Arn"
S3_OBJECTS = {
    "InboundFunction": {("s3:GetObject", "raw/ses/*"), ("s3:PutObject", "att/*")},
    "FetchWorkerFunction": {("s3:GetObject", "raw/fetch/*"), ("s3:GetObject", "state/fetch/*"),
                            ("s3:PutObject", "raw/fetch/*"), ("s3:PutObject", "att/*"),
                            ("s3:PutObject", "state/fetch/*")},
    "OutboundFunction": {("s3:GetObject", "outbound/*"), ("s3:PutObject", "outbound/*")},
    "FetchDispatcherFunction": set(), "FeedbackFunction": set(), "DnsCheckFunction": set(),
    "OutboxSweepFunction": {("s3:GetObject", "raw/ses/*"), ("s3:GetObject", "raw/fetch/*")},
    "DeliveryFunction": {("s3:GetObject", "raw/ses/*"), ("s3:GetObject", "raw/fetch/*")},
    "ApiFunction": {("s3:GetObject", "raw/ses/*"), ("s3:GetObject", "raw/fetch/*"), ("s3:GetObject", "outbound/*")},
}
SECRETS = {
    "InboundFunction": {"TokenKeySecret"},
    "FetchWorkerFunction": {"TokenKeySecret", "server/imap/*", "server/pop/*"},
    "OutboundFunction": {"TokenKeySecret", "dkim/*", "server/smtp/*"},
    "DnsCheckFunction": {"dkim/*"},
    "FetchDispatcherFunction": set(), "FeedbackFunction": set(),
    "OutboxSweepFunction": {"TokenKeySecret"},
    "DeliveryFunction": {"target/*"}, "ApiFunction": set(),
}


def _text(value) -> str:
    """A resource as text: ${X.Arn} / GetAtt as X.Arn, Ref as its name, Sub maps resolved."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return value["Ref"]
    if "Fn::GetAtt" in value:
        return ".".join(value["Fn::GetAtt"])
    if "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, names = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
        for name, v in names.items():
            text = text.replace("${" + name + "}", _text(v))
        return text.replace("${", "").replace("}", "")
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_text(p) for p in parts) if isinstance(parts, list) else _text(parts)
    if "Fn::Split" in value:
        return _text(value["Fn::Split"][1])
    return repr(value)


def _grants(cloudformation, name):  # noqa: F811 - the fixture
    """(action, resource text) of every Allow statement of the function's role."""
    role = cloudformation["Resources"][f"{name}Role"]["Properties"]
    out = set()
    for policy in role.get("Policies", []):
        for st in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in st:  # a statement under a condition: what it grants when it holds
                st = st["Fn::If"][1]
            assert st["Effect"] == "Allow"
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            out |= {(a, _text(r)) for a in actions for r in resources}
    return out


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_each_function_may_call_only_the_dynamodb_actions_its_code_uses(cloudformation, name):  # noqa: F811
    grants = {(a, r) for a, r in _grants(cloudformation, name) if a.startswith("dynamodb:")}
    assert {a.split(":")[1] for a, _ in grants} == DYNAMODB[name]
    assert {r for _, r in grants} == TABLE, "the table and its indexes only"
    assert not any(a in ("dynamodb:Scan", "dynamodb:*") for a, _ in grants)


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_each_function_reads_and_writes_only_its_own_s3_prefixes(cloudformation, name):  # noqa: F811
    grants = {(a, r) for a, r in _grants(cloudformation, name) if a.startswith("s3:")}
    objects = {(a, r[len(BUCKET) + 1:]) for a, r in grants if r.startswith(BUCKET + "/")}
    assert objects == S3_OBJECTS[name]
    # ListBucket names keys (a missing key then reads 404, not 403); it reads no content
    assert {a for a, r in grants if r == BUCKET} <= {"s3:ListBucket"}
    assert {a for a, _ in grants} <= {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_each_function_reads_only_its_own_secrets(cloudformation, name):  # noqa: F811
    grants = {(a, r) for a, r in _grants(cloudformation, name) if a.startswith("secretsmanager:")}
    assert {a for a, _ in grants} <= {"secretsmanager:GetSecretValue"}
    prefix = "arn:AWS::Partition:secretsmanager:AWS::Region:AWS::AccountId:secret:AWS::StackName/"
    assert {r.removeprefix(prefix) for _, r in grants} == SECRETS[name]


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_only_outbound_sends_and_only_as_the_stacks_identities_through_its_configuration_set(
        cloudformation, name):  # noqa: F811
    grants = {(a, r) for a, r in _grants(cloudformation, name) if a.startswith("ses:")}
    if name != "OutboundFunction":
        assert grants == set()
        return
    assert {a for a, _ in grants} == {"ses:SendEmail"}
    resources = {r for _, r in grants}
    assert not any(r.endswith(":identity/*") or r == "*" for r in resources), resources
    assert any(r.endswith(":configuration-set/ConfigurationSet") for r in resources)
    assert any(r.endswith(":identity/GatewayDomain") for r in resources)


def test_no_function_uses_a_whole_table_or_whole_bucket_managed_policy(template):  # noqa: F811
    for name in FUNCTION_NAMES:
        for policy in template["Resources"][name]["Properties"].get("Policies", []):
            if isinstance(policy, dict):
                assert not set(policy) & {"DynamoDBCrudPolicy", "DynamoDBReadPolicy", "S3ReadPolicy",
                                          "S3CrudPolicy", "S3WritePolicy", "SESCrudPolicy"}, name
