"""Delivery to the application on the local stack, as a user sets it up with the `mailgate` command:
mail sent by SMTP to an alias domain reaches the Odoo stand-in (or a webhook receiver that verifies
signatures) once, byte-identical to what SES stored, with the target down for a while and back;
and the HTTP API sends, links a thread and reads a record, every request and answer checked
against docs/openapi.yaml."""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import smtplib
import ssl
import time
import urllib.request

import boto3
import pytest

from mailgate_dev.cli.main import main as mailgate
from mailgate_dev.local.api import ApiClient
from mailgate_dev.local.stack import LocalStack, Ports, free_port
from mailgate_dev.odoo_standin import OdooStandIn
from mailgate_dev.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.integration
REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = LocalStack(state_dir=tmp_path_factory.mktemp("local"), fetch_every=3600, delivery_first_retry=1,
                   ports=Ports(aws=free_port(), smtp=free_port(), sink=free_port()))
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def cli(stack, monkeypatch):
    """`mailgate ...` against the local stack: (exit status, stdout)."""
    monkeypatch.setenv("MAILGATE_LOCAL_DIR", str(stack.state_dir))

    def run(*argv: str, stdin: str = "") -> tuple[int, str]:
        out = io.StringIO()
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        with contextlib.redirect_stdout(out):
            status = mailgate(list(argv))
        return status, out.getvalue()

    return run


def wait_for(predicate, timeout: float = 30.0, what: str = "it"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def cold_start(stack) -> None:
    """The functions start afresh, as ones started after a configuration change do (warm ones read
    the alias domains again within inbound_model.DOMAIN_CACHE_SECONDS)."""
    from mailgate import bootstrap

    bootstrap.set_container(None)


def send(stack, raw: bytes, to: str) -> None:
    with smtplib.SMTP("127.0.0.1", stack.ports.smtp, timeout=10) as smtp:
        smtp.sendmail("ann@client.test", [to], raw)


def stored_raw(stack, record) -> bytes:
    s3 = boto3.client("s3", endpoint_url=stack.endpoint, region_name="us-east-1")
    return s3.get_object(Bucket=stack.settings.bucket_name, Key=record.raw_key)["Body"].read()


def delivery_state(stack, ident: str) -> dict:
    from mailgate.services import delivery

    return delivery.get(stack.container(), ident) or {}


def record_of(stack, message_id: str):
    return next((r for r in stack.container().messages.list(limit=200) if r.message_id == message_id), None)


def test_mail_to_an_odoo_alias_domain_reaches_odoo_once_byte_identical_after_odoo_was_down(stack, cli):
    with OdooStandIn() as odoo:
        status, out = cli("target", "add-odoo", "crm", "--url", odoo.url, "--database", odoo.database, "--user",
                          odoo.login, "--api-key-stdin", "--allow-http", stdin=odoo.api_key + "\n")
        assert status == 0, out
        assert odoo.api_key not in out
        assert cli("target", "test", "crm")[0] == 0 and odoo.received == []
        assert cli("domain", "add", "odoo.test", "--deliver-to", "crm")[0] == 0
        assert cli("alias", "add", "sales@odoo.test", "--model", "crm.lead")[0] == 0
        cold_start(stack)
        odoo.available = False  # Odoo is down (behind its proxy: 503)
        raw = (b"From: Ann <ann@client.test>\r\nTo: sales@odoo.test\r\nSubject: Chairs\r\n"
               b"Message-ID: <chairs-1@client.test>\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Content-Transfer-Encoding: 8bit\r\n\r\nWe need 40 chairs \xe2\x80\x94 soon.\r\n")
        send(stack, raw, "sales@odoo.test")
        record = wait_for(lambda: record_of(stack, "chairs-1@client.test"), what="the record")
        ident = f"{record.key}#crm"
        wait_for(lambda: len(delivery_state(stack, ident).get("attempts", [])) >= 2, what="two failed attempts")
        assert odoo.received == []
        odoo.available = True
        wait_for(lambda: delivery_state(stack, ident).get("status") == "delivered", what="the delivery")
        time.sleep(2)  # a doubled delivery would show up meanwhile
        assert odoo.processed() == [stored_raw(stack, record)] == [raw]
        assert len(odoo.received) == 1 and odoo.received[0].api == "xmlrpc"
        status, out = cli("deliveries", "show", ident)
        assert status == 0 and "delivered" in out and "503" in out


def test_mail_to_a_webhook_alias_domain_reaches_a_verifying_receiver_once_after_it_was_down(stack, cli):
    with WebhookReceiver() as receiver:
        status, out = cli("target", "add-webhook", "hooks", "--url", receiver.url, "--allow-http", "--json")
        assert status == 0
        receiver.secrets = [json.loads(out)["signing_secret"]]
        assert json.loads(cli("target", "list", "--json")[1])[-1].get("signing_secret") is None
        assert cli("domain", "add", "hooks.test", "--deliver-to", "hooks")[0] == 0
        assert cli("alias", "add", "support@hooks.test", "--model", "helpdesk.ticket")[0] == 0
        cold_start(stack)
        receiver.available = False
        raw = (b"From: Bob <bob@client.test>\r\nTo: support@hooks.test\r\nSubject: Broken printer\r\n"
               b"Message-ID: <printer-1@client.test>\r\n\r\nIt prints blank pages.\r\n")
        send(stack, raw, "support@hooks.test")
        record = wait_for(lambda: record_of(stack, "printer-1@client.test"), what="the record")
        ident = f"{record.key}#hooks"
        wait_for(lambda: len(delivery_state(stack, ident).get("attempts", [])) >= 2, what="two failed attempts")
        receiver.available = True
        wait_for(lambda: delivery_state(stack, ident).get("status") == "delivered", what="the delivery")
        time.sleep(2)
        assert len(receiver.received) == 1 and receiver.rejected == 0
        event = receiver.received[0]
        assert event["type"] == "mailgate.record_to_create"
        assert event["data"]["model"] == "helpdesk.ticket" and event["data"]["message"]["subject"] == "Broken printer"
        ca = ssl.create_default_context(cafile=str(stack.tls.ca_file))
        with urllib.request.urlopen(event["data"]["raw_url"], context=ca, timeout=10) as got:
            assert got.read() == raw == stored_raw(stack, record)


@pytest.fixture(scope="module")
def openapi():
    from openapi_core import OpenAPI

    return OpenAPI.from_file_path(str(REPO / "docs" / "openapi.yaml"))


def checked(openapi, client: ApiClient, method: str, path: str, body=None, headers=None) -> tuple[int, dict]:
    """Call the API, and check the request and the answer against docs/openapi.yaml."""
    from openapi_core.testing import MockRequest, MockResponse

    status, answer = client.call(method, path, body, headers)
    path_only, _, query = path.partition("?")
    request = MockRequest("https://example.execute-api.us-east-1.amazonaws.com", method.lower(), "/api" + path_only,
                          args=dict(p.split("=", 1) for p in query.split("&") if p),
                          headers={"Authorization": "AWS4-HMAC-SHA256 ...", "x-api-key": "k", **(headers or {})},
                          data=json.dumps(body).encode() if body is not None else None,
                          content_type="application/json")
    openapi.validate_request(request)
    openapi.validate_response(request, MockResponse(json.dumps(answer).encode(), status_code=status,
                                                    content_type="application/json"))
    return status, answer


def test_the_http_api_sends_links_a_thread_and_reads_a_record(stack, cli, openapi):
    status, out = cli("api-key", "add", "erp", "--json")
    assert status == 0
    client = ApiClient(stack.api.url, json.loads(out)["value"])
    # refused at the door, as API Gateway refuses: no signature, no key
    assert client.call("GET", "/v1/messages/x", sign=False)[0] == 403
    assert ApiClient(stack.api.url, "not-a-key").call("GET", "/v1/messages/x")[0] == 403
    request = {"from": "Sales <sales@example.test>", "to": ["ann@client.test"], "subject": "Your quote",
               "text": "Here it is."}
    status, sent = checked(openapi, client, "POST", "/v1/messages", request, {"Idempotency-Key": "quote-77"})
    assert status == 202 and sent["status"] == "queued"
    key = sent["message_key"]
    wait_for(lambda: (checked(openapi, client, "GET", f"/v1/messages/{key}")[1] or {}).get("outcome") == "sent",
             what="the send")
    assert any(b"Subject: Your quote" in m.read_bytes() for m in (stack.state_dir / "outbox").glob("*.eml"))
    status, again = checked(openapi, client, "POST", "/v1/messages", request, {"Idempotency-Key": "quote-77"})
    assert (status, again["duplicate"], again["message_key"]) == (200, True, key)
    status, bad = checked(openapi, client, "POST", "/v1/messages", dict(request, to=["not an address"]),
                          {"Idempotency-Key": "quote-78"})
    assert status == 400 and bad["error"] == "bad-address"
    # a Record To Create: the application made record 42 and links the thread to it
    send(stack, b"From: Cy <cy@client.test>\r\nTo: sales@example.test\r\nSubject: Desks\r\n"
                b"Message-ID: <desks-1@client.test>\r\n\r\n12 desks.\r\n", "sales@example.test")
    record = wait_for(lambda: record_of(stack, "desks-1@client.test"), what="the record")
    status, thread = checked(openapi, client, "POST", f"/v1/threads/{record.thread_id}/link",
                             {"model": "crm.lead", "record_id": 42})
    assert status == 200 and (thread["model"], thread["record_id"]) == ("crm.lead", "42")
    assert stack.container().threads.find_thread_for_record("crm.lead", "42").thread_id == record.thread_id
    status, read = checked(openapi, client, "GET", f"/v1/messages/{record.key}")
    assert status == 200 and read["outcome"] == "new-record" and read["thread_id"] == record.thread_id
    status, raw = checked(openapi, client, "GET", f"/v1/messages/{record.key}/raw")
    ca = ssl.create_default_context(cafile=str(stack.tls.ca_file))
    with urllib.request.urlopen(raw["url"], context=ca, timeout=10) as got:
        assert b"12 desks." in got.read()
    assert checked(openapi, client, "GET", "/v1/messages/in:mid:nothing")[0] == 404
