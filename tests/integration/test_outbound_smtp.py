"""Outbound through a real SMTP server (aiosmtpd, STARTTLS or implicit TLS, AUTH) on 127.0.0.1."""

import email
import email.policy

import dkim
import pytest

from mailgate import tokens
from mailgate import dkim as D
from mailgate.adapters import smtp as smtp_adapter
from mailgate.adapters.senders import Transports
from mailgate.adapters.smtp import Envelope, SmtpSender
from mailgate.checks import all_ok
from mailgate.domain import AliasDomain, OutgoingServer
from mailgate.entrypoints import outbound as outbound_handler
from mailgate.services import outbound
from mailgate_dev import fakes
from tests.fixtures.dns import publish_dkim_key

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rsa_key():
    return D.generate_key("rsa", 2048)


@pytest.fixture
def lookup(rsa_key, dns_server):
    """dkimpy's key lookup, over the wire to the local DNS server that publishes the public key."""
    return publish_dkim_key(dns_server, "example.test", "mg", rsa_key)


@pytest.fixture(autouse=True)
def every_delivered_message_is_dkim_verified(request, lookup, dns_server):
    """After each test: every message a test server accepted verifies with the key published in
    DNS, and a tampered copy fails."""
    sinks = [request.getfixturevalue(name) for name in ("smtp_server", "smtp_server_tls")
             if name in request.fixturenames]
    yield
    delivered = [m for sink in sinks for m in sink.messages]
    for m in delivered:
        assert dkim.verify(m.data, dnsfunc=lookup), m.data[:300]
        tampered = m.data.replace(b"\r\n\r\n", b"\r\n\r\nX", 1)
        assert not dkim.verify(tampered, dnsfunc=lookup)
    if delivered:  # the key really came from the DNS server
        assert dns_server.count("mg._domainkey.example.test", "TXT") >= 1


def signed_raw(rsa_key, i=0) -> bytes:
    from mailgate import compose as C

    r = C.parse_request(req(key=f"raw{i}", to=[f"r{i}@example.org"]))
    m = C.compose(r, author=r.author, message_id=f"<raw{i}@example.test>", ref=f"raw{i}")
    return D.sign_message(m.raw, [D.SigningKey("example.test", "mg", rsa_key)])


def relay_for(sink, *, security="starttls", user="mailgate", from_filter="example.test"):
    return OutgoingServer(name="relay", host="127.0.0.1", port=sink.port, user=user, security=security,
                          from_filter=from_filter, secret_id="mailgate/server/relay")


@pytest.fixture
def world(rsa_key, smtp_server, smtp_client_context):
    c = fakes.in_memory(transports=Transports(ssl_context=smtp_client_context))
    c.config.put_domain(AliasDomain("example.test", dkim_selector="mg"))
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(rsa_key))
    c.secrets.put("mailgate/server/relay", smtp_server.password)
    c.config.put_outgoing(relay_for(smtp_server))
    return c


def req(key="invoice-7", to=("bob@example.org", "carol@example.org"), **over):
    base = {"idempotency_key": key, "from": "Billing <billing@example.test>", "to": list(to),
            "subject": "Invoice 7", "text": "Please find invoice 7.", "html": "<p>Invoice <b>7</b></p>"}
    base.update(over)
    return base


def statuses(out):
    return {r["address"]: (r["status"], r["code"]) for r in out["recipients"]}


def test_message_arrives_over_starttls_with_auth_dkim_signed_with_a_verp_sender_per_recipient(
        world, smtp_server, lookup):
    out = outbound.send(world, req())
    assert out["status"] == "sent" and out["transport"] == "relay"
    assert [m.rcpt_tos for m in smtp_server.messages] == [["bob@example.org"], ["carol@example.org"]]
    record = world.messages.get("out:" + out["ref"])
    for m in smtp_server.messages:
        assert m.tls and m.login == "mailgate"
        ref, index = tokens.parse_verp_address(world.token_key, m.mail_from)
        assert ref == out["ref"] and record.recipients[index] == m.rcpt_tos[0]
        assert dkim.verify(m.data, dnsfunc=lookup)
        assert not dkim.verify(m.data.replace(b"invoice 7", b"invoice 8"), dnsfunc=lookup)
    got = email.message_from_bytes(smtp_server.messages[0].data, policy=email.policy.default)
    assert got["Subject"] == "Invoice 7" and got["X-Mailgate-Id"] == out["ref"]


def test_implicit_tls_server_on_a_465_style_port_delivers(world, smtp_server_tls, lookup):
    world.config.put_outgoing(relay_for(smtp_server_tls, security="ssl"))
    out = outbound.send(world, req(to=["bob@example.org"]))
    assert out["status"] == "sent"
    (m,) = smtp_server_tls.messages
    assert m.tls and dkim.verify(m.data, dnsfunc=lookup)


def test_wrong_password_fails_the_send_with_the_fix_and_delivers_nothing(world, smtp_server):
    world.secrets.put("mailgate/server/relay", "wrong")
    out = outbound.send(world, req())
    assert out["status"] == "failed"
    for r in out["recipients"]:
        assert r["error"] == "auth-failed" and "mailgate server add-smtp relay" in r["detail"]
    assert smtp_server.messages == []


def test_untrusted_certificate_is_refused_by_default(world, smtp_server):
    world.transports = Transports()  # the system's CAs: they do not know the test CA
    out = outbound.send(world, req())
    assert out["status"] == "failed"
    assert {r["error"] for r in out["recipients"]} == {"tls-untrusted"}
    assert "not trusted" in out["recipients"][0]["detail"]
    assert smtp_server.messages == []


def test_certificate_signed_by_a_ca_the_client_does_not_trust_is_refused(world, smtp_server,
                                                                         smtp_untrusted_context):
    world.transports = Transports(ssl_context=smtp_untrusted_context)  # trusts another local CA only
    out = outbound.send(world, req())
    assert out["status"] == "failed"
    assert {r["error"] for r in out["recipients"]} == {"tls-untrusted"}
    assert "not trusted" in out["recipients"][0]["detail"]
    assert smtp_server.messages == []


def test_550_recipient_fails_permanently_while_the_other_is_delivered(world, smtp_server):
    smtp_server.handler.reply_to_rcpt("carol@example.org", "550 5.1.1 <carol@example.org>: no such user")
    out = outbound.send(world, req())
    assert out["status"] == "partial"
    assert statuses(out) == {"bob@example.org": ("sent", 250), "carol@example.org": ("failed", 550)}
    assert "no such user" in out["recipients"][1]["detail"]
    assert outbound.send(world, req())["status"] == "duplicate"
    assert [m.rcpt_tos for m in smtp_server.messages] == [["bob@example.org"]]


def test_451_recipient_is_deferred_then_delivered_alone_on_retry(world, smtp_server):
    smtp_server.handler.reply_to_rcpt("bob@example.org", "451 4.7.1 greylisted, try again later")
    first = outbound.send(world, req())
    assert first["status"] == "retrying"
    assert statuses(first) == {"bob@example.org": ("deferred", 451), "carol@example.org": ("sent", 250)}
    smtp_server.handler.rcpt_replies.clear()
    second = outbound.send(world, req())
    assert second["status"] == "sent"
    assert sorted(m.rcpt_tos[0] for m in smtp_server.messages) == ["bob@example.org", "carol@example.org"]


def test_421_defers_this_and_the_remaining_recipients_for_a_later_try(world, smtp_server):
    smtp_server.handler.reply_to_rcpt("bob@example.org", "421 4.3.2 service shutting down")
    first = outbound.send(world, req(to=("bob@example.org", "carol@example.org", "dave@example.org")))
    assert first["status"] == "retrying"
    assert {a: s for a, (s, _) in statuses(first).items()} == {
        "bob@example.org": "deferred", "carol@example.org": "deferred", "dave@example.org": "deferred"}
    assert smtp_server.messages == []
    smtp_server.handler.rcpt_replies.clear()
    second = outbound.send(world, req(to=("bob@example.org", "carol@example.org", "dave@example.org")))
    assert second["status"] == "sent" and len(smtp_server.messages) == 3


def test_connection_dropped_mid_batch_is_reopened_and_nothing_is_delivered_twice(
        smtp_server, smtp_client_context, rsa_key):
    server = relay_for(smtp_server)
    smtp_server.handler.drop_connection_after(2)
    envelopes = [Envelope("bounce@example.test", f"r{i}@example.org") for i in range(5)]
    with SmtpSender(server, smtp_server.password, ssl_context=smtp_client_context, timeout=5) as sender:
        results = sender.send(envelopes, signed_raw(rsa_key))
        assert sender.connections == 2
    assert [r.status for r in results] == ["sent"] * 5
    assert smtp_server.handler.drops == 1
    assert [m.rcpt_tos[0] for m in smtp_server.messages] == [f"r{i}@example.org" for i in range(5)]


def test_server_gone_defers_the_whole_batch_after_one_connection_attempt(smtp_server, smtp_client_context, rsa_key):
    server = relay_for(smtp_server)
    sender = SmtpSender(server, smtp_server.password, ssl_context=smtp_client_context, timeout=5)
    first = sender.send([Envelope("b@example.test", "r0@example.org")], signed_raw(rsa_key))
    sender.close()
    smtp_server.stop()
    rest = sender.send([Envelope("b@example.test", f"r{i}@example.org") for i in (1, 2, 3)], signed_raw(rsa_key))
    assert first[0].status == "sent"
    assert [(r.status, r.error) for r in rest] == [("deferred", "connect-failed")] * 3
    assert "cannot connect to 127.0.0.1" in rest[0].detail


def test_batch_of_sqs_messages_shares_one_connection(world, smtp_server):
    import json

    event = {"Records": [{"messageId": f"m{i}", "body": json.dumps(req(key=f"k{i}", to=["bob@example.org"]))}
                         for i in range(3)]}
    senders = outbound.Senders(world)
    assert outbound_handler.handle(world, event, senders=senders) == {"batchItemFailures": []}
    senders.close()
    assert senders.open["relay"].connections == 1
    assert len(smtp_server.messages) == 3


def test_plaintext_server_is_refused_unless_explicitly_allowed(smtp_server):
    server = OutgoingServer(name="clear", host="127.0.0.1", port=smtp_server.port, security="none")
    with pytest.raises(Exception) as e:
        SmtpSender(server, None)
    assert "in clear" in str(e.value)


# ------------------------------------------------------------------ Test Connection


def test_test_connection_walks_every_step_and_sends_nothing(world, smtp_server):
    steps = outbound.test_connection(world, world.config.get_outgoing("relay"))
    assert [s.name for s in steps] == ["connect", "tls", "auth", "mail-from", "rcpt-to", "data", "abort"]
    assert all_ok(steps)
    assert "certificate verified" in steps[1].detail
    assert "notifications@example.test" in steps[3].detail  # an address the from_filter allows
    assert smtp_server.messages == []


def test_test_connection_on_implicit_tls(world, smtp_server_tls):
    steps = outbound.test_connection(world, relay_for(smtp_server_tls, security="ssl"))
    assert all_ok(steps) and "implicit TLS" in steps[1].detail


def test_test_connection_names_a_wrong_password(world, smtp_server):
    world.secrets.put("mailgate/server/relay", "nope")
    steps = outbound.test_connection(world, world.config.get_outgoing("relay"))
    assert [(s.name, s.ok) for s in steps] == [("connect", True), ("tls", True), ("auth", False)]
    assert "refused the password" in steps[-1].detail


def test_test_connection_names_an_untrusted_certificate(world, smtp_server):
    world.transports = Transports()  # the system's CAs
    steps = outbound.test_connection(world, world.config.get_outgoing("relay"))
    assert (steps[-1].name, steps[-1].ok) == ("tls", False)
    assert "not trusted" in steps[-1].detail


def test_test_connection_names_a_refused_recipient(world, smtp_server):
    smtp_server.handler.reply_to_rcpt("bounce@example.test", "550 5.7.1 relaying denied")
    steps = outbound.test_connection(world, world.config.get_outgoing("relay"))
    assert (steps[-1].name, steps[-1].ok) == ("rcpt-to", False)
    assert "relaying denied" in steps[-1].detail


def test_test_connection_to_a_closed_port_says_it_cannot_connect(world):
    from tests.fixtures._ports import free_port

    server = OutgoingServer(name="relay", host="127.0.0.1", port=free_port(), user="mailgate",
                            secret_id="mailgate/server/relay")
    steps = outbound.test_connection(world, server)
    assert len(steps) == 1 and not steps[0].ok and "cannot connect" in steps[0].detail


def test_missing_password_is_reported_before_connecting(world):
    world.secrets.delete("mailgate/server/relay")
    steps = outbound.test_connection(world, world.config.get_outgoing("relay"))
    assert [(s.name, s.ok) for s in steps] == [("credentials", False)]


def test_module_level_test_connection_accepts_an_explicit_context(smtp_server, smtp_client_context,
                                                                  smtp_untrusted_context):
    steps = smtp_adapter.test_connection(relay_for(smtp_server), smtp_server.password,
                                         mail_from="x@example.test", rcpt_to="y@example.org",
                                         ssl_context=smtp_client_context)
    assert all_ok(steps)
    bad = smtp_adapter.test_connection(relay_for(smtp_server), smtp_server.password, mail_from="x@example.test",
                                       rcpt_to="y@example.org", ssl_context=smtp_untrusted_context)
    assert not all_ok(bad)
    assert ("tls", False) == (bad[-1].name, bad[-1].ok) and "not trusted" in bad[-1].detail


def test_messages_prepared_while_the_server_works_arrive_signed_and_in_order(
        smtp_server, smtp_client_context, rsa_key, lookup):
    from mailgate import compose as C
    from mailgate.adapters.smtp import Ahead

    keys = [D.SigningKey("example.test", "mg", rsa_key)]

    def prepare(i):
        r = C.parse_request(req(key=f"p{i}", to=[f"r{i}@example.org"]))
        m = C.compose(r, author=r.author, message_id=f"<p{i}@example.test>", ref=f"p{i}")
        yield
        raw = yield from D.sign_message_steps(m.raw, keys)
        return Envelope("bounce@example.test", f"r{i}@example.org"), raw

    with SmtpSender(relay_for(smtp_server), smtp_server.password, ssl_context=smtp_client_context) as sender:
        current = Ahead(prepare(0)).result()
        for i in range(5):
            nxt = Ahead(prepare(i + 1)) if i < 4 else None
            (res,) = sender.send([current[0]], current[1], idle=nxt.step if nxt else None)
            assert res.status == "sent"
            current = nxt.result() if nxt else None
    assert [m.rcpt_tos for m in smtp_server.messages] == [[f"r{i}@example.org"] for i in range(5)]
    assert all(dkim.verify(m.data, dnsfunc=lookup) for m in smtp_server.messages)


def test_a_failing_preparation_surfaces_in_result_not_inside_the_transaction():
    from mailgate.adapters.smtp import Ahead

    def broken():
        yield
        raise ValueError("bad template")

    ahead = Ahead(broken())
    ahead.step()
    ahead.step()  # the error happens here, during someone else's SMTP wait: kept, not raised
    with pytest.raises(ValueError, match="bad template"):
        ahead.result()


def test_a_server_that_never_answers_times_out_and_is_deferred():
    import socket

    from tests.fixtures._ports import free_port

    port = free_port()
    with socket.socket() as silent:  # accepts connections (backlog) but never says a word
        silent.bind(("127.0.0.1", port))
        silent.listen(8)
        server = OutgoingServer(name="mute", host="127.0.0.1", port=port, user="u", secret_id="x")
        sender = SmtpSender(server, "pw", timeout=0.5)
        (res,) = sender.send([Envelope("b@example.test", "r@example.org")], b"x")
        assert (res.status, res.error) == ("deferred", "connect-failed")
        assert "timed out" in res.detail
        steps = smtp_adapter.test_connection(server, "pw", mail_from="a@example.test", rcpt_to="b@example.org",
                                             timeout=0.5)
        assert [(s.name, s.ok) for s in steps] == [("connect", False)]
        assert "timed out" in steps[0].detail


def test_connection_lost_before_the_final_reply_is_unknown_and_never_sent_again(world, smtp_server):
    smtp_server.handler.drop_before_data_reply()
    first = outbound.send(world, req())
    assert statuses(first)["bob@example.org"] == ("unknown", None)
    assert "not re-sent" in first["recipients"][0]["detail"]
    assert statuses(first)["carol@example.org"] == ("sent", 250)  # a new connection for the next one
    assert first["status"] == "partial"
    assert outbound.send(world, req())["status"] == "duplicate"
    assert [m.rcpt_tos for m in smtp_server.messages] == [["bob@example.org"], ["carol@example.org"]]
