"""The HTTP API's handler over the in-memory fakes, with API Gateway's proxy events: every answer
is what docs/openapi.yaml says, and bad requests get a clear 4xx, never a crash."""

from __future__ import annotations

import json
import pathlib

import pytest

from mailgate import bootstrap
from mailgate.domain import AliasDomain, Thread
from mailgate.entrypoints import api as api_entry
from mailgate.services.outbound import recorded_ref
from mailgate_dev.fakes import in_memory
from mailgate_dev.local.api import ROUTES, proxy_event
from mailgate_dev.local.invoker import LambdaContext

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def openapi():
    from openapi_core import OpenAPI

    return OpenAPI.from_file_path(str(REPO / "docs" / "openapi.yaml"))


@pytest.fixture
def c():
    container = in_memory()
    container.config.put_domain(AliasDomain("example.test"))
    bootstrap.set_container(container)
    yield container
    bootstrap.set_container(None)


def call(openapi, method, path, body=None, headers=None, query=""):
    """The handler's answer to one request, checked against the OpenAPI document."""
    from openapi_core.testing import MockRequest, MockResponse

    data = json.dumps(body).encode() if body is not None else b""
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    response = api_entry.handler(proxy_event(method, path, query, hdrs, data), LambdaContext("mailgate-api"))
    status, answer = response["statusCode"], json.loads(response["body"])
    request = MockRequest("https://example.execute-api.us-east-1.amazonaws.com", method.lower(), "/api" + path,
                          args=dict(p.split("=", 1) for p in query.split("&") if p),
                          headers={"Authorization": "AWS4-HMAC-SHA256 x", "x-api-key": "k", **hdrs},
                          data=data or None, content_type="application/json")
    openapi.validate_response(request, MockResponse(response["body"].encode(), status_code=status,
                                                    content_type="application/json"))
    return status, answer


SEND = {"from": "Sales <sales@example.test>", "to": ["ann@client.test"], "subject": "Hi", "text": "Hello"}


def test_a_send_request_is_queued_with_the_idempotency_key_of_its_header(c, openapi):
    status, answer = call(openapi, "POST", "/v1/messages", SEND, {"Idempotency-Key": "order-1"})
    assert status == 202 and answer["message_key"] == "out:" + recorded_ref(c, "order-1")
    assert c.outbound_queue.sent == [dict(SEND, idempotency_key="order-1")]


@pytest.mark.parametrize("body,headers,code", [
    (dict(SEND, to=["no address"]), {"Idempotency-Key": "k"}, "bad-address"),
    (dict(SEND, subject="x\r\nBcc: all@x.test"), {"Idempotency-Key": "k"}, "header-injection"),
    (SEND, {}, "invalid-request"),
    (dict(SEND, idempotency_key="a"), {"Idempotency-Key": "b"}, "bad-request"),
    (["not", "an", "object"], {"Idempotency-Key": "k"}, "bad-request"),
])
def test_a_bad_send_request_is_refused_at_the_door_with_what_to_fix(c, openapi, body, headers, code):
    status, answer = call(openapi, "POST", "/v1/messages", body, headers)
    assert status == 400 and answer["error"] == code and answer["message"]
    assert c.outbound_queue.sent == []


def test_a_body_that_is_not_json_is_a_400(c, openapi):
    event = proxy_event("POST", "/v1/messages", "", {"Idempotency-Key": "k"}, b"{not json")
    response = api_entry.handler(event, LambdaContext("mailgate-api"))
    assert response["statusCode"] == 400 and json.loads(response["body"])["error"] == "bad-request"


def test_linking_a_thread_binds_it_once_and_refuses_a_second_record(c, openapi):
    c.threads.put_thread(Thread("t1", model="crm.lead", followers=["ann@client.test"]))
    c.threads.put_thread(Thread("t2", model="crm.lead", record_id="9"))
    status, thread = call(openapi, "POST", "/v1/threads/t1/link", {"model": "crm.lead", "record_id": 42})
    assert status == 200 and c.threads.find_thread_for_record("crm.lead", "42").thread_id == "t1"
    assert call(openapi, "POST", "/v1/threads/t1/link", {"model": "crm.lead", "record_id": "42"})[0] == 200
    assert call(openapi, "POST", "/v1/threads/t1/link", {"model": "crm.lead", "record_id": "43"})[0] == 409
    assert call(openapi, "POST", "/v1/threads/t2/link", {"model": "crm.lead", "record_id": "42"})[0] == 409
    assert call(openapi, "POST", "/v1/threads/nope/link", {"model": "crm.lead", "record_id": "1"})[0] == 404
    assert call(openapi, "POST", "/v1/threads/t1/link", {"model": "", "record_id": "1"})[0] == 400


def test_linking_a_thread_keeps_a_follower_inbound_mail_added_meanwhile(c, openapi, monkeypatch):
    # the link read the thread, then wrote it back whole: a follower added by a reply routed in
    # between (another invocation) was lost
    import copy

    c.threads.put_thread(Thread("t1", model="crm.lead", followers=["ann@client.test"]))
    stale = copy.deepcopy(c.threads.get_thread("t1"))
    c.threads.add_follower("t1", "bob@client.test")
    monkeypatch.setattr(c.threads, "get_thread", lambda thread_id: copy.deepcopy(stale))
    assert call(openapi, "POST", "/v1/threads/t1/link", {"model": "crm.lead", "record_id": 42})[0] == 200
    monkeypatch.undo()
    thread = c.threads.get_thread("t1")
    assert thread.record_id == "42" and thread.followers == ["ann@client.test", "bob@client.test"]


def test_a_suppression_is_read_and_lifted(c, openapi):
    from mailgate import suppression

    suppression.suppress(c.kv, "example.test", "dead@client.test", "550 5.1.1 no such user", source="bounce")
    status, got = call(openapi, "GET", "/v1/suppressions/Dead@client.test")
    assert status == 200 and got["suppressed"] and got["entries"][0]["reason"].startswith("550")
    status, lifted = call(openapi, "DELETE", "/v1/suppressions/dead@client.test", query="domain=example.test")
    assert status == 200 and lifted["lifted"] == ["example.test"]
    assert call(openapi, "GET", "/v1/suppressions/dead@client.test")[1]["suppressed"] is False
    assert call(openapi, "DELETE", "/v1/suppressions/dead@client.test")[0] == 404
    assert call(openapi, "GET", "/v1/suppressions/not-an-address")[0] == 400


def test_an_unknown_message_is_a_404_and_a_raw_url_is_short_lived(c, openapi):
    from mailgate.domain import MessageRecord

    assert call(openapi, "GET", "/v1/messages/in:mid:nothing")[0] == 404
    c.raw_store.put("raw/ses/abc", b"Subject: x\r\n\r\nx")
    c.messages.claim(MessageRecord(key="in:mid:abc", raw_key="raw/ses/abc", outcome="thread"))
    status, raw = call(openapi, "GET", "/v1/messages/in%3Amid%3Aabc/raw")
    assert status == 200 and raw["url"].startswith("memory://raw/raw/ses/abc")


def test_the_routes_are_the_templates_and_the_documents(openapi):
    """One list of routes: template.yaml's ApiFunction events, docs/openapi.yaml's paths, the local API."""
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((REPO / "template.yaml").read_text())
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"].values()
    declared = {(e["Properties"]["Path"], e["Properties"]["Method"].lower()) for e in events}
    import yaml

    document = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
    documented = {(p, m) for p, ops in document["paths"].items() for m in ops if m != "parameters"}
    assert declared == documented
    assert {p for p, _ in declared} == set(ROUTES)
