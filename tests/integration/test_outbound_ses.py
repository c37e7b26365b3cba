"""Outbound through SES v2 on the AWS emulator (the shared moto server), read back from the emulator.

The emulator lives for the whole session and SES identities are account-wide there, so each test
sends from a domain of its own: what another test verified or sent cannot leak into this one.
"""

import dataclasses
import json
import urllib.request
import uuid

import dkim
import pytest

from mailgate import tokens
from mailgate import dkim as D
from mailgate import keyring
from mailgate.adapters.senders import Transports
from mailgate.adapters.ses import SesSender, ses_client
from mailgate.adapters.smtp import Envelope
from mailgate.domain import AliasDomain
from mailgate.services import outbound
from tests.fixtures.dns import publish_dkim_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rsa_key():
    return D.generate_key("rsa", 2048)


@pytest.fixture
def domain():
    return f"d{uuid.uuid4().hex[:10]}.example.test"


@pytest.fixture
def lookup(rsa_key, dns_server, domain):
    """dkimpy's key lookup, over the wire to the local DNS server that publishes the public key."""
    return publish_dkim_key(dns_server, domain, "mg", rsa_key)


def accepted(moto_endpoint, domain) -> list[dict]:
    """What the emulator's SES accepted from `domain`: its raw messages with their destinations."""
    data = json.load(urllib.request.urlopen(f"{moto_endpoint}/moto-api/data.json"))
    return [m for m in data["ses"].get("RawMessage", []) if m["source"].endswith("@" + domain)]


@pytest.fixture(autouse=True)
def every_accepted_message_is_dkim_verified(request, lookup, domain, dns_server):
    """After each test that used the emulator: every message SES accepted from the test's domain
    verifies with the key published in DNS, and a tampered copy fails."""
    yield
    if "aws" not in request.fixturenames:
        return
    got = accepted(request.getfixturevalue("moto_endpoint"), domain)
    for m in got:
        raw = m["raw_data"].encode()
        assert dkim.verify(raw, dnsfunc=lookup)
        assert not dkim.verify(raw.replace(b"\r\n\r\n", b"\r\n\r\nX", 1), dnsfunc=lookup)
    if got:  # the key really came from the DNS server
        assert dns_server.count(f"mg._domainkey.{domain}", "TXT") >= 1


@pytest.fixture
def world(aws, rsa_key, domain):
    """A Container on fresh emulator resources with an alias domain that has a DKIM key, and a
    configuration set of its own."""
    aws.settings = dataclasses.replace(aws.settings, ses_configuration_set=f"mailgate-outbound-{domain.split('.')[0]}")
    aws.config.put_domain(AliasDomain(domain, dkim_selector="mg"))
    aws.secrets.put(keyring.secret_id(aws.settings, domain, "mg"), D.private_pem(rsa_key))
    client = ses_client(aws.settings)
    client.create_configuration_set(ConfigurationSetName=aws.settings.ses_configuration_set)
    aws.transports = Transports(ses_client=client, configuration_set=aws.settings.ses_configuration_set)
    return aws


def verify_domain(c, domain):
    ses = c.transports.ses_client()
    try:
        ses.create_email_identity(EmailIdentity=domain)
    except ses.exceptions.AlreadyExistsException:
        pass  # an earlier test of the session made it (the emulator's SES is shared, as SES answers)


def req(domain, **over):
    base = {"idempotency_key": "welcome-bob", "from": f"Team <team@{domain}>",
            "to": ["bob@example.org", "carol@example.org"], "subject": "Welcome", "text": "Hello!",
            "html": "<p>Hello!</p>", "record": {"model": "res.partner", "id": "7"}}
    base.update(over)
    return base


def test_message_sent_through_ses_is_the_dkim_signed_raw_message_one_call_per_recipient(
        world, domain, moto_endpoint, lookup):
    verify_domain(world, domain)
    out = outbound.send(world, req(domain))
    assert out["status"] == "sent" and out["transport"] == "ses"
    got = accepted(moto_endpoint, domain)
    assert len(got) == 2
    stored = world.raw_store.get(world.messages.get("out:" + out["ref"]).raw_key)
    for m in got:
        raw = m["raw_data"].encode()
        assert raw == stored
        assert dkim.verify(raw, dnsfunc=lookup)
        assert not dkim.verify(raw.replace(b"Hello!", b"Hello?"), dnsfunc=lookup)
        assert m["source"] == f"team@{domain}"
    assert [r["status"] for r in out["recipients"]] == ["sent", "sent"]
    record = world.messages.get("out:" + out["ref"])
    transport_ids = {r["transport_id"] for r in record.detail["recipients"]}
    assert transport_ids == {m["id"] for m in got}


def test_ses_call_names_the_verp_bounce_address_and_configuration_set(world, domain):
    calls = []
    client = world.transports.ses_client()
    client.meta.events.register("provide-client-params.sesv2.SendEmail", lambda params, **kw: calls.append(params))
    verify_domain(world, domain)
    out = outbound.send(world, req(domain, to=["bob@example.org"]))
    assert out["status"] == "sent"
    (params,) = calls
    assert params["ConfigurationSetName"] == world.settings.ses_configuration_set != ""
    assert params["Destination"] == {"ToAddresses": ["bob@example.org"]}
    assert tokens.parse_verp_address(world.token_key, params["FeedbackForwardingEmailAddress"]) == (out["ref"], 0)


def test_unverified_domain_is_a_permanent_failure_recorded_per_recipient(world, domain, moto_endpoint):
    out = outbound.send(world, req(domain))
    assert out["status"] == "failed"
    assert {r["error"] for r in out["recipients"]} == {"ses-rejected"}
    assert "MessageRejected" in out["recipients"][0]["detail"]
    assert accepted(moto_endpoint, domain) == []
    assert outbound.send(world, req(domain))["status"] == "duplicate"


def test_ses_throttling_is_deferred_for_a_later_try_and_rejection_is_final():
    from botocore.stub import Stubber

    import boto3

    client = boto3.client("sesv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_client_error("send_email", "TooManyRequestsException", "Maximum sending rate exceeded.", 429)
        stub.add_client_error("send_email", "MessageRejected", "Email address is not verified.", 400)
        results = SesSender(client).send([Envelope("bounce+x@example.test", "a@example.org"),
                                          Envelope("bounce+y@example.test", "b@example.org")], b"Subject: x\r\n\r\nx")
    assert [(r.status, r.error) for r in results] == [("deferred", "ses-throttled"), ("failed", "ses-rejected")]
    assert "Maximum sending rate exceeded" in results[0].detail


def test_a_reply_quoting_the_message_id_ses_gave_our_mail_joins_its_thread(world, domain):
    """SES overrides the Message-ID of what it sends ("Amazon SES header fields"), so replies quote
    <SES message id@email.amazonses.com> (us-east-1), never our <ref@domain>."""
    from mailgate.services import inbound

    verify_domain(world, domain)
    out = outbound.send(world, req(domain, to=["bob@example.org"]))
    sent = world.messages.get("out:" + out["ref"])
    assert out["status"] == "sent" and sent.thread_id
    ses_id = sent.detail["recipients"][0]["transport_id"] + "@email.amazonses.com"
    reply = (f"From: Bob <bob@example.org>\r\nTo: Team <team@{domain}>\r\nSubject: Re: Welcome\r\n"
             f"Message-ID: <r1.{domain}@example.org>\r\nIn-Reply-To: <{ses_id}>\r\nReferences: <{ses_id}>\r\n"
             "\r\nThanks!\r\n").encode()
    world.raw_store.put(f"raw/ses/r1-{domain}", reply)
    got = inbound.ingest(world, f"raw/ses/r1-{domain}", source="ses", envelope_recipients=[f"team@{domain}"])
    assert (got.outcome, got.thread_id) == ("thread", sent.thread_id), got.reason


def test_a_dsn_to_the_verp_address_of_one_recipient_suppresses_exactly_that_recipient(world, domain):
    """Outbound through SES, the DSN through inbound, all on DynamoDB: carol bounced, bob did not."""
    from mailgate import suppression
    from mailgate.services import inbound

    verify_domain(world, domain)
    out = outbound.send(world, req(domain))  # bob (index 0), carol (index 1)
    verp = tokens.verp_address(world.token_key, "bounce", domain, out["ref"], 1)
    dsn = (f"From: MAILER-DAEMON@mx.example.org\r\nTo: {verp}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
           f"Message-ID: <dsn.{domain}@mx.example.org>\r\nMIME-Version: 1.0\r\n"
           "Content-Type: multipart/report; report-type=delivery-status; boundary=R\r\n\r\n"
           "--R\r\nContent-Type: text/plain\r\n\r\nI could not deliver your message.\r\n"
           "--R\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
           "Final-Recipient: rfc822; carol@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
           "Diagnostic-Code: smtp; 550 5.1.1 <carol@example.org>: Recipient address rejected: User unknown\r\n"
           "--R--\r\n").encode()
    world.raw_store.put(f"raw/ses/dsn-{domain}", dsn)
    got = inbound.ingest(world, f"raw/ses/dsn-{domain}", source="ses", envelope_recipients=[verp])
    assert got.outcome == "bounce" and "carol@example.org: suppressed" in got.reason
    assert [e["address"] for e in suppression.list_suppressed(world.kv, domain)] == ["carol@example.org"]
    again = outbound.send(world, req(domain, idempotency_key="welcome-again"))
    assert [r["status"] for r in again["recipients"]] == ["sent", "suppressed"]


def test_a_send_request_cannot_mail_out_a_stored_inbound_message(world, domain, moto_endpoint):
    """On the emulator's S3: the raw mail SES stored under raw/ses/ is in the same bucket as the
    uploads; a request naming it is refused and nothing reaches SES."""
    verify_domain(world, domain)
    world.raw_store.put("raw/ses/inbound-0001", b"From: ceo@example.test\r\nSubject: salaries\r\n\r\nsecret\r\n")
    out = outbound.send(world, req(domain, idempotency_key="leak-1", to=["eve@attacker.example"],
                                   attachments=["raw/ses/inbound-0001"]))
    assert out["status"] == "rejected" and out["error"] == "attachment-not-allowed"
    assert accepted(moto_endpoint, domain) == []

    world.raw_store.put(outbound.upload_prefix("leak-2") + "terms.pdf", b"%PDF-1.4 terms")
    ok = outbound.send(world, req(domain, idempotency_key="leak-2", to=["bob@example.org"],
                                  attachments=[outbound.upload_prefix("leak-2") + "terms.pdf"]))
    assert ok["status"] == "sent" and b"terms.pdf" in accepted(moto_endpoint, domain)[0]["raw_data"].encode()
