"""SES set up from the command line: a domain's identity, DKIM, MAIL FROM and feedback, the
receipt rule set, and the check of what is still missing, each with its fix.

Pure logic over `SesAdmin` (the port) and the gateway's container (its configuration and DKIM
keys); `mailgate domain add --ses` and `mailgate setup` print what these return.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mailgate.dnsadvice import dkim_keys_for
from mailgate.domain import AliasDomain
from mailgate.errors import MailgateError

from .ports import ByoDkim, EventDestination, SesAdmin, SesIdentity

OK, DONE, FIX = "ok", "done", "fix"
FEEDBACK_EVENTS = ("BOUNCE", "COMPLAINT")


@dataclass(frozen=True)
class Step:
    """One thing checked or done: `status` ok (as it should be), done (just set up) or fix (a
    person must act: `fix` says how)."""

    item: str
    status: str
    found: str
    fix: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def mail_from_for(domain: AliasDomain) -> str:
    """The custom MAIL FROM domain: the bounce alias as a subdomain (bounce.example.com), as
    `mailgate dns records` advises it."""
    return f"{domain.bounce}.{domain.name}"


def gateway_key(c, domain: AliasDomain) -> ByoDkim | None:
    """The key the gateway signs this domain's mail with (its own, else the gateway's shared one
    it CNAMEs to), as SES's Bring Your Own DKIM takes it; None when there is none yet."""
    from .aws import byo_dkim_from_pem

    keys = dkim_keys_for(c, domain)
    pem = keys.get(domain.name) or keys.get(c.settings.gateway_domain)
    return byo_dkim_from_pem(domain.dkim_selector, pem) if pem else None


def add_domain(ses: SesAdmin, c, domain: AliasDomain, *, dkim: str, configuration_set: str,
               feedback_topic: str, mail_from: str | None = None) -> list[Step]:
    """Make SES send for `domain`: the identity with DKIM ("byo": the gateway's key, "easy": SES's
    own), this stack's configuration set as its default, the custom MAIL FROM domain, and the
    configuration set's bounce and complaint destination. Idempotent: a second run changes
    nothing that is right."""
    key = gateway_key(c, domain) if dkim == "byo" else None
    if dkim == "byo" and key is None:
        raise MailgateError(f"no DKIM key for {domain.name} yet: make it with `mailgate dkim keygen {domain.name}` "
                            "(or the gateway's shared one), or let SES sign with `--dkim easy`", code="ses-dkim-key")
    steps = [_identity(ses, domain.name, key, configuration_set)]
    steps.append(_mail_from(ses, domain.name, mail_from or mail_from_for(domain)))
    steps.append(feedback_destination(ses, configuration_set, feedback_topic, fix_it=True))
    return steps


def _identity(ses: SesAdmin, name: str, key: ByoDkim | None, configuration_set: str) -> Step:
    current = ses.identity(name)
    how = f"Bring Your Own DKIM, selector {key.selector}" if key else "Easy DKIM"
    if current is None:
        ses.create_identity(name, dkim=key, configuration_set=configuration_set)
        return Step(f"identity {name}", DONE, f"created with {how} and configuration set {configuration_set}")
    done = []
    if (current.dkim_origin == "EXTERNAL") != bool(key):
        ses.set_dkim(name, key)
        done.append(f"DKIM switched to {how}")
    if configuration_set and current.configuration_set != configuration_set:
        ses.set_configuration_set(name, configuration_set)
        done.append(f"configuration set {configuration_set}")
    if done:
        return Step(f"identity {name}", DONE, "; ".join(done))
    return Step(f"identity {name}", OK, f"exists ({how})")


def _mail_from(ses: SesAdmin, name: str, mail_from: str) -> Step:
    current = ses.identity(name)
    if current is not None and current.mail_from_domain == mail_from:
        return Step(f"MAIL FROM {mail_from}", OK, f"set ({current.mail_from_status or 'PENDING'})")
    ses.set_mail_from(name, mail_from)
    return Step(f"MAIL FROM {mail_from}", DONE, "set; SES checks its MX record")


def feedback_destination(ses: SesAdmin, configuration_set: str, topic_arn: str, *, fix_it: bool) -> Step:
    """The configuration set must send bounces and complaints to the feedback function's topic."""
    item = f"feedback of configuration set {configuration_set}"
    if not configuration_set or not topic_arn:
        return Step(item, FIX, "the stack names no configuration set or feedback topic",
                    "deploy template.yaml (its ConfigurationSet and FeedbackTopic outputs)")
    for d in ses.event_destinations(configuration_set):
        if d.topic_arn == topic_arn and d.enabled and set(FEEDBACK_EVENTS) <= set(d.event_types):
            return Step(item, OK, f"{d.name}: {', '.join(d.event_types).lower()} to the feedback topic")
    if not fix_it:
        return Step(item, FIX, "bounces and complaints do not reach the feedback topic",
                    "mailgate setup (or: mailgate domain add DOMAIN --ses)")
    ses.put_event_destination(configuration_set, EventDestination(
        f"{configuration_set}-feedback", True, FEEDBACK_EVENTS, topic_arn))
    return Step(item, DONE, "bounces and complaints now go to the feedback topic")


# --------------------------------------------------------------------------- mailgate setup


def check(ses: SesAdmin, c, outputs: dict[str, str], *, replace_rule_set: bool = False,
          parameters: dict[str, str] | None = None) -> list[Step]:
    """What SES still needs, with the fix for each; activates the receipt rule set when no other
    one is active (or `replace_rule_set`) and sets the feedback destination when it is missing.
    With a deployed stack's `parameters`, also whether its role may send as each SES domain."""
    steps = [_account(ses), _rule_set(ses, outputs.get("ReceiptRuleSetName", ""), replace_rule_set),
             feedback_destination(ses, outputs.get("ConfigurationSetName", ""), outputs.get("FeedbackTopicArn", ""),
                                  fix_it=True)]
    gateway = (outputs.get("GatewayDomain") or c.settings.gateway_domain or "").lower()
    if gateway:
        steps += identity_steps(ses, gateway, None, receiving=True)
    for domain in c.config.list_domains():
        if domain.name != gateway:
            steps += identity_steps(ses, domain.name, domain, receiving=False)
            if parameters is not None and "SendingDomains" in parameters:
                steps += _may_send_as(ses, domain.name, parameters["SendingDomains"])
    return steps


def _may_send_as(ses: SesAdmin, name: str, sending_domains: str) -> list[Step]:
    """The outbound function's role sends through SES only as GatewayDomain and SendingDomains."""
    if ses.identity(name) is None:
        return []
    listed = {d.strip().lower() for d in sending_domains.split(",") if d.strip()}
    if name in listed:
        return [Step(f"sending as {name}", OK, "in SendingDomains: the outbound function may send as it")]
    wanted = ",".join(sorted(listed | {name}))
    return [Step(f"sending as {name}", FIX, "not in the stack's SendingDomains: the outbound function may not send as it "
                 "through SES", f"sam deploy --parameter-overrides SendingDomains={wanted}")]


def _account(ses: SesAdmin) -> Step:
    a = ses.account()
    if not a.sending_enabled or a.enforcement_status not in ("", "HEALTHY"):
        return Step("SES account", FIX, f"sending {'enabled' if a.sending_enabled else 'PAUSED'}, "
                    f"status {a.enforcement_status or 'unknown'}",
                    "read the SES console's reputation page and AWS's e-mail about it; fix the cause, then ask "
                    "for a review (docs/operations.md)")
    if not a.production_access:
        return Step("SES account", FIX, f"in the sandbox: mail only to verified addresses, "
                    f"{a.max_24_hour_send:.0f} a day",
                    "request production access: aws sesv2 put-account-details --production-access-enabled "
                    "--mail-type TRANSACTIONAL --website-url URL --use-case-description TEXT")
    return Step("SES account", OK, f"production access, {a.max_24_hour_send:.0f} a day, {a.max_send_rate:.0f}/s")


def _rule_set(ses: SesAdmin, name: str, replace: bool) -> Step:
    item = f"receipt rule set {name}"
    if not name:
        return Step("receipt rule set", FIX, "the stack names none", "deploy template.yaml")
    active = ses.active_rule_set()
    if active == name:
        return Step(item, OK, "active")
    if active and not replace:
        return Step(item, FIX, f"inactive: {active} is the active one (one per account and region)",
                    "mailgate setup --replace-active-rule-set (the other rule set then stops receiving)")
    ses.activate_rule_set(name)
    return Step(item, DONE, "activated" + (f" (in place of {active})" if active else ""))


def identity_steps(ses: SesAdmin, name: str, domain: AliasDomain | None, *, receiving: bool) -> list[Step]:
    """Whether SES may send for (and, for the gateway domain, receive for) `name`."""
    identity = ses.identity(name)
    if identity is None:
        fix = f"mailgate domain add {name} --ses"
        why = "SES receives only for a verified domain" if receiving else "SES sends only for a verified domain"
        return [Step(f"identity {name}", FIX, f"not in SES ({why})", fix)]
    return [_verification(identity), _dkim(identity)] + ([_mail_from_status(identity)] if domain else [])


def _verification(identity: SesIdentity) -> Step:
    item = f"identity {identity.name}"
    if identity.verified_for_sending:
        return Step(item, OK, "verified")
    return Step(item, FIX, f"not verified ({identity.verification_status})",
                f"publish the DKIM records `mailgate dns records {identity.name}` prints; SES verifies the "
                "domain when it finds them (up to 72 hours)")


def _dkim(identity: SesIdentity) -> Step:
    item = f"DKIM {identity.name}"
    how = "Bring Your Own DKIM" if identity.dkim_origin == "EXTERNAL" else "Easy DKIM"
    if identity.dkim_status == "SUCCESS":
        return Step(item, OK, f"{how}: found in DNS")
    return Step(item, FIX, f"{how}: {identity.dkim_status}",
                f"publish the DKIM records `mailgate dns records {identity.name}` prints")


def _mail_from_status(identity: SesIdentity) -> Step:
    if not identity.mail_from_domain:
        return Step(f"MAIL FROM {identity.name}", FIX, "none (SES's own MAIL FROM does not align with DMARC)",
                    f"mailgate domain add {identity.name} --ses")
    item = f"MAIL FROM {identity.mail_from_domain}"
    if identity.mail_from_status == "SUCCESS":
        return Step(item, OK, "MX found")
    return Step(item, FIX, f"{identity.mail_from_status or 'PENDING'}",
                f"publish the MX and SPF records of {identity.mail_from_domain} (`mailgate dns records "
                f"{identity.name}`)")
