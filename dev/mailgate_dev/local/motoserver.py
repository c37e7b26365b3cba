"""The AWS API emulator for the local stack: moto server, plus the CloudFormation support
mailgate's template needs that moto 5 lacks.

Stock moto reports CREATE_COMPLETE for the template but silently skips eleven resource types
(Secrets Manager secret, SES receipt rule set / rule / configuration set / event destination, S3
bucket policy, SNS topic policy and subscription, CloudWatch alarm, API Gateway stage and usage
plan), its `Ref` of an event bus or layer version yields a Python object, and it creates a REST API
without the methods SAM declares in its Body (and then refuses to deploy it). This module registers
those types with moto's CloudFormation parser, fixes the two `Ref`s, gives the REST API its methods
and adds the SESv2 calls `mailgate setup` makes (`sesv2_shim`), then runs moto's own server:
`python -m mailgate_dev.local.motoserver -H HOST -p PORT`.
Create only: update and delete of the added types do nothing (the local stack is created fresh).
"""
from __future__ import annotations

import json
import secrets
import string
import sys
from typing import Any

from moto.core.common_models import CloudFormationModel


class _Simple:
    """A created resource: Ref gives `physical_resource_id`; GetAtt from `attrs`.

    A mixin: moto lists models with CloudFormationModel.__subclasses__() (direct subclasses
    only), so every model below names CloudFormationModel itself as a base.
    """

    TYPE = ""
    NAME_PROPERTY = ""

    def __init__(self, physical_id: str, attrs: dict[str, Any] | None = None) -> None:
        self._physical_id = physical_id
        self.attrs = attrs or {}

    @property
    def physical_resource_id(self) -> str:
        return self._physical_id

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        return self.attrs[attribute_name]

    @classmethod
    def cloudformation_type(cls) -> str:  # moto calls these on the class
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                        account_id, region_name):
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
        return None

    def is_created(self) -> bool:
        return True


def _generate(spec: dict[str, Any]) -> str:
    """GenerateSecretString (the subset CloudFormation users commonly set)."""
    alphabet = string.ascii_letters + string.digits
    if not spec.get("ExcludePunctuation"):
        alphabet += "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    if spec.get("ExcludeNumbers"):
        alphabet = "".join(c for c in alphabet if not c.isdigit())
    if spec.get("ExcludeUppercase"):
        alphabet = "".join(c for c in alphabet if not c.isupper())
    if spec.get("ExcludeLowercase"):
        alphabet = "".join(c for c in alphabet if not c.islower())
    alphabet = "".join(c for c in alphabet if c not in spec.get("ExcludeCharacters", ""))
    if spec.get("IncludeSpace"):
        alphabet += " "
    value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    if spec.get("SecretStringTemplate") and spec.get("GenerateStringKey"):
        doc = json.loads(spec["SecretStringTemplate"])
        doc[spec["GenerateStringKey"]] = value
        return json.dumps(doc)
    return value


class Secret(_Simple, CloudFormationModel):
    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE, NAME_PROPERTY = "AWS::SecretsManager::Secret", "Name"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.secretsmanager.models import secretsmanager_backends

        props = cloudformation_json.get("Properties", {})
        value = props.get("SecretString")
        if value is None:
            value = _generate(props.get("GenerateSecretString", {}))
        out = secretsmanager_backends[account_id][region_name].create_secret(
            name=resource_name, secret_string=value, secret_binary=None,
            description=props.get("Description"), tags=props.get("Tags"), kms_key_id=props.get("KmsKeyId"),
            client_request_token=None, replica_regions=[], force_overwrite=False)
        arn = json.loads(out)["ARN"] if isinstance(out, str) else out["ARN"]
        return cls(arn, {"Id": arn})  # Ref of a secret is its ARN


class ReceiptRuleSet(_Simple, CloudFormationModel):
    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE, NAME_PROPERTY = "AWS::SES::ReceiptRuleSet", "RuleSetName"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.ses.models import ses_backends

        ses_backends[account_id][region_name].create_receipt_rule_set(resource_name)
        return cls(resource_name)


class ReceiptRule(_Simple, CloudFormationModel):
    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE = "AWS::SES::ReceiptRule"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.ses.models import ses_backends

        props = cloudformation_json["Properties"]
        ses_backends[account_id][region_name].create_receipt_rule(
            props["RuleSetName"], props["Rule"], props.get("After"))
        return cls(props["Rule"]["Name"])


class ConfigurationSet(_Simple, CloudFormationModel):
    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE, NAME_PROPERTY = "AWS::SES::ConfigurationSet", "Name"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.ses.models import ses_backends

        ses_backends[account_id][region_name].create_configuration_set(resource_name)
        return cls(resource_name)


class ConfigurationSetEventDestination(_Simple, CloudFormationModel):
    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE = "AWS::SES::ConfigurationSetEventDestination"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.ses.models import ses_backends

        props = cloudformation_json["Properties"]
        dest = dict(props["EventDestination"])
        # CloudFormation spells it SnsDestination, the SES API SNSDestination
        if "SnsDestination" in dest:
            dest["SNSDestination"] = dest.pop("SnsDestination")
        ses_backends[account_id][region_name].create_configuration_set_event_destination(
            props["ConfigurationSetName"], dest)
        return cls(dest["Name"])


class BucketPolicy(_Simple, CloudFormationModel):
    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE = "AWS::S3::BucketPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.s3.models import s3_backends
        from moto.utilities.utils import get_partition

        props = cloudformation_json["Properties"]
        s3_backends[account_id][get_partition(region_name)].put_bucket_policy(
            props["Bucket"], json.dumps(evaluable_policy(props["PolicyDocument"])).encode())
        return cls(props["Bucket"])


def evaluable_policy(document: dict[str, Any]) -> dict[str, Any]:
    """The statements moto can judge. moto enforces a bucket policy's Principal "*" statements but
    ignores their Conditions, so the template's `Deny` unless `aws:SecureTransport` would deny every
    request, TLS or not. Conditional Deny statements are left out of the emulator's copy (the local
    endpoint is HTTPS anyway); the deployed policy keeps them."""
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [st for st in statements if not (st.get("Effect") == "Deny" and st.get("Condition"))]
    return {**document, "Statement": kept}


class TopicPolicy(_Simple, CloudFormationModel):
    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE = "AWS::SNS::TopicPolicy"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.sns.models import sns_backends

        props = cloudformation_json["Properties"]
        for topic in props["Topics"]:
            sns_backends[account_id][region_name].set_topic_attribute(
                topic, "policy", json.dumps(props["PolicyDocument"]))  # moto setattr()s the name
        return cls(resource_name)


class Subscription(_Simple, CloudFormationModel):
    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE = "AWS::SNS::Subscription"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.sns.models import sns_backends

        props = cloudformation_json["Properties"]
        sub = sns_backends[account_id][region_name].subscribe(
            props["TopicArn"], props["Endpoint"], props["Protocol"])
        return cls(sub.arn)


class MetricAlarm(_Simple, CloudFormationModel):
    """AWS::CloudWatch::Alarm: the alarm exists in the emulator's CloudWatch (it never fires there:
    nothing publishes the metrics it watches). Ref is its name, GetAtt Arn its ARN; an alarm
    without AlarmName gets `<stack>-<logical id>-<suffix>`, as CloudFormation names it."""

    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE, NAME_PROPERTY = "AWS::CloudWatch::Alarm", "AlarmName"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.cloudwatch.models import MetricDataQuery, cloudwatch_backends

        p = cloudformation_json["Properties"]
        queries = [MetricDataQuery(q["Id"], q.get("Label", ""), q.get("Period"), q.get("ReturnData", True),
                                   expression=q.get("Expression")) for q in p.get("Metrics", [])] or None
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=resource_name, namespace=p.get("Namespace"), metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"], evaluation_periods=int(p["EvaluationPeriods"]),
            period=p.get("Period"), threshold=float(p["Threshold"]), statistic=p.get("Statistic"),
            description=p.get("AlarmDescription"), dimensions=p.get("Dimensions", []),
            alarm_actions=p.get("AlarmActions", []), metric_data_queries=queries,
            datapoints_to_alarm=p.get("DatapointsToAlarm"), ok_actions=p.get("OKActions", []),
            treat_missing_data=p.get("TreatMissingData"))
        return cls(resource_name, {"Arn": alarm.alarm_arn})


class Stage(_Simple, CloudFormationModel):
    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE = "AWS::ApiGateway::Stage"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.apigateway.models import apigateway_backends

        props = cloudformation_json["Properties"]
        api = apigateway_backends[account_id][region_name].get_rest_api(props["RestApiId"])
        if props["StageName"] not in api.stages:
            api.create_stage(props["StageName"], props.get("DeploymentId", ""), None, props.get("Description", ""),
                             None, None, None, props.get("TracingEnabled"))
        return cls(props["StageName"])


class UsagePlan(_Simple, CloudFormationModel):
    __module__ = "moto.mailgate_extras"  # moto's model registry keys models by moto.<service>
    TYPE = "AWS::ApiGateway::UsagePlan"

    @classmethod
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.apigateway.models import apigateway_backends

        props = cloudformation_json["Properties"]
        plan = apigateway_backends[account_id][region_name].create_usage_plan({
            "name": props.get("UsagePlanName") or resource_name, "description": props.get("Description"),
            "apiStages": [{"apiId": s["ApiId"], "stage": s["Stage"]} for s in props.get("ApiStages", [])],
            "throttle": {"burstLimit": props.get("Throttle", {}).get("BurstLimit"),
                         "rateLimit": props.get("Throttle", {}).get("RateLimit")},
            "quota": {"limit": props.get("Quota", {}).get("Limit"), "period": props.get("Quota", {}).get("Period")},
        })
        return cls(plan.id)


_LOCAL_URI = ("arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
              "arn:aws:lambda:{region}:{account}:function:mailgate-api-local/invocations")


def _rest_api_with_body(original):
    """moto creates a RestApi from CloudFormation without its Body (the Swagger SAM generates for
    the HTTP API), and then refuses the Deployment of an API without methods: add the Body's paths
    and methods (nothing else of it: the local stack serves the API itself, mailgate_dev.local.api)."""

    def create(cls, resource_name, cloudformation_json, account_id, region_name, **kw):
        from moto.apigateway.models import apigateway_backends

        api = original.__func__(cls, resource_name, cloudformation_json, account_id, region_name, **kw)
        backend = apigateway_backends[account_id][region_name]
        paths = (cloudformation_json["Properties"].get("Body") or {}).get("paths") or {}
        for path, methods in paths.items():
            parent = api.root_resource_id
            for part in [p for p in path.split("/") if p]:
                known = [r for r in api.resources.values() if r.parent_id == parent and r.path_part == part]
                parent = known[0].id if known else backend.create_resource(api.id, parent, part).id
            for method in methods:
                if method.lower() in ("get", "post", "put", "delete", "patch", "head", "options"):
                    backend.put_method(api.id, parent, method.upper(), "AWS_IAM", api_key_required=True)
                    backend.put_integration(api.id, parent, method.upper(), "AWS_PROXY", uri=_LOCAL_URI.format(region=region_name, account=account_id),
                                            integration_method="POST")
        return api

    return classmethod(create)


def install() -> None:
    from moto.apigateway.models import RestAPI
    from moto.awslambda.models import LayerVersion

    from . import sesv2_shim

    sesv2_shim.install()
    from moto.cloudformation import parsing
    from moto.events.models import EventBus

    EventBus.physical_resource_id = property(lambda self: self.name)  # type: ignore[attr-defined]
    # A resource whose Condition is false (the alarm topic's e-mail subscription without
    # AlarmEmail) is None in moto's resource map: CloudFormation does not list it.
    from moto.cloudformation.models import Stack

    Stack.stack_resources = property(lambda self: [r for r in self.resource_map.values() if r is not None])
    RestAPI.create_from_cloudformation_json = _rest_api_with_body(RestAPI.create_from_cloudformation_json)
    LayerVersion.physical_resource_id = property(lambda self: self.arn)  # type: ignore[attr-defined]
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    # Keep-alive: werkzeug's server speaks HTTP/1.0 unless told otherwise, so every SDK call
    # would open a new connection, and over HTTPS pay a TLS handshake (measured: ~50 ms a call).
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    MotoRequestHandler.protocol_version = "HTTP/1.1"
    # A response goes out in several small TLS writes; with Nagle's algorithm each waits for the
    # client's delayed ACK (~40 ms a call, measured). Send at once.
    MotoRequestHandler.disable_nagle_algorithm = True


if __name__ == "__main__":
    install()
    from moto.server import main

    main(sys.argv[1:])
