"""Outbound and inbound agree on threads: a reply to what we sent comes home, and what came in
is referenced by what we send next."""

import email
import email.policy

import pytest

from mailgate import dkim as D
from mailgate.domain import Alias, AliasDomain
from mailgate.services import inbound, outbound
from mailgate_dev import fakes
from tests.unit.test_outbound_service import FakeSender


@pytest.fixture(scope="module")
def rsa_key():
    return D.generate_key("rsa", 2048)


@pytest.fixture
def c(rsa_key):
    c = fakes.in_memory()
    c.config.put_domain(AliasDomain("example.test", dkim_selector="mg"))
    c.config.put_alias(Alias("example.test", "sales", "crm.lead"))
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(rsa_key))
    return c


def deliver(c, raw: bytes, key: str, to: str):
    c.raw_store.put(key, raw)
    return inbound.ingest(c, key, source="ses", envelope_recipients=[to])


def test_reply_that_only_quotes_our_message_id_reaches_the_thread(c):
    ses = FakeSender("ses")
    outbound.send(c, {"idempotency_key": "quote-7", "from": "Sales <sales@example.test>", "to": ["bob@client.test"],
                      "subject": "Your quote", "text": "Here it is.", "record": {"model": "crm.lead", "id": "7"}},
                  senders={"ses": ses})
    sent = email.message_from_bytes(ses.transactions[0][2], policy=email.policy.default)
    thread = c.threads.find_thread_for_record("crm.lead", "7")
    # Bob's client drops Reply-To and answers the From address: only In-Reply-To links it.
    reply = (f"From: bob@client.test\r\nTo: sales@example.test\r\nSubject: Re: Your quote\r\n"
             f"Message-ID: <r1@client.test>\r\nIn-Reply-To: {sent['Message-ID']}\r\n\r\nThanks!\r\n").encode()
    record = deliver(c, reply, "raw/ses/r1", "sales@example.test")
    assert record.outcome == "thread" and record.thread_id == thread.thread_id


def test_the_next_message_we_send_references_the_reply_we_received(c):
    ses = FakeSender("ses")
    base = {"from": "Sales <sales@example.test>", "to": ["bob@client.test"], "subject": "Your quote",
            "text": "x", "record": {"model": "crm.lead", "id": "8"}}
    outbound.send(c, dict(base, idempotency_key="q8-1"), senders={"ses": ses})
    first = email.message_from_bytes(ses.transactions[0][2], policy=email.policy.default)
    reply = (f"From: bob@client.test\r\nTo: sales@example.test\r\nSubject: Re: Your quote\r\n"
             f"Message-ID: <r8@client.test>\r\nReferences: {first['Message-ID']}\r\n\r\nOK\r\n").encode()
    assert deliver(c, reply, "raw/ses/r8", "sales@example.test").outcome == "thread"
    outbound.send(c, dict(base, idempotency_key="q8-2"), senders={"ses": ses})
    second = email.message_from_bytes(ses.transactions[1][2], policy=email.policy.default)
    assert second["In-Reply-To"] == "<r8@client.test>"
    assert second["References"].split() == [first["Message-ID"], "<r8@client.test>"]
