"""The inbound path over the real DynamoDB store (one batched read, one transaction per message)."""

import pytest

from mailgate.adapters.dynamo import DynamoInboundStore
from mailgate.domain import Alias, AliasDomain
from mailgate.services import inbound

pytestmark = pytest.mark.integration


def mail(n: int, sender: str = "ann@client.test", to: str = "sales@example.test", extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: note {n}\r\nMessage-ID: <n{n}.{sender}>\r\n{extra}\r\n"
            f"hello {n}\r\n").encode()


def deliver(c, raw: bytes, key: str, to: str = "sales@example.test"):
    c.raw_store.put(key, raw)
    return inbound.ingest(c, key, source="ses", envelope_recipients=[to])


@pytest.fixture
def c(aws):
    aws.config.put_domain(AliasDomain("example.test", loop_limit=3))
    aws.config.put_alias(Alias("example.test", "sales", "crm.lead"))
    return aws


def test_new_records_then_the_loop_limit_stops_a_flood_from_one_sender(c):
    outcomes = [deliver(c, mail(i), f"raw/ses/f{i}").outcome for i in range(5)]
    assert outcomes == ["new-record", "new-record", "new-record", "loop", "loop"]


def test_a_reply_by_references_joins_the_thread_and_its_author_is_a_known_sender(c):
    first = deliver(c, mail(1, "bob@client.test"), "raw/ses/b1")
    reply = mail(2, "bob@client.test", extra="References: <n1.bob@client.test>\r\n")
    second = deliver(c, reply, "raw/ses/b2")
    assert second.outcome == "thread" and second.thread_id == first.thread_id
    assert c.threads.recent_message_ids(first.thread_id) == ["n1.bob@client.test", "n2.bob@client.test"]
    assert c.kv.get_item("contact#bob@client.test") is not None


def test_the_same_message_twice_is_one_record(c):
    a = deliver(c, mail(7), "raw/ses/d1")
    b = deliver(c, mail(7), "raw/ses/d2")
    assert a.key == b.key and len(c.messages.list()) == 1


def test_a_domain_saved_with_a_zero_minute_loop_window_still_routes_its_mail(aws):
    aws.config.put_domain(AliasDomain("example.test", loop_window_minutes=0))
    aws.config.put_alias(Alias("example.test", "sales", "crm.lead"))
    assert [deliver(aws, mail(i), f"raw/ses/z{i}").outcome for i in range(2)] == ["new-record", "new-record"]


def test_domain_add_refuses_a_zero_loop_window_naming_the_fix(capsys):
    from mailgate_dev.cli import main

    assert main.main(["domain", "add", "example.test", "--loop-window", "0"]) == 2
    assert "--loop-window must be at least 1" in capsys.readouterr().err


def test_replay_after_adding_the_alias_opens_the_record_and_makes_the_author_a_known_contact(c):
    c.config.put_alias(Alias("example.test", "vip", "crm.lead", contact_policy="partners"))
    first = deliver(c, mail(1, "kim@client.test", to="support@example.test"), "raw/ses/r1", to="support@example.test")
    assert first.outcome == "unknown-recipient"
    c.config.put_alias(Alias("example.test", "support", "helpdesk.ticket"))
    c.inbound = DynamoInboundStore(c.config, gateway_domain=c.settings.gateway_domain)  # as a new container would
    again = inbound.replay(c, first.key)
    assert again.outcome == "new-record" and c.threads.get_thread(again.thread_id).model == "helpdesk.ticket"
    # partners-only alias: kim opened a record, so she is a known contact now
    assert deliver(c, mail(2, "kim@client.test", to="vip@example.test"), "raw/ses/r2",
                   to="vip@example.test").outcome == "new-record"


def test_mail_arriving_while_the_table_throttles_reads_is_retried_not_recorded_as_failed(c):
    from botocore.exceptions import ClientError

    from mailgate.adapters.dynamo import Item
    from mailgate.errors import TransientError

    def throttle(**kwargs):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                     "Message": "Rate of requests exceeds the allowed throughput."}}, "BatchGetItem")

    events = Item._get_connection().connection.client.meta.events
    events.register("before-call.dynamodb.BatchGetItem", throttle)
    try:
        with pytest.raises(TransientError):  # the Lambda invocation fails: SES/the fetcher try again
            deliver(c, mail(40), "raw/ses/t40")
    finally:
        events.unregister("before-call.dynamodb.BatchGetItem", throttle)
    assert c.messages.list() == []
    assert deliver(c, mail(40), "raw/ses/t40").outcome == "new-record"


def test_a_strangers_message_reusing_a_known_message_id_does_not_take_the_replies_to_it(c):
    ann = deliver(c, mail(1, "ann@client.test"), "raw/ses/mid-ann")
    eve = deliver(c, mail(1, "ann@client.test").replace(b"From: ann@client.test", b"From: eve@attacker.test")
                  + b"mine now\r\n", "raw/ses/mid-eve")
    assert ann.outcome == eve.outcome == "new-record" and ann.thread_id != eve.thread_id
    assert inbound.replay(c, eve.key).thread_id == eve.thread_id  # nor does its replay

    reply = deliver(c, mail(2, "bob@client.test", extra="In-Reply-To: <n1.ann@client.test>\r\n"), "raw/ses/mid-r")
    assert (reply.outcome, reply.thread_id) == ("thread", ann.thread_id)
    assert c.threads.recent_message_ids(eve.thread_id) == []


ORDER = (b"From: Olga <olga@customer.test>\r\nTo: sales@example.test\r\nSubject: Order 2\r\n"
         b"Date: Tue, 3 Mar 2026 10:00:00 +0100\r\nMessage-ID: <o2@customer.test>\r\n\r\n40 chairs, please.\r\n")


def test_an_outsider_cannot_pre_empt_a_message_by_its_message_id_and_copies_still_merge(c):
    squat = deliver(c, b"From: eve@attacker.test\r\nTo: sales@example.test\r\nSubject: hi\r\n"
                       b"Message-ID: <o2@customer.test>\r\n\r\nfirst!\r\n", "raw/ses/squat")
    real = deliver(c, b"Received: from mx.customer.test by inbound-smtp\r\n" + ORDER, "raw/ses/real")
    fetched = (b"Delivered-To: office@customer.test\r\nReceived: by imap.customer.test\r\n" + ORDER).replace(
        b"\r\n", b"\n")
    c.raw_store.put("raw/fetch/o2.eml", fetched)
    again = inbound.ingest(c, "raw/fetch/o2.eml", source="imap:office")

    assert real.key != squat.key and real.outcome == "new-record" and real.sender == "olga@customer.test"
    assert again.key == real.key and len(c.messages.list()) == 2


def test_a_redelivery_of_a_message_recorded_under_the_previous_key_finds_that_record(c):
    from mailgate.domain import MessageRecord
    from mailgate.inbound_model import previous_message_key
    from mailgate.message import parse

    parsed = parse(ORDER)
    old = previous_message_key(parsed)
    c.raw_store.put("raw/ses/old", ORDER)
    c.messages.claim(MessageRecord(key=old, raw_key="raw/ses/old", source="ses", message_id=parsed.message_id,
                                   digest=parsed.digest, outcome="new-record"))

    assert deliver(c, ORDER, "raw/ses/old-again").key == old
    assert inbound.replay(c, "raw/ses/old").key == old and len(c.messages.list()) == 1
