"""SES set up from the command line, over the SES port's fake: what is created, what is checked,
and the fix named for each thing missing."""

from __future__ import annotations

import pytest

from mailgate import dkim as D
from mailgate.domain import AliasDomain
from mailgate.errors import MailgateError
from mailgate_dev import fakes
from mailgate_dev.admin import ses_setup
from mailgate_dev.admin.ports import EventDestination

OUTPUTS = {"ReceiptRuleSetName": "mailgate-rules", "ConfigurationSetName": "mailgate-outbound",
           "FeedbackTopicArn": "arn:aws:sns:us-east-1:1:feedback", "GatewayDomain": "gw.example.net"}


@pytest.fixture
def c():
    from mailgate.settings import Settings

    c = fakes.in_memory(Settings(table_name="t", bucket_name="b", gateway_domain="gw.example.net"))
    c.config.put_domain(AliasDomain(name="example.com"))
    return c


def store_key(c, owner: str, kind: str = "rsa") -> None:
    c.secrets.put(f"{c.settings.dkim_secret_prefix}{owner}/mailgate{'-ed25519' if kind == 'ed25519' else ''}",
                  D.private_pem(D.generate_key(kind, 2048)))


def test_domain_add_ses_creates_the_identity_with_the_gateways_key_mail_from_and_feedback(c):
    store_key(c, "example.com")
    ses = fakes.MemorySesAdmin()
    steps = ses_setup.add_domain(ses, c, c.config.get_domain("example.com"), dkim="byo",
                                 configuration_set="mailgate-outbound", feedback_topic=OUTPUTS["FeedbackTopicArn"])
    assert [(s.item, s.status) for s in steps] == [
        ("identity example.com", "done"), ("MAIL FROM bounce.example.com", "done"),
        ("feedback of configuration set mailgate-outbound", "done")]
    identity = ses.identity("example.com")
    assert identity.dkim_origin == "EXTERNAL" and identity.configuration_set == "mailgate-outbound"
    assert identity.mail_from_domain == "bounce.example.com"
    (dest,) = ses.event_destinations("mailgate-outbound")
    assert dest.topic_arn == OUTPUTS["FeedbackTopicArn"] and set(dest.event_types) == {"BOUNCE", "COMPLAINT"}
    again = ses_setup.add_domain(ses, c, c.config.get_domain("example.com"), dkim="byo",
                                 configuration_set="mailgate-outbound", feedback_topic=OUTPUTS["FeedbackTopicArn"])
    assert {s.status for s in again} == {"ok"} and ses.calls.count("create example.com") == 1


def test_bring_your_own_dkim_uses_the_shared_gateway_key_a_domain_cnames_to(c):
    store_key(c, "gw.example.net")
    key = ses_setup.gateway_key(c, c.config.get_domain("example.com"))
    pem = c.secrets.get(f"{c.settings.dkim_secret_prefix}gw.example.net/mailgate")
    assert key.selector == "mailgate"
    import base64

    from cryptography.hazmat.primitives import serialization

    ours = serialization.load_pem_private_key(pem.encode(), None).private_numbers()
    given = serialization.load_der_private_key(base64.b64decode(key.private_key_b64), None).private_numbers()
    assert ours == given


def test_without_a_key_byo_says_how_to_make_one_and_easy_dkim_needs_none(c):
    ses = fakes.MemorySesAdmin()
    with pytest.raises(MailgateError, match="mailgate dkim keygen example.com"):
        ses_setup.add_domain(ses, c, c.config.get_domain("example.com"), dkim="byo", configuration_set="cs",
                             feedback_topic="arn:t")
    ses_setup.add_domain(ses, c, c.config.get_domain("example.com"), dkim="easy", configuration_set="cs",
                         feedback_topic="arn:t")
    assert len(ses.identity("example.com").dkim_tokens) == 3


def test_an_ed25519_key_is_refused_for_bring_your_own_dkim(c):
    from mailgate_dev.admin.aws import byo_dkim_from_pem

    with pytest.raises(MailgateError, match="RSA key"):
        byo_dkim_from_pem("s", D.private_pem(D.generate_key("ed25519")))


def test_switching_an_existing_identity_to_easy_dkim(c):
    store_key(c, "example.com")
    ses = fakes.MemorySesAdmin()
    domain = c.config.get_domain("example.com")
    ses_setup.add_domain(ses, c, domain, dkim="byo", configuration_set="cs", feedback_topic="arn:t")
    steps = ses_setup.add_domain(ses, c, domain, dkim="easy", configuration_set="cs", feedback_topic="arn:t")
    assert steps[0].status == "done" and "Easy DKIM" in steps[0].found
    assert ses.identity("example.com").dkim_origin == "AWS_SES"


def test_setup_on_a_fresh_account_activates_receiving_and_names_every_fix(c):
    ses = fakes.MemorySesAdmin()
    steps = {s.item: s for s in ses_setup.check(ses, c, OUTPUTS)}
    assert steps["receipt rule set mailgate-rules"].status == "done" and ses.active == "mailgate-rules"
    assert steps["feedback of configuration set mailgate-outbound"].status == "done"
    account = steps["SES account"]
    assert account.status == "fix" and "sandbox" in account.found and "production-access-enabled" in account.fix
    gateway = steps["identity gw.example.net"]
    assert gateway.status == "fix" and "receives only for a verified domain" in gateway.found
    assert gateway.fix == "mailgate domain add gw.example.net --ses"
    assert steps["identity example.com"].fix == "mailgate domain add example.com --ses"


def test_setup_reports_pending_dkim_and_mail_from_until_ses_finds_the_records(c):
    store_key(c, "example.com")
    ses = fakes.MemorySesAdmin(production=True)
    ses_setup.add_domain(ses, c, c.config.get_domain("example.com"), dkim="byo",
                         configuration_set="mailgate-outbound", feedback_topic=OUTPUTS["FeedbackTopicArn"])
    steps = {s.item: s for s in ses_setup.check(ses, c, OUTPUTS)}
    assert steps["identity example.com"].status == "fix" and "mailgate dns records example.com" in steps[
        "identity example.com"].fix
    assert steps["DKIM example.com"].found == "Bring Your Own DKIM: PENDING"
    assert steps["MAIL FROM bounce.example.com"].status == "fix"
    ses.verify("example.com")
    steps = {s.item: s for s in ses_setup.check(ses, c, OUTPUTS)}
    assert all(steps[k].status == "ok" for k in ("identity example.com", "DKIM example.com",
                                                  "MAIL FROM bounce.example.com", "SES account"))


def test_setup_never_deactivates_another_rule_set_unless_told(c):
    ses = fakes.MemorySesAdmin()
    ses.active = "other-app-rules"
    step = {s.item: s for s in ses_setup.check(ses, c, OUTPUTS)}["receipt rule set mailgate-rules"]
    assert step.status == "fix" and "other-app-rules is the active one" in step.found
    assert "--replace-active-rule-set" in step.fix and ses.active == "other-app-rules"
    step = {s.item: s for s in ses_setup.check(ses, c, OUTPUTS, replace_rule_set=True)}["receipt rule set mailgate-rules"]
    assert step.status == "done" and "in place of other-app-rules" in step.found and ses.active == "mailgate-rules"


def test_a_disabled_or_misdirected_feedback_destination_is_set_right(c):
    ses = fakes.MemorySesAdmin()
    ses.put_event_destination("mailgate-outbound", EventDestination("old", False, ("BOUNCE",), "arn:elsewhere"))
    step = ses_setup.feedback_destination(ses, "mailgate-outbound", OUTPUTS["FeedbackTopicArn"], fix_it=False)
    assert step.status == "fix"
    step = ses_setup.feedback_destination(ses, "mailgate-outbound", OUTPUTS["FeedbackTopicArn"], fix_it=True)
    assert step.status == "done"
    assert ses_setup.feedback_destination(ses, "mailgate-outbound", OUTPUTS["FeedbackTopicArn"], fix_it=False).status == "ok"


def test_a_deployed_stack_must_list_an_ses_domain_in_sending_domains_for_outbound_to_send_as_it(c):
    ses = fakes.MemorySesAdmin(production=True)
    ses_setup.add_domain(ses, c, c.config.get_domain("example.com"), dkim="easy", configuration_set="cs",
                         feedback_topic="arn:t")
    step = {s.item: s for s in ses_setup.check(ses, c, OUTPUTS, parameters={"SendingDomains": "other.example"})}[
        "sending as example.com"]
    assert step.status == "fix" and step.fix == "sam deploy --parameter-overrides SendingDomains=example.com,other.example"
    steps = {s.item: s for s in ses_setup.check(ses, c, OUTPUTS, parameters={"SendingDomains": "example.com"})}
    assert steps["sending as example.com"].status == "ok"
    assert "sending as example.com" not in {s.item for s in ses_setup.check(ses, c, OUTPUTS)}  # the local stack
