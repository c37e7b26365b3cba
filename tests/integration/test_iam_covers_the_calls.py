"""Every AWS call each function's code makes is allowed by its role in template.yaml.

The emulator does not enforce IAM, so a role that lacks an action its code needs would pass every
other test and fail in AWS. Here each function's service runs its paths on the emulator with the
real adapters while every botocore call is recorded; each call, turned into the IAM action and
resource it needs, must be in that function's least-privilege lists (tests/unit/test_template_iam.py,
which checks those lists against template.yaml).
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import pathlib
import time

import boto3
import botocore.client
import pytest

from mailgate import bootstrap, tokens
from mailgate import dkim as D
from mailgate import keyring
from mailgate.bounce_policy import record_bounce
from mailgate.domain import Alias, AliasDomain, IncomingServer, OutgoingServer, server_secret_id
from mailgate.entrypoints import feedback as sns_action
from mailgate.services import dnswatch, fetch, inbound, outbound
from mailgate_dev import fakes
from tests.unit.test_fetch_service import FakeImap
from tests.unit.test_template_iam import DYNAMODB, S3_OBJECTS, SECRETS

pytestmark = pytest.mark.integration
EVENTS = pathlib.Path(__file__).resolve().parents[2] / "events"
DOMAIN = "example.test"


class Calls(list):
    """(service, operation, params) of every botocore call while recording."""

    recording = True

    @contextlib.contextmanager
    def paused(self):  # what SES or the test itself does, not the function
        self.recording = False
        try:
            yield
        finally:
            self.recording = True


@pytest.fixture
def calls(monkeypatch):
    made = Calls()
    real = botocore.client.BaseClient._make_api_call

    def record(self, operation, params):
        if made.recording:
            made.append((self.meta.service_model.service_name, operation, params))
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return made


def _needs(service: str, operation: str, params: dict) -> set[tuple[str, str]]:
    """(IAM action, resource) a call needs; resource "" where only the action is checked."""
    if service == "dynamodb":
        if operation == "TransactWriteItems":  # IAM checks each item's own action
            kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                     "ConditionCheck": "ConditionCheckItem"}
            return {(f"dynamodb:{kinds[k]}", "") for item in params["TransactItems"] for k in item}
        return {(f"dynamodb:{operation}", "")}
    if service == "s3":
        action = {"GetObject": "s3:GetObject", "HeadObject": "s3:GetObject", "PutObject": "s3:PutObject",
                  "ListObjectsV2": "s3:ListBucket", "ListObjects": "s3:ListBucket"}[operation]
        return {(action, params.get("Key", ""))}
    if service == "secretsmanager":
        return {(f"secretsmanager:{operation}", params["SecretId"])}
    if service == "sesv2":
        return {(f"ses:{operation}", "")}
    return set()  # SQS and EventBridge: SAM's policy templates, scoped to the queue or bus


def _check(name: str, made, settings) -> None:
    stack = settings.token_secret_id.split("/")[0] + "/"
    for service, operation, params in made:
        for action, resource in _needs(service, operation, params):
            where = f"{name}: {service}.{operation} {resource}"
            if action.startswith("dynamodb:"):
                assert action.split(":")[1] in DYNAMODB[name], where
            elif action.startswith("s3:"):
                if action == "s3:ListBucket":
                    continue  # the bucket, names only: granted to each function that reads
                assert any(a == action and fnmatch.fnmatchcase(resource, p) for a, p in S3_OBJECTS[name]), where
            elif action.startswith("secretsmanager:"):
                assert action == "secretsmanager:GetSecretValue", where
                wanted = "TokenKeySecret" if resource == settings.token_secret_id else resource.removeprefix(stack)
                assert any(fnmatch.fnmatchcase(wanted, p) for p in SECRETS[name]), where
            elif action.startswith("ses:"):
                assert name == "OutboundFunction" and action == "ses:SendEmail", where


def _fresh(aws, **ports):
    """A container as a cold start builds it (no secret cached yet)."""
    return bootstrap.from_settings(aws.settings, **ports)


@pytest.fixture
def configured(aws):
    aws.config.put_domain(AliasDomain(DOMAIN, dkim_selector="mg", loop_limit=50))
    aws.config.put_alias(Alias(DOMAIN, "sales", "crm.lead"))
    aws.secrets.put(keyring.secret_id(aws.settings, DOMAIN, "mg"), D.private_pem(D.generate_key("rsa", 1024)))
    ses = boto3.client("sesv2", endpoint_url=aws.settings.endpoint_url, region_name="us-east-1")
    try:
        ses.create_email_identity(EmailIdentity=DOMAIN)
    except ses.exceptions.AlreadyExistsException:
        pass  # an earlier test of the session made it (the emulator's SES is shared, as SES answers)
    return aws


def _deliver(c, calls, raw: bytes, key: str, to: str):
    with calls.paused():  # SES's S3 action stores the mail
        c.raw_store.put(key, raw)
    return inbound.ingest(c, key, source="ses", envelope_recipients=[to])


def test_the_outbound_and_feedback_functions_calls_are_all_allowed(configured, calls):
    c = _fresh(configured)
    c.raw_store.put(outbound.upload_prefix("iam-1") + "terms.pdf", b"%PDF-1.4")  # the application uploads
    c.config.put_outgoing(OutgoingServer("relay", "127.0.0.1", 1, "me", from_filter="relay.example.test",
                                         secret_id=server_secret_id(c.settings.server_secret_prefix, "smtp", "relay")))
    c.secrets.put(server_secret_id(c.settings.server_secret_prefix, "smtp", "relay"), "pw")
    calls.clear()
    sent = outbound.send(c, {"idempotency_key": "iam-1", "from": f"Sales <sales@{DOMAIN}>", "to": ["bob@example.org"],
                             "subject": "Terms", "text": "Attached.", "record": {"model": "sale.order", "id": "1"},
                             "attachments": [outbound.upload_prefix("iam-1") + "terms.pdf"]})
    outbound.send(c, {"idempotency_key": "iam-1", "from": f"sales@{DOMAIN}", "to": ["bob@example.org"],
                      "subject": "Terms", "text": "Attached."})  # a retry: a duplicate
    outbound.send(c, {"idempotency_key": "iam-2", "from": "me@relay.example.test", "to": ["bob@example.org"],
                      "subject": "Via the relay", "text": "Hi."})  # the relay's password, then unreachable
    assert sent["status"] == "sent", sent
    assert any(s == "secretsmanager" and p["SecretId"].endswith("server/smtp/relay") for s, _, p in calls)
    _check("OutboundFunction", calls, c.settings)

    f = _fresh(configured)
    calls.clear()
    for sample in ("sns-ses-bounce.json", "sns-ses-complaint.json"):
        result = sns_action.handle(f, json.loads((EVENTS / sample).read_text()))
        assert result["results"][0]["outcome"] in ("bounced", "complaint"), result
    _check("FeedbackFunction", calls, f.settings)


def test_the_inbound_functions_calls_are_all_allowed(configured, calls):
    c = _fresh(configured)
    ref = outbound.send(c, {"idempotency_key": "iam-in", "from": f"sales@{DOMAIN}", "to": ["gone@customer.test"],
                            "subject": "Hello", "text": "Hi.", "record": {"model": "sale.order", "id": "2"}})["ref"]
    record_bounce(c.kv, DOMAIN, "ann@customer.test", permanent=False, reason="mailbox-full", status="4.2.2",
                  source="dsn", policy=c.bounce_policy)  # ann's next mail resets it: a Query and Deletes
    c = _fresh(configured)
    calls.clear()
    first = _deliver(c, calls, b"From: ann@customer.test\r\nTo: sales@example.test\r\nSubject: Quote\r\n"
                        b"Message-ID: <q1@customer.test>\r\n\r\n40 chairs.\r\n", "raw/ses/q1", f"sales@{DOMAIN}")
    reply_to = tokens.reply_address(c.token_key, "catchall", DOMAIN, first.thread_id)
    reply = _deliver(c, calls, b"From: ann@customer.test\r\nSubject: Re: Quote\r\nMessage-ID: <q2@customer.test>\r\n"
                        b"\r\nAnd 4 tables.\r\n", "raw/ses/q2", reply_to)
    answered = _deliver(c, calls, b"From: carl@customer.test\r\nSubject: Hi\r\nMessage-ID: <q3@customer.test>\r\n\r\nHi\r\n",
                        "raw/ses/q3", f"nobody@{DOMAIN}")
    verp = tokens.verp_address(c.token_key, "bounce", DOMAIN, ref, 0)
    bounced = _deliver(c, calls, b"From: MAILER-DAEMON@mx.customer.test\r\nSubject: Undelivered Mail\r\n"
                          b"Message-ID: <b1@mx.customer.test>\r\nContent-Type: multipart/report; "
                          b"report-type=delivery-status; boundary=B\r\n\r\n--B\r\nContent-Type: "
                          b"message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; "
                          b"gone@customer.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n", "raw/ses/b1", verp)
    assert (first.outcome, reply.outcome, answered.outcome) == ("new-record", "thread", "unknown-recipient")
    assert bounced.detail["feedback"]["outcome"] == "bounced"
    assert {op for s, op, _ in calls if s == "dynamodb"} >= {"Query", "DeleteItem", "TransactWriteItems"}
    _check("InboundFunction", calls, c.settings)


def test_the_fetch_functions_and_the_dns_checks_calls_are_all_allowed(configured, calls):
    prefix = configured.settings.server_secret_prefix
    box = FakeImap()
    box.add(b"From: ann@customer.test\r\nTo: office@customer.test\r\nSubject: Hi\r\nMessage-ID: <f1@customer.test>"
            b"\r\n\r\nHello\r\n")
    configured.config.put_incoming(IncomingServer("office", "imap", "imap.customer.test", 993, "office@customer.test",
                                                  secret_id=server_secret_id(prefix, "imap", "office"),
                                                  fallback_model="helpdesk.ticket", attachments=False))
    configured.secrets.put(server_secret_id(prefix, "imap", "office"), "pw")

    d = _fresh(configured)
    calls.clear()
    assert fetch.dispatch(d) == 1
    _check("FetchDispatcherFunction", calls, d.settings)

    w = _fresh(configured, mailboxes=fakes.MemoryMailboxes({"office": box}))
    calls.clear()
    result = fetch.run_job(w, {"server": "office"}, deadline=time.monotonic() + 120)
    assert result.ingested == 1, result
    _check("FetchWorkerFunction", calls, w.settings)

    n = _fresh(configured, resolvers=fakes.MemoryResolver)
    calls.clear()
    assert [r["domain"] for r in dnswatch.run_daily(n)] == [DOMAIN]
    _check("DnsCheckFunction", calls, n.settings)
