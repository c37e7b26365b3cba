"""Deploy template.yaml itself into the AWS emulator, and read its outputs back.

samtranslator (the library behind `sam deploy`) turns the SAM template into plain CloudFormation
once every local CodeUri/ContentUri is replaced by an S3 location; the emulator's CloudFormation
then creates the stack. So the local stack is the template, not a second list of resources.
What the emulator cannot do (receive mail for SES, run Lambda code without Docker, enforce TTL)
the local stack does itself.
"""

from __future__ import annotations

import copy
import io
import time
import zipfile
from typing import Any

from mailgate.errors import ConfigError
from .resources import load_template, table_definition

ARTIFACT_BUCKET = "mailgate-local-artifacts"


class _NoManagedPolicies:
    """SAM asks IAM for AWS managed policy ARNs; the templates here name none by short name."""

    def load(self) -> dict[str, str]:
        return {}


def _placeholder_zip() -> bytes:
    # The emulator stores function code but cannot run it; the local stack invokes the handlers
    # in-process, so the artifact only has to be a valid zip.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("README.txt", "mailgate local stack: code runs in-process, not from this artifact\n")
    return buf.getvalue()


def localize(template: dict[str, Any], bucket: str = ARTIFACT_BUCKET) -> dict[str, Any]:
    """A copy of the template whose local code locations point at the artifact bucket."""
    t = copy.deepcopy(template)
    for name, res in t.get("Resources", {}).items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::Serverless::Function" and isinstance(props.get("CodeUri", "."), str):
            props["CodeUri"] = {"Bucket": bucket, "Key": f"{name}.zip"}
        if res.get("Type") == "AWS::Serverless::LayerVersion" and isinstance(props.get("ContentUri", "."), str):
            props["ContentUri"] = {"Bucket": bucket, "Key": f"{name}.zip"}
    glob = t.get("Globals", {}).get("Function", {})
    if isinstance(glob.get("CodeUri"), str):
        glob.pop("CodeUri")
    return t


def to_cloudformation(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    try:
        return transform(localize(template), parameters, _NoManagedPolicies())
    except Exception as exc:
        causes = getattr(exc, "causes", None) or []
        detail = "; ".join(getattr(c, "message", str(c)) for c in causes) or str(exc)
        raise ConfigError(f"template.yaml is not a valid SAM template: {detail}") from exc


def deploy(endpoint: str, *, stack_name: str = "mailgate", parameters: dict[str, str] | None = None,
           region: str = "us-east-1", timeout: float = 120.0) -> dict[str, str]:
    """Create the stack in the emulator from template.yaml; return its outputs."""
    import json

    import boto3

    kw = {"region_name": region, "endpoint_url": endpoint}
    template = load_template()
    params = dict(parameters or {})
    cfn_template = to_cloudformation(template, params)
    s3 = boto3.client("s3", **kw)
    s3.create_bucket(Bucket=ARTIFACT_BUCKET)
    code = _placeholder_zip()
    for name, res in template["Resources"].items():
        if res.get("Type") in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            s3.put_object(Bucket=ARTIFACT_BUCKET, Key=f"{name}.zip", Body=code)
    cfn = boto3.client("cloudformation", **kw)
    declared = cfn_template.get("Parameters", {})
    cfn.create_stack(
        StackName=stack_name, TemplateBody=json.dumps(cfn_template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items() if k in declared],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status.endswith("_COMPLETE") and "ROLLBACK" not in status:
            break
        if "FAILED" in status or "ROLLBACK" in status:
            events = cfn.describe_stack_events(StackName=stack_name)["StackEvents"]
            failed = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}" for e in events
                      if "FAILED" in e.get("ResourceStatus", "")]
            raise ConfigError(f"the local stack failed to deploy ({status}): {'; '.join(failed[:5])}")
        if time.monotonic() > deadline:
            raise ConfigError(f"the local stack did not finish deploying in {timeout:.0f}s ({status})")
        time.sleep(0.2)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    _after_create(kw, template, outputs)
    return outputs


def _after_create(kw: dict[str, Any], template: dict[str, Any], outputs: dict[str, str]) -> None:
    """What CloudFormation leaves to the operator, or the emulator leaves undone."""
    import boto3

    # The receipt rule set must be made active (one per account and region): README, "Deploy".
    if outputs.get("ReceiptRuleSetName"):
        boto3.client("ses", **kw).set_active_receipt_rule_set(RuleSetName=outputs["ReceiptRuleSetName"])
    # moto's CloudFormation ignores TimeToLiveSpecification; the table must still declare it.
    ttl = table_definition(template)["ttl_attribute"]
    if ttl and outputs.get("TableName"):
        boto3.client("dynamodb", **kw).update_time_to_live(
            TableName=outputs["TableName"], TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
