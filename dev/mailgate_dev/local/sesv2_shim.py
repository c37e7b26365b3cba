"""SESv2 in the emulator, as far as `mailgate domain add --ses` and `mailgate setup` use it.

moto 5 answers CreateEmailIdentity and GetEmailIdentity only loosely (a domain identity is
verified at once, DKIM "NOT_STARTED" without tokens, no MAIL FROM) and lacks GetAccount, the
identity's DKIM / MAIL FROM / configuration set calls and the configuration set's event
destinations. This module adds them to moto's SESv2 handler the way SES behaves:

- a new domain identity is PENDING, not verified; Easy DKIM gives three tokens; Bring Your Own
  DKIM keeps the selector and key; SES verifies the domain when it finds the DKIM records in DNS
  (the three `<token>._domainkey` CNAMEs to `<token>.dkim.amazonses.com`, or the selector's TXT
  with the key's public half) and the MAIL FROM domain when its MX points at
  `feedback-smtp.<region>.amazonses.com`. The emulator looks them up on each GetEmailIdentity while
  PENDING, at the nameserver named by MAILGATE_SES_NAMESERVER ("host:port"); without it nothing is
  ever found, as for a domain whose records are not published;
- the account is a new one: in the sandbox (ProductionAccessEnabled false, 200 messages a day, one
  a second), sending enabled, HEALTHY;
- an identity created twice is AlreadyExistsException; a missing one NotFoundException.

Sending is left to moto: its SendEmail accepts mail from any identity that exists, verified or
not (stricter than SES, which refuses an unverified one; the outbound tests rely on it).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from typing import Any

from moto.core.common_types import TYPE_RESPONSE

_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def _error(status: int, code: str, message: str) -> TYPE_RESPONSE:
    return status, {"status": status, "x-amzn-ErrorType": code}, json.dumps({"message": message})


def _state(response) -> dict[str, Any]:
    """What the emulator keeps per account and region beyond moto's own identity objects."""
    backend = response.sesv2_backend.core_backend
    if not hasattr(backend, "mailgate_sesv2"):
        backend.mailgate_sesv2 = {"identities": {}, "destinations": {}}
    return backend.mailgate_sesv2


def _new_identity(name: str, dkim: dict[str, Any] | None, configuration_set: str | None) -> dict[str, Any]:
    external = bool(dkim and dkim.get("DomainSigningPrivateKey"))
    attributes: dict[str, Any] = {"SigningEnabled": True, "Status": "PENDING",
                                  "SigningAttributesOrigin": "EXTERNAL" if external else "AWS_SES"}
    if external:
        attributes["_selector"], attributes["_key"] = dkim["DomainSigningSelector"], dkim["DomainSigningPrivateKey"]
    else:
        attributes["Tokens"] = ["".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(32)) for _ in range(3)]
        attributes["NextSigningKeyLength"] = (dkim or {}).get("NextSigningKeyLength", "RSA_2048_BIT")
    return {"name": name, "dkim": attributes, "verified": False, "configuration_set": configuration_set or "",
            "mail_from": None}


def _public(identity: dict[str, Any]) -> dict[str, Any]:
    dkim = {k: v for k, v in identity["dkim"].items() if not k.startswith("_")}
    out = {"IdentityType": "DOMAIN" if "@" not in identity["name"] else "EMAIL_ADDRESS",
           "FeedbackForwardingStatus": True, "VerifiedForSendingStatus": identity["verified"],
           "VerificationStatus": "SUCCESS" if identity["verified"] else "PENDING", "DkimAttributes": dkim,
           "Policies": {}, "Tags": []}
    if identity["configuration_set"]:
        out["ConfigurationSetName"] = identity["configuration_set"]
    if identity["mail_from"]:
        out["MailFromAttributes"] = dict(identity["mail_from"])
    return out


def create_email_identity(self) -> TYPE_RESPONSE:
    name = self._get_param("EmailIdentity")
    identities = _state(self)["identities"]
    if name in identities:
        return _error(400, "AlreadyExistsException", f"Email identity {name} already exist.")
    identities[name] = _new_identity(name, self._get_param("DkimSigningAttributes"),
                                     self._get_param("ConfigurationSetName"))
    # moto's own record too: its SendEmail checks only that the identity exists, as before
    self.sesv2_backend.core_backend.create_email_identity_v2(name, None, None, None)
    public = _public(identities[name])
    return json.dumps({k: public[k] for k in ("IdentityType", "VerifiedForSendingStatus", "DkimAttributes")})


def get_email_identity(self) -> TYPE_RESPONSE:
    name = self._get_param("EmailIdentity")
    identity = _state(self)["identities"].get(name)
    if identity is None:
        return _error(404, "NotFoundException", f"Email identity {name} does not exist.")
    _verify(identity, self.region)
    return json.dumps(_public(identity))


def put_email_identity_dkim_signing_attributes(self) -> TYPE_RESPONSE:
    identity = _state(self)["identities"].get(self._get_param("EmailIdentity"))
    if identity is None:
        return _error(404, "NotFoundException", "Email identity does not exist.")
    origin = self._get_param("SigningAttributesOrigin")
    attributes = self._get_param("SigningAttributes") or {}
    identity["dkim"] = _new_identity(identity["name"], attributes if origin == "EXTERNAL" else None, None)["dkim"]
    identity["verified"] = False
    return json.dumps({"DkimStatus": "PENDING", "DkimTokens": identity["dkim"].get("Tokens", [])})


def put_email_identity_mail_from_attributes(self) -> TYPE_RESPONSE:
    identity = _state(self)["identities"].get(self._get_param("EmailIdentity"))
    if identity is None:
        return _error(404, "NotFoundException", "Email identity does not exist.")
    domain = self._get_param("MailFromDomain")
    identity["mail_from"] = {"MailFromDomain": domain, "MailFromDomainStatus": "PENDING",
                             "BehaviorOnMxFailure": self._get_param("BehaviorOnMxFailure") or "USE_DEFAULT_VALUE"}
    if not domain:
        identity["mail_from"] = None
    return json.dumps({})


def put_email_identity_configuration_set_attributes(self) -> TYPE_RESPONSE:
    identity = _state(self)["identities"].get(self._get_param("EmailIdentity"))
    if identity is None:
        return _error(404, "NotFoundException", "Email identity does not exist.")
    identity["configuration_set"] = self._get_param("ConfigurationSetName") or ""
    return json.dumps({})


def get_account(self) -> TYPE_RESPONSE:
    return json.dumps({"DedicatedIpAutoWarmupEnabled": False, "EnforcementStatus": "HEALTHY",
                       "ProductionAccessEnabled": False, "SendingEnabled": True,
                       "SendQuota": {"Max24HourSend": 200.0, "MaxSendRate": 1.0, "SentLast24Hours": 0.0}})


def _destinations(self, set_name: str) -> dict[str, dict[str, Any]] | None:
    """The configuration set's destinations (v2 shape), including the one its CloudFormation
    resource made through moto's v1 backend; None when there is no such configuration set."""
    core = self.sesv2_backend.core_backend
    if set_name not in core.config_sets:
        return None
    mine = _state(self)["destinations"].setdefault(set_name, {})
    v1 = core.config_set_event_destination.get(set_name)
    if v1 and v1["Name"] not in mine:
        sns = v1.get("SNSDestination") or {}
        mine[v1["Name"]] = {"Name": v1["Name"], "Enabled": bool(v1.get("Enabled")),
                            "MatchingEventTypes": [t.upper() for t in v1.get("MatchingEventTypes", [])],
                            "SnsDestination": {"TopicArn": sns.get("TopicARN") or sns.get("TopicArn", "")}}
    return mine


def get_configuration_set_event_destinations(self) -> TYPE_RESPONSE:
    name = self._get_param("ConfigurationSetName")
    found = _destinations(self, name)
    if found is None:
        return _error(404, "NotFoundException", f"Configuration set {name} does not exist.")
    return json.dumps({"EventDestinations": list(found.values())})


def create_configuration_set_event_destination(self) -> TYPE_RESPONSE:
    return _put_destination(self, create=True)


def update_configuration_set_event_destination(self) -> TYPE_RESPONSE:
    return _put_destination(self, create=False)


def _put_destination(self, *, create: bool) -> TYPE_RESPONSE:
    set_name, name = self._get_param("ConfigurationSetName"), self._get_param("EventDestinationName")
    found = _destinations(self, set_name)
    if found is None:
        return _error(404, "NotFoundException", f"Configuration set {set_name} does not exist.")
    if create == (name in found):
        return (_error(400, "AlreadyExistsException", f"Event destination {name} already exists.") if create
                else _error(404, "NotFoundException", f"Event destination {name} does not exist."))
    found[name] = {"Name": name, **(self._get_param("EventDestination") or {})}
    return json.dumps({})


# --------------------------------------------------------------------------- verification by DNS


def _verify(identity: dict[str, Any], region: str) -> None:
    """Look for the records SES looks for, where MAILGATE_SES_NAMESERVER says (else find none)."""
    nameserver = os.environ.get("MAILGATE_SES_NAMESERVER")
    if not nameserver:
        return
    from mailgate.adapters.dnspython import DnspythonResolver

    resolver = DnspythonResolver.for_nameserver(nameserver, timeout=1.0)
    dkim = identity["dkim"]
    if dkim["Status"] == "PENDING" and _dkim_published(resolver, identity["name"], dkim):
        dkim["Status"], identity["verified"] = "SUCCESS", True
    mail_from = identity["mail_from"]
    if mail_from and mail_from["MailFromDomainStatus"] == "PENDING":
        answer = resolver.query(mail_from["MailFromDomain"], "MX")
        if any(r.split()[-1].rstrip(".") == f"feedback-smtp.{region}.amazonses.com" for r in answer.records):
            mail_from["MailFromDomainStatus"] = "SUCCESS"


def _dkim_published(resolver, domain: str, dkim: dict[str, Any]) -> bool:
    if dkim["SigningAttributesOrigin"] == "AWS_SES":
        return all(f"{t}.dkim.amazonses.com" in resolver.query(f"{t}._domainkey.{domain}", "CNAME").records
                   for t in dkim["Tokens"])
    answer = resolver.query(f"{dkim['_selector']}._domainkey.{domain}", "TXT")
    return any(f"p={_public_b64(dkim['_key'])}" in r.replace(" ", "") for r in answer.records)


def _public_b64(private_b64: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_der_private_key(base64.b64decode(private_b64), password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


OPERATIONS = (create_email_identity, get_email_identity, put_email_identity_dkim_signing_attributes,
              put_email_identity_mail_from_attributes, put_email_identity_configuration_set_attributes, get_account,
              get_configuration_set_event_destinations, create_configuration_set_event_destination,
              update_configuration_set_event_destination)


#: paths moto's server does not route for SESv2 (its catch-all `/v2/.*` does not reach them)
URL_PATHS = (
    "{0}/v2/email/account$",
    "{0}/v2/email/identities/(?P<EmailIdentity>[^/]+)/mail-from$",
    "{0}/v2/email/identities/(?P<EmailIdentity>[^/]+)/dkim/signing$",
    "{0}/v2/email/identities/(?P<EmailIdentity>[^/]+)/configuration-set$",
    "{0}/v2/email/configuration-sets/(?P<ConfigurationSetName>[^/]+)/event-destinations$",
    "{0}/v2/email/configuration-sets/(?P<ConfigurationSetName>[^/]+)/event-destinations/(?P<EventDestinationName>[^/]+)$",
)


def install() -> None:
    """Before moto's server builds its URL map."""
    from moto.sesv2 import urls
    from moto.sesv2.responses import SESV2Response

    for fn in OPERATIONS:
        setattr(SESV2Response, fn.__name__, fn)
    for path in URL_PATHS:
        urls.url_paths.setdefault(path, SESV2Response.dispatch)
