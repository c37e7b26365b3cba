"""What the inbound path puts on the outbound queue is a request the outbound service accepts,
and goes out as a person would expect: notifications answerable into the thread, polite answers
marked as automatic (RFC 3834) so that no responder answers them back."""

import email
import email.policy

import pytest

from mailgate import compose, tokens
from mailgate import dkim as D
from mailgate import keyring
from mailgate.domain import Thread
from mailgate.services import outbound
from tests.unit.inbound_support import answers, deliver, mail, notifications, reply_address, stack
from tests.unit.test_outbound_service import FakeSender


@pytest.fixture(scope="module")
def key():
    return D.generate_key("rsa", 2048)


def send_all(c, key, requests):
    c.secrets.put(keyring.secret_id(c.settings, "example.test", "mailgate"), D.private_pem(key))
    ses = FakeSender("ses")
    for r in requests:
        compose.parse_request(r)  # raises InvalidRequest if the contract is broken
        result = outbound.send(c, r, senders={"ses": ses})
        assert result["status"] == "sent", result
    return [email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in ses.transactions]


def test_a_follower_notification_is_sent_with_the_threads_reply_address(key):
    c = stack()
    c.threads.put_thread(Thread("t1", followers=["ann@customer.test", "agent@example.org"]))
    addr = reply_address(c, "t1")
    deliver(c, mail(to=addr, subject="Re: ticket", body="Fixed, thanks."), recipients=[addr])
    [sent] = send_all(c, key, notifications(c))
    assert sent["To"] == "agent@example.org"
    assert tokens.parse_reply_address(c.token_key, sent["Reply-To"].addresses[0].addr_spec) == "t1"
    assert sent["Auto-Submitted"] == "auto-generated"


def test_the_polite_answer_to_an_unknown_alias_is_marked_auto_replied_and_threads_with_the_question(key):
    c = stack()
    question = deliver(c, mail(frm="Carl <carl@client.test>", to="nobody@example.test", subject="Hello?"),
                       recipients=["nobody@example.test"])
    [sent] = send_all(c, key, answers(c))
    assert sent["To"] == "carl@client.test"
    assert sent["Auto-Submitted"] == "auto-replied"
    assert sent["In-Reply-To"] == f"<{question.message_id}>"
