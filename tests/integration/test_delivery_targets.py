"""The HTTP adapter of delivery targets against the Odoo stand-in and a verifying webhook receiver."""

from __future__ import annotations

import base64
import secrets
import socket

import pytest

from mailgate.adapters.targets import HttpTargets
from mailgate.domain import DeliveryTarget
from mailgate.ports import Delivery

pytestmark = pytest.mark.integration

RAW = (b"From: Ann <ann@client.test>\r\nTo: sales@example.test\r\nSubject: Quote\r\n"
       b"Message-ID: <q1@client.test>\r\n\r\nWe need 40 chairs.\r\n")


def odoo_target(odoo, api="xmlrpc", **kw) -> DeliveryTarget:
    return DeliveryTarget(name="crm", kind="odoo", url=odoo.url, database=odoo.database, user=odoo.login,
                          api=api, timeout_seconds=5, **kw)


def delivery(raw=RAW) -> Delivery:
    return Delivery(message_key="in:mid:x", delivery_id="msg_1", raw=raw)


@pytest.mark.parametrize("api", ["xmlrpc", "json2"])
def test_odoo_gets_the_raw_message_byte_identical_and_drops_a_repeat(odoo, api):
    targets = HttpTargets()
    first = targets.deliver(odoo_target(odoo, api), [odoo.api_key], delivery())
    again = targets.deliver(odoo_target(odoo, api), [odoo.api_key], delivery())
    assert first.outcome == "delivered" and again.outcome == "duplicate"
    assert odoo.processed() == [RAW]
    assert [r.api for r in odoo.received] == [api, api]


def test_xmlrpc_authenticates_once_then_makes_one_call_per_message(odoo):
    targets = HttpTargets()
    answers = [targets.deliver(odoo_target(odoo), [odoo.api_key], delivery(RAW.replace(b"q1", f"q{i}".encode())))
               for i in range(3)]
    assert [a.calls for a in answers] == [2, 1, 1]
    assert [c for _, c in odoo.calls] == ["common.authenticate"] + ["object.execute_kw"] * 3


def test_a_kept_user_id_that_odoo_refuses_is_renewed_once(odoo):
    answer = HttpTargets().deliver(odoo_target(odoo, uid=99), [odoo.api_key], delivery())
    assert answer.outcome == "delivered" and answer.calls == 3
    assert [c for _, c in odoo.calls] == ["object.execute_kw", "common.authenticate", "object.execute_kw"]


def test_json2_cannot_carry_8bit_bytes_that_are_not_utf8_and_says_so(odoo):
    raw = RAW.replace(b"40 chairs", b"40 chaises \xe0 bascule")  # Latin-1 in an 8-bit body
    answer = HttpTargets().deliver(odoo_target(odoo, "json2"), [odoo.api_key], delivery(raw))
    assert answer.outcome == "failed" and "XML-RPC" in answer.detail and odoo.received == []
    over_xmlrpc = HttpTargets().deliver(odoo_target(odoo), [odoo.api_key], delivery(raw))
    assert over_xmlrpc.outcome == "delivered" and odoo.processed() == [raw]


def test_a_wrong_api_key_is_a_permanent_failure_that_says_what_to_check(odoo):
    xml = HttpTargets().deliver(odoo_target(odoo), ["wrong"], delivery())
    assert xml.outcome == "failed" and "refused the login" in xml.detail
    js = HttpTargets().deliver(odoo_target(odoo, "json2"), ["wrong"], delivery())
    assert (js.outcome, js.status) == ("failed", 401) and "Invalid apikey" in js.detail


def test_an_xmlrpc_fault_is_permanent_with_its_fault_string(odoo):
    target = DeliveryTarget(name="crm", kind="odoo", url=odoo.url, database="nope", user=odoo.login, uid=odoo.uid)
    answer = HttpTargets().deliver(target, [odoo.api_key], delivery())
    assert answer.outcome == "failed" and answer.detail.startswith("XML-RPC fault 1:")
    assert 'database "nope" does not exist' in answer.detail


def test_odoo_unavailable_or_unreachable_is_retried(odoo):
    odoo.available = False
    for api in ("xmlrpc", "json2"):
        answer = HttpTargets().deliver(odoo_target(odoo, api), [odoo.api_key], delivery())
        assert (answer.outcome, answer.status) == ("retry", 503), api
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    target = DeliveryTarget(name="crm", kind="odoo", url=f"http://127.0.0.1:{port}", database="odoo", user="u",
                            timeout_seconds=2)
    assert HttpTargets().deliver(target, ["k"], delivery()).outcome == "retry"


@pytest.mark.parametrize("api", ["xmlrpc", "json2"])
def test_test_connection_reaches_authenticates_and_finds_message_process_without_delivering(odoo, api):
    steps = HttpTargets().test_connection(odoo_target(odoo, api), [odoo.api_key])
    assert [(s.name, s.ok) for s in steps] == [("reach", True), ("authenticate", True), ("message_process", True)]
    assert odoo.received == []
    bad = HttpTargets().test_connection(odoo_target(odoo, api), ["wrong"])
    assert [(s.name, s.ok) for s in bad] == [("reach", True), ("authenticate", False)]


def webhook_target(receiver, **kw) -> DeliveryTarget:
    return DeliveryTarget(name="app", kind="webhook", url=receiver.url, timeout_seconds=5, **kw)


def payload_delivery(wid="msg_abc") -> Delivery:
    return Delivery(message_key="in:mid:x", delivery_id=wid,
                    payload={"type": "mailgate.record_to_create", "timestamp": "2026-12-06T10:00:00Z",
                             "data": {"message_key": "in:mid:x", "subject": "Caf\u00e9 \U0001F600"}})


def test_a_webhook_is_signed_per_standard_webhooks_and_verified_by_the_receiver(receiver, webhook_secret):
    answer = HttpTargets().deliver(webhook_target(receiver), [webhook_secret], payload_delivery())
    assert answer.outcome == "delivered" and receiver.rejected == 0
    assert receiver.received[0]["data"]["subject"] == "Caf\u00e9 \U0001F600"
    assert receiver.headers[0]["webhook-id"] == "msg_abc"


def test_during_a_rotation_both_secrets_sign_and_a_receiver_with_either_verifies(receiver, webhook_secret):
    new = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    HttpTargets().deliver(webhook_target(receiver), [new, webhook_secret], payload_delivery("msg_1"))
    receiver.secrets = [new]
    HttpTargets().deliver(webhook_target(receiver), [new, webhook_secret], payload_delivery("msg_2"))
    assert len(receiver.received) == 2 and receiver.rejected == 0
    HttpTargets().deliver(webhook_target(receiver), [webhook_secret], payload_delivery("msg_3"))
    assert receiver.rejected == 1


def test_the_same_webhook_id_twice_is_taken_once(receiver, webhook_secret):
    for _ in range(2):
        assert HttpTargets().deliver(webhook_target(receiver), [webhook_secret], payload_delivery()).outcome == \
            "delivered"
    assert len(receiver.received) == 1 and receiver.duplicates == 1


def test_webhook_answers_are_classified(receiver, webhook_secret):
    receiver.available = False
    assert HttpTargets().deliver(webhook_target(receiver), [webhook_secret], payload_delivery()).outcome == "retry"
    receiver.available = True
    wrong = "whsec_" + base64.b64encode(b"x" * 24).decode()
    refused = HttpTargets().deliver(webhook_target(receiver), [wrong], payload_delivery())
    assert (refused.outcome, refused.status) == ("failed", 401) and "401" in refused.detail
