"""The fetch path on the emulator's DynamoDB and S3 (real kv: leases, cursors, schedule) with Dovecot."""

from __future__ import annotations

import json
import time

import pytest

from mailgate.adapters.mailboxes import NetMailboxes
from mailgate.domain import AliasDomain, Alias, IncomingServer
from mailgate.ports import MailItem
from mailgate.services import fetch

from tests.integration.test_fetch_dovecot import make_raw, flags_by_message_id

pytestmark = pytest.mark.integration


def add_server(c, dovecot, user, *, name="shop", protocol="imap", ack="seen", **kw):
    port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port
    server = IncomingServer(name=name, protocol=protocol, host="127.0.0.1", port=port, user=user,
                            security="ssl", ack=ack, secret_id=c.settings.server_secret_prefix + name, **kw)
    c.config.put_incoming(server)
    c.secrets.put(c.settings.server_secret_prefix + name, "secret")
    c.mailboxes = NetMailboxes(cafile=str(dovecot.ca_pem))
    return server


def run(c, name="shop", max_messages=10_000, **kw):
    return fetch.fetch_mailbox(c, name, deadline=time.monotonic() + 120, max_messages=max_messages, **kw)


@pytest.mark.parametrize("protocol", ["imap", "pop"])
def test_fetch_on_dynamodb_takes_each_message_once_over_runs(aws, dovecot, mailbox_user, protocol):
    c = aws
    c.config.put_domain(AliasDomain(name="example.net"))
    c.config.put_alias(Alias(domain="example.net", name="shop", model="lead"))
    add_server(c, dovecot, mailbox_user, protocol=protocol, ack="leave")
    for n in range(5):
        dovecot.deliver(mailbox_user, make_raw(n))
    res = run(c)
    assert (res.status, res.fetched, res.ingested) == ("ok", 5, 5), res
    for n in range(5, 8):
        dovecot.deliver(mailbox_user, make_raw(n))
    res = run(c)
    assert (res.status, res.fetched, res.ingested) == ("ok", 3, 3), res
    res = run(c)
    assert (res.status, res.fetched) == ("ok", 0), res
    assert c.kv.get_item("lease#shop") is None
    assert fetch.health(c, "shop")["consecutive_failures"] == 0
    routed = [r for r in c.messages.list(limit=100) if r.direction == "in"]
    assert len(routed) == 8 and {r.source for r in routed} == {f"{protocol}:shop"}


def test_dispatcher_on_dynamodb_respects_interval(aws, dovecot, mailbox_user):
    c = aws
    add_server(c, dovecot, mailbox_user, interval_minutes=60)
    t = 1_800_000_000.0
    assert fetch.dispatch(c, now=t) == 1
    assert fetch.dispatch(c, now=t + 60) == 0
    assert fetch.dispatch(c, now=t + 3600) == 1
    assert fetch.dispatch(c, now=t + 3660) == 0
    assert fetch.dispatch(c, now=t + 7200) == 1


class BigPop:
    """A POP3 mailbox as the worker sees it, with RFC 1939's longest UIDLs (70 characters)."""

    protocol = "pop"

    def __init__(self, count: int) -> None:
        self.items = [MailItem(n, f"{n:070d}", 300) for n in range(1, count + 1)]
        self.exists = count

    def add(self, n: int) -> None:
        self.items.append(MailItem(len(self.items) + 1, f"new-{n:066d}", 300))
        self.exists = len(self.items)

    def open(self):
        pass

    def set_timeout(self, seconds):
        pass

    def list_all(self):
        return list(self.items)

    def fetch(self, items):
        for i in items:
            yield i, make_raw(i.ref, tag=i.ident[-12:])

    def ack(self, items, mode, move_to=""):
        pass

    def commit(self):
        pass

    def close(self):
        pass


def test_pop_mailbox_that_keeps_thousands_of_messages_is_still_fetched_on_dynamodb(aws):
    """A POP3 mailbox whose mail stays on the server (--ack seen/leave) is remembered by UIDL; with
    long UIDLs, some thousand messages outgrow one DynamoDB item (400 KB)."""
    c = aws
    c.config.put_incoming(IncomingServer(name="shop", protocol="pop", host="127.0.0.1", port=995, user="u",
                                         ack="seen"))
    box = BigPop(5400)
    taken = []

    def ingest(c_, raw_key, **kw):
        taken.append(raw_key)

    # what earlier runs left: every message already taken (the cursor just fits in one item)
    assert c.kv.put_item("cursor#shop", {"protocol": "pop", "seen": sorted(i.ident for i in box.items),
                                         "version": 1}, if_version=0)
    for n in range(150):
        box.add(n)
    res = run(c, mailbox_factory=lambda s, p: box, ingest=ingest)
    assert (res.status, res.fetched, res.ingested, res.error) == ("ok", 150, 150, ""), res
    again = run(c, mailbox_factory=lambda s, p: box, ingest=ingest)
    assert (again.status, again.fetched) == ("ok", 0), again
    box.add(150)
    last = run(c, mailbox_factory=lambda s, p: box, ingest=ingest)
    assert (last.status, last.fetched) == ("ok", 1), last
    assert len(taken) == 151


def test_backlog_is_drained_by_continuation_messages_on_the_fetch_queue(aws, dovecot, mailbox_user):
    import boto3

    c = aws
    add_server(c, dovecot, mailbox_user, ack="seen")
    for n in range(5):
        dovecot.deliver(mailbox_user, make_raw(n, tag="backlog"))
    sqs = boto3.client("sqs", endpoint_url=c.settings.endpoint_url, region_name="us-east-1")
    url = c.settings.fetch_queue_url
    assert fetch.dispatch(c) == 1
    rounds, fetched = 0, 0
    while rounds < 10:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1).get("Messages", [])
        if not got:
            break
        m = got[0]
        rounds += 1
        before = len([r for r in c.messages.list(limit=100) if r.direction == "in"])
        res = fetch.run_job(c, json.loads(m["Body"]), deadline=time.monotonic() + 60, max_messages=2)
        assert res.status == "ok"
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        fetched += len([r for r in c.messages.list(limit=100) if r.direction == "in"]) - before
    assert (fetched, rounds) == (5, 3)
    assert all("\\Seen" in f for f in flags_by_message_id(dovecot, mailbox_user).values())


def test_reply_fetched_from_a_mailbox_finds_the_thread_of_mail_sent_through_the_relay(
        aws, dovecot, mailbox_user, smtp_server, smtp_tls, monkeypatch):
    """Sent on DynamoDB through the SMTP relay, answered by a customer whose mail client quotes only
    our Message-ID (no reply token: the answer went to the shop's own mailbox), fetched by IMAP."""
    import email
    import email.policy

    from mailgate import dkim as D
    from mailgate import keyring
    from mailgate.domain import OutgoingServer
    from mailgate.services import outbound

    c = aws
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_tls.ca_file))
    c.config.put_domain(AliasDomain(name="example.net"))
    c.secrets.put(keyring.secret_id(c.settings, "example.net", "mailgate"), D.private_pem(D.generate_key("rsa", 2048)))
    c.secrets.put(c.settings.server_secret_prefix + "relay", smtp_server.password)
    c.config.put_outgoing(OutgoingServer(name="relay", host="127.0.0.1", port=smtp_server.port,
                                         user=smtp_server.user, from_filter="example.net",
                                         secret_id=c.settings.server_secret_prefix + "relay"))
    sent = outbound.send(c, {"idempotency_key": "order-7", "from": "Shop <shop@example.net>",
                             "to": ["carol@example.org"], "subject": "Your order 7", "text": "Shipped.",
                             "record": {"model": "sale.order", "id": "7"}})
    assert sent["status"] == "sent", sent
    got = email.message_from_bytes(smtp_server.messages[0].data, policy=email.policy.default)
    reply = (f"From: Carol <carol@example.org>\r\nTo: shop@example.net\r\nSubject: Re: Your order 7\r\n"
             f"Message-ID: <reply-7@example.org>\r\nIn-Reply-To: {got['Message-ID']}\r\n"
             f"References: {got['Message-ID']}\r\nDate: Thu, 26 Nov 2026 11:00:00 +0000\r\n\r\n"
             f"Thanks!\r\n").encode()
    dovecot.deliver(mailbox_user, reply)
    add_server(c, dovecot, mailbox_user, ack="seen")
    res = run(c)
    assert (res.status, res.ingested) == ("ok", 1), res
    (record,) = [r for r in c.messages.list(limit=10) if r.direction == "in"]
    assert record.thread_id == sent["thread_id"], (record.outcome, record.reason)
