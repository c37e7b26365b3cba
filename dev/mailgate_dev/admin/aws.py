"""boto3 adapters of the operator's ports: SQS queue attributes, CloudWatch alarms, SESv2 (and SES
v1's receipt rule sets). Errors become the core's: PermanentError (with the fix) or TransientError."""

from __future__ import annotations

import base64
from typing import Any

from mailgate.adapters.aws import Clients, translate
from mailgate.errors import PermanentError

from .ports import Alarm, ByoDkim, EventDestination, QueueDepth, SesAccount, SesIdentity


def _code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


class SqsQueueStats:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def depth(self, url: str) -> QueueDepth:
        name = url.rstrip("/").rpartition("/")[2]
        try:
            a = self.clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        except Exception as exc:  # noqa: BLE001 - one unreadable queue must not hide the others
            return QueueDepth(name, url, error=str(translate(exc, f"reading queue {name}")))
        return QueueDepth(name, url, int(a.get("ApproximateNumberOfMessages", 0)),
                          int(a.get("ApproximateNumberOfMessagesNotVisible", 0)),
                          int(a.get("ApproximateNumberOfMessagesDelayed", 0)))


class CloudWatchAlarms:
    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def in_alarm(self, topic_arn: str) -> list[Alarm]:
        out = []
        try:
            pages = self.clients.client("cloudwatch").get_paginator("describe_alarms").paginate(
                StateValue="ALARM", AlarmTypes=["MetricAlarm", "CompositeAlarm"])
            for page in pages:
                for a in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                    if topic_arn in a.get("AlarmActions", []):
                        since = a.get("StateUpdatedTimestamp")
                        out.append(Alarm(a["AlarmName"], a.get("StateReason", ""),
                                         since.timestamp() if hasattr(since, "timestamp") else 0.0))
        except Exception as exc:
            raise translate(exc, "reading the CloudWatch alarms") from exc
        return sorted(out, key=lambda a: a.since)


class Sesv2Admin:
    """SESv2 for identities, the account and configuration sets; SES v1 for receipt rule sets."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients
        self._v2 = self._v1 = None

    @property
    def v2(self):
        self._v2 = self._v2 or self.clients.client("sesv2")
        return self._v2

    @property
    def v1(self):
        self._v1 = self._v1 or self.clients.client("ses")
        return self._v1

    def _call(self, what: str, fn, **kw) -> dict[str, Any]:
        try:
            return fn(**kw)
        except Exception as exc:
            raise translate(exc, what) from exc

    def account(self) -> SesAccount:
        a = self._call("reading the SES account (sesv2 GetAccount)", self.v2.get_account)
        quota = a.get("SendQuota") or {}
        return SesAccount(bool(a.get("ProductionAccessEnabled")), bool(a.get("SendingEnabled", True)),
                          a.get("EnforcementStatus", ""), float(quota.get("Max24HourSend", 0)),
                          float(quota.get("MaxSendRate", 0)))

    def identity(self, domain: str) -> SesIdentity | None:
        try:
            got = self.v2.get_email_identity(EmailIdentity=domain)
        except Exception as exc:
            if _code(exc) == "NotFoundException":
                return None
            raise translate(exc, f"reading the SES identity {domain}") from exc
        return identity_from(domain, got)

    def create_identity(self, domain: str, *, dkim: ByoDkim | None, configuration_set: str) -> SesIdentity:
        kw: dict[str, Any] = {"EmailIdentity": domain, "DkimSigningAttributes": _dkim_attributes(dkim)}
        if configuration_set:
            kw["ConfigurationSetName"] = configuration_set
        self._call(f"creating the SES identity {domain}", self.v2.create_email_identity, **kw)
        return self.identity(domain) or SesIdentity(domain)

    def set_dkim(self, domain: str, dkim: ByoDkim | None) -> None:
        self._call(f"setting the DKIM of {domain}", self.v2.put_email_identity_dkim_signing_attributes,
                   EmailIdentity=domain, SigningAttributesOrigin="EXTERNAL" if dkim else "AWS_SES",
                   SigningAttributes=_dkim_attributes(dkim))

    def set_configuration_set(self, domain: str, configuration_set: str) -> None:
        self._call(f"setting the configuration set of {domain}",
                   self.v2.put_email_identity_configuration_set_attributes,
                   EmailIdentity=domain, ConfigurationSetName=configuration_set)

    def set_mail_from(self, domain: str, mail_from_domain: str) -> None:
        self._call(f"setting the MAIL FROM domain of {domain}", self.v2.put_email_identity_mail_from_attributes,
                   EmailIdentity=domain, MailFromDomain=mail_from_domain, BehaviorOnMxFailure="USE_DEFAULT_VALUE")

    def event_destinations(self, configuration_set: str) -> list[EventDestination]:
        got = self._call(f"reading the event destinations of {configuration_set}",
                         self.v2.get_configuration_set_event_destinations, ConfigurationSetName=configuration_set)
        return [EventDestination(d["Name"], bool(d.get("Enabled")), tuple(t.upper() for t in d.get("MatchingEventTypes", [])),
                                 (d.get("SnsDestination") or {}).get("TopicArn", ""))
                for d in got.get("EventDestinations", [])]

    def put_event_destination(self, configuration_set: str, destination: EventDestination) -> None:
        spec = {"Enabled": destination.enabled, "MatchingEventTypes": list(destination.event_types),
                "SnsDestination": {"TopicArn": destination.topic_arn}}
        exists = any(d.name == destination.name for d in self.event_destinations(configuration_set))
        fn = (self.v2.update_configuration_set_event_destination if exists
              else self.v2.create_configuration_set_event_destination)
        self._call(f"setting the event destination of {configuration_set}", fn, ConfigurationSetName=configuration_set,
                   EventDestinationName=destination.name, EventDestination=spec)

    def active_rule_set(self) -> str | None:
        got = self._call("reading the active receipt rule set", self.v1.describe_active_receipt_rule_set)
        return (got.get("Metadata") or {}).get("Name") or None

    def activate_rule_set(self, name: str) -> None:
        self._call(f"activating the receipt rule set {name}", self.v1.set_active_receipt_rule_set, RuleSetName=name)


def _dkim_attributes(dkim: ByoDkim | None) -> dict[str, str]:
    if dkim is None:
        return {"NextSigningKeyLength": "RSA_2048_BIT"}
    return {"DomainSigningSelector": dkim.selector, "DomainSigningPrivateKey": dkim.private_key_b64}


def identity_from(domain: str, got: dict[str, Any]) -> SesIdentity:
    dkim = got.get("DkimAttributes") or {}
    mail_from = got.get("MailFromAttributes") or {}
    return SesIdentity(
        name=domain, verified_for_sending=bool(got.get("VerifiedForSendingStatus")),
        verification_status=got.get("VerificationStatus") or "PENDING",
        dkim_status=dkim.get("Status") or "NOT_STARTED", dkim_origin=dkim.get("SigningAttributesOrigin") or "AWS_SES",
        dkim_tokens=tuple(dkim.get("Tokens") or ()), mail_from_domain=mail_from.get("MailFromDomain") or "",
        mail_from_status=mail_from.get("MailFromDomainStatus") or "",
        configuration_set=got.get("ConfigurationSetName") or "")


def byo_dkim_from_pem(selector: str, pem: str) -> ByoDkim:
    """The gateway's DKIM key as SES takes it: RSA only (SES signs with RSA), base64 of the DER."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size not in (1024, 2048):
        raise PermanentError("SES's Bring Your Own DKIM takes an RSA key of 1024 or 2048 bits; make one with "
                             "`mailgate dkim keygen DOMAIN` or use Easy DKIM (--dkim easy)", code="ses-dkim-key")
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    return ByoDkim(selector, base64.b64encode(der).decode())
