"""Each Lambda handler, invoked as Lambda invokes it, with its trigger's sample event from events/,
against the emulator. The same samples drive the local stack."""

import json
import pathlib

import pytest

from mailgate import bootstrap
from mailgate.domain import Alias, AliasDomain, IncomingServer
from mailgate.services import fetch
from mailgate_dev.local.invoker import LambdaContext, invoke
from mailgate_dev.local.net import free_port

pytestmark = pytest.mark.integration
REPO = pathlib.Path(__file__).resolve().parents[2]


def sample(name: str) -> dict:
    return json.loads((REPO / "events" / name).read_text())


@pytest.fixture
def deployed(aws):
    """The `aws` container as the one the handlers build at cold start."""
    aws.config.put_domain(AliasDomain("example.test"))
    aws.config.put_alias(Alias("example.test", "sales", "crm.lead"))
    bootstrap.set_container(aws)
    yield aws
    bootstrap.set_container(None)


def test_inbound_handler_routes_the_sample_ses_event_and_a_retry_changes_nothing(deployed):
    event = sample("ses-inbound.json")
    mail = event["Records"][0]["ses"]["mail"]
    deployed.raw_store.put(deployed.settings.ses_raw_prefix + mail["messageId"],
                           (REPO / "tests/data/inbound/ses-inbound.eml").read_bytes())
    first = invoke("inbound", event)
    assert first["disposition"] == "CONTINUE"
    assert [r["outcome"] for r in first["results"]] == ["new-record"]
    again = invoke("inbound", event)  # SES delivers twice, or Lambda retries
    assert again["results"][0]["key"] == first["results"][0]["key"]
    assert len(deployed.messages.list()) == 1


def test_inbound_handler_records_a_missing_raw_object_as_failed_not_a_crash(deployed):
    result = invoke("inbound", sample("ses-inbound.json"))
    assert result["results"][0]["outcome"] == "failed"
    assert "not found" in result["results"][0]["reason"]


def test_outbound_handler_refuses_to_send_unsigned_mail_and_says_how_to_fix_it(deployed):
    # No DKIM key for example.test yet: refused with the fix, and not retried (a retry cannot help).
    result = invoke("outbound", sample("sqs-outbound.json"))
    assert result == {"batchItemFailures": []}
    [record] = deployed.messages.list(direction="out")
    assert record.outcome == "rejected"
    assert "mailgate dkim keygen example.test" in record.reason


def test_outbound_handler_sends_the_sample_request_signed_through_ses(deployed, dns_server):
    import boto3
    import dkim as dkimpy

    from mailgate import dkim, keyring
    from tests.fixtures.dns import publish_dkim_key

    key = dkim.generate_key("rsa", 2048)
    deployed.secrets.put(keyring.secret_id(deployed.settings, "example.test", "mailgate"), dkim.private_pem(key))
    lookup = publish_dkim_key(dns_server, "example.test", "mailgate", key)
    boto3.client("ses", endpoint_url=deployed.settings.endpoint_url,
                 region_name="us-east-1").verify_domain_identity(Domain="example.test")
    result = invoke("outbound", sample("sqs-outbound.json"))
    assert result == {"batchItemFailures": []}
    [record] = deployed.messages.list(direction="out")
    assert record.outcome == "sent", record.reason
    raw = deployed.raw_store.get(record.raw_key)
    assert raw.startswith(b"DKIM-Signature:")
    assert dkimpy.verify(raw, dnsfunc=lookup)  # with the key published in the local DNS server
    assert not dkimpy.verify(raw.replace(b"\r\n\r\n", b"\r\n\r\nX", 1), dnsfunc=lookup)


def test_feedback_handler_counts_the_sample_ses_bounce_and_ignores_its_replay(deployed):
    event = sample("sns-ses-bounce.json")
    first = invoke("feedback", event)
    assert first["processed"] == 1
    second = invoke("feedback", event)
    assert [r["outcome"] for r in second["results"]] == ["duplicate"]


def test_fetch_dispatcher_handler_queues_one_job_per_due_server_on_the_sample_schedule(deployed):
    deployed.config.put_incoming(IncomingServer(name="office-inbox", protocol="imap", host="127.0.0.1",
                                                port=free_port(), user="office"))
    assert invoke("fetch_dispatcher", sample("schedule-fetch.json")) == {"queued": 1}
    assert invoke("fetch_dispatcher", sample("schedule-fetch.json")) == {"queued": 0}  # not due again yet


def test_fetch_worker_handler_hands_the_sample_job_out_again_while_its_server_is_unreachable(deployed):
    event = sample("sqs-fetch.json")
    deployed.config.put_incoming(IncomingServer(name="office-inbox", protocol="imap", host="127.0.0.1",
                                                port=free_port(), user="office"))  # nothing listens there
    result = invoke("fetch_worker", event)
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    health = fetch.health(deployed, "office-inbox")
    assert health["consecutive_failures"] == 1 and "127.0.0.1" in health["last_error"]


def test_dns_check_handler_runs_over_every_alias_domain(deployed, dns_server, monkeypatch):
    from mailgate.adapters.dnspython import DnspythonResolver

    monkeypatch.setattr(deployed, "resolvers",
                        lambda: DnspythonResolver.for_nameserver(dns_server.nameserver, timeout=0.5))
    result = invoke("dns_check", sample("schedule-dnscheck.json"))
    assert [r["domain"] for r in result["results"]] == ["example.test"]


def test_context_gives_powertools_what_it_reads():
    ctx = LambdaContext(function_name="mailgate-inbound", timeout_ms=1000)
    assert 0 < ctx.get_remaining_time_in_millis() <= 1000
    assert ctx.invoked_function_arn.endswith(":function:mailgate-inbound")
