"""template.yaml against the code that relies on it: settings names, table keys, queues, SES.

Read with samtranslator's YAML loader (as the local stack does) and translated to plain
CloudFormation with samtranslator, offline.
"""

from __future__ import annotations

import pathlib
import re

import pytest

from mailgate import settings

REPO = pathlib.Path(__file__).resolve().parents[2]
FUNCTION_NAMES = ["InboundFunction", "FetchDispatcherFunction", "FetchWorkerFunction", "DeliveryFunction", "ApiFunction",
                  "OutboundFunction", "FeedbackFunction", "DnsCheckFunction", "OutboxSweepFunction"]


@pytest.fixture(scope="module")
def template():
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse((REPO / "template.yaml").read_text())


@pytest.fixture(scope="module")
def cloudformation(template):
    """The template as CloudFormation sees it after the SAM transform."""
    import copy

    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(template)
    for res in sam["Resources"].values():  # what `sam package` does to local paths
        props = res.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = {"Bucket": "artifacts", "Key": props[key]}
    import boto3

    # Only AWS managed policies added by SAM itself are needed; their ARNs are generated. The
    # session only names the region of the pseudo parameters (without one, translate() refuses).
    session = boto3.session.Session(region_name="us-east-1")
    return Translator({}, Parser(), boto_session=session).translate(sam, parameter_values={})


def _functions(template):
    return {name: res for name, res in template["Resources"].items() if res["Type"] == "AWS::Serverless::Function"}


def test_every_function_is_declared(template):
    assert sorted(_functions(template)) == sorted(FUNCTION_NAMES)


def test_every_setting_the_code_reads_is_set_for_every_function(template):
    wanted = {value for name, value in vars(settings).items()
              if name.isupper() and isinstance(value, str) and value.startswith("MAILGATE_")}
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    assert wanted, "settings.py declares no MAILGATE_ names?"
    assert sorted(wanted - set(env)) == []
    assert sorted(set(k for k in env if k.startswith("MAILGATE_")) - wanted) == []
    for name, fn in _functions(template).items():
        overridden = fn["Properties"].get("Environment", {}).get("Variables", {})
        assert not set(overridden) & wanted, f"{name} overrides a shared setting"


def test_table_keys_are_the_ones_the_models_use(template):
    tables = [r for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 1
    props = tables[0]["Properties"]
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}]
    (gsi,) = props["GlobalSecondaryIndexes"]
    assert gsi["IndexName"] == "gsi1"
    assert gsi["KeySchema"] == [{"AttributeName": "gsi1pk", "KeyType": "HASH"},
                                {"AttributeName": "gsi1sk", "KeyType": "RANGE"}]
    assert gsi["Projection"] == {"ProjectionType": "ALL"}
    assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
        "pk": "S", "sk": "S", "gsi1pk": "S", "gsi1sk": "S"}
    assert props["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


def test_sqs_consumers_report_partial_failures_and_their_queues_outlast_them(template):
    globals_timeout = template["Globals"]["Function"]["Timeout"]
    consumers = 0
    for name, fn in _functions(template).items():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            consumers += 1
            queue_name = event["Properties"]["Queue"]["Fn::GetAtt"][0]
            queue = template["Resources"][queue_name]["Properties"]
            timeout = fn["Properties"].get("Timeout", globals_timeout)
            # AWS: visibility timeout at least 6 x the function timeout, or messages are redelivered
            # while the first invocation still works on them.
            assert queue["VisibilityTimeout"] >= 6 * timeout, name
            assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name
            # the delivery function counts its own attempts and gives a job up at the last one
            from mailgate.services import delivery

            expected = delivery.MAX_ATTEMPTS if queue_name == "DeliveryQueue" else 5
            assert queue["RedrivePolicy"]["maxReceiveCount"] == expected, name
            dlq = template["Resources"][queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]
            assert dlq["Properties"]["SqsManagedSseEnabled"] is True
            assert queue["SqsManagedSseEnabled"] is True
    assert consumers == 3


def test_the_delivery_queue_keeps_a_job_through_every_retry():
    """A target down for a day loses nothing: the backoff reaches past a day before the last
    attempt, and the queue keeps a job longer than all the waits together."""
    from mailgate.services import delivery
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((REPO / "template.yaml").read_text())
    first = int(template["Globals"]["Function"]["Environment"]["Variables"]["MAILGATE_DELIVERY_FIRST_RETRY"])
    waits = sum(delivery.retry_delay(first, n) for n in range(1, delivery.MAX_ATTEMPTS))
    assert waits >= 24 * 3600
    # SQS's longest visibility is 12 h from the job's receipt, and the attempt took some of it
    timeout = template["Resources"]["DeliveryFunction"]["Properties"].get(
        "Timeout", template["Globals"]["Function"]["Timeout"])
    assert max(delivery.retry_delay(first, n) for n in range(1, 40)) <= 12 * 3600 - timeout
    queue = template["Resources"]["DeliveryQueue"]["Properties"]
    assert queue["MessageRetentionPeriod"] >= waits + 12 * 3600


def test_the_delivery_function_takes_one_job_per_invocation(template):
    # a target that answers slowly (30 s a call) would time a batch out after a few jobs: the
    # others would use up a receive, and so an attempt, without being tried
    (event,) = template["Resources"]["DeliveryFunction"]["Properties"]["Events"].values()
    assert event["Properties"]["BatchSize"] == 1


def test_the_local_stack_hands_each_consumer_the_batches_lambda_would(template):
    from mailgate_dev.local.stack import BATCH_SIZES

    sizes = {}
    for fn in _functions(template).values():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] == "SQS":
                sizes[fn["Properties"]["CodeUri"].strip("/").rsplit("/", 1)[-1]] = event["Properties"]["BatchSize"]
    assert sizes == BATCH_SIZES


def test_every_function_logs_to_a_group_with_the_retention_parameter(template):
    groups = {}
    for res in template["Resources"].values():
        if res["Type"] == "AWS::Logs::LogGroup":
            assert res["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
            m = re.fullmatch(r"/aws/lambda/\$\{(\w+)\}", res["Properties"]["LogGroupName"]["Fn::Sub"])
            if m:  # the others: the HTTP API's access log
                groups[m.group(1)] = res["Properties"]["RetentionInDays"]
    assert groups == {name: {"Ref": "LogRetentionDays"} for name in FUNCTION_NAMES}


def test_each_function_code_dir_holds_a_handler_that_imports_its_entrypoint(template):
    for name, fn in _functions(template).items():
        code = REPO / fn["Properties"]["CodeUri"] / "app.py"
        assert code.is_file(), f"{name}: {code} is missing"
        module = pathlib.PurePath(fn["Properties"]["CodeUri"]).name
        assert f"from mailgate.entrypoints.{module} import handler" in code.read_text()


def test_layer_requirements_match_the_package_dependencies():
    import tomllib

    def names(lines):
        return sorted(re.split(r"[<>=!~\[ ;]", line.strip(), maxsplit=1)[0].lower()
                      for line in lines if line.strip() and not line.lstrip().startswith("#"))

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    shipped = (REPO / "layers/core/requirements.txt").read_text().splitlines()
    assert names(shipped) == names(declared)


def test_receipt_rule_stores_raw_mail_before_invoking_inbound_and_waits_for_its_permissions(template):
    rule = template["Resources"]["ReceiptRule"]
    assert sorted(rule["DependsOn"]) == ["InboundSesPermission", "RawMailBucketPolicy"]
    actions = rule["Properties"]["Rule"]["Actions"]
    assert [next(iter(a)) for a in actions] == ["S3Action", "LambdaAction"]
    assert actions[0]["S3Action"]["ObjectKeyPrefix"] == "raw/ses/"
    assert actions[1]["LambdaAction"] == {"FunctionArn": {"Fn::GetAtt": ["InboundFunction", "Arn"]},
                                          "InvocationType": "Event"}
    # The bucket policy lets SES write exactly where the S3 action puts the mail.
    statements = template["Resources"]["RawMailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    ses = next(s for s in statements if s.get("Principal") == {"Service": "ses.amazonaws.com"})
    assert ses["Resource"] == {"Fn::Sub": "${RawMailBucket.Arn}/raw/ses/*"}
    assert ses["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_secrets_access_is_scoped_to_the_stack_prefixes(cloudformation):
    """No function may read every secret in the account."""
    for name in FUNCTION_NAMES:
        role = cloudformation["Resources"][f"{name}Role"]["Properties"]
        for policy in role.get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                st = st["Fn::If"][1] if "Fn::If" in st else st
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if any(a.startswith("secretsmanager:") for a in actions):
                    resources = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
                    for r in resources:
                        assert r != "*", f"{name} reads every secret"
                        # the policy template renders {"Fn::Sub": ["${secretArn}", {"secretArn": VALUE}]}
                        sub = r.get("Fn::Sub") if isinstance(r, dict) else None
                        value = sub[1]["secretArn"] if isinstance(sub, list) else r
                        text = value["Fn::Sub"] if isinstance(value, dict) and "Fn::Sub" in value else value
                        assert text == {"Ref": "TokenKeySecret"} or (
                            isinstance(text, str) and re.search(r"secret:\$\{AWS::StackName\}/(dkim|server/imap|server/pop|server/smtp|target)/\*$", text)
                        ), f"{name}: {r}"


def test_template_translates_with_every_function_on_the_core_layer(cloudformation):
    functions = {k: v for k, v in cloudformation["Resources"].items() if v["Type"] == "AWS::Lambda::Function"}
    assert sorted(functions) == sorted(FUNCTION_NAMES)
    layer = next(k for k, v in cloudformation["Resources"].items() if v["Type"] == "AWS::Lambda::LayerVersion")
    for name, fn in functions.items():
        props = fn["Properties"]
        assert props["Layers"] == [{"Ref": layer}], name
        assert props["Runtime"] == "python3.12"
        assert props["Handler"] == "app.handler"
        assert props["TracingConfig"] == {"Mode": "Active"}
