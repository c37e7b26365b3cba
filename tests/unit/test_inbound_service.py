"""The ingest service: exactly once, notifications, answers, replay; the SES event through its handler."""

from __future__ import annotations

import json
import threading

import pytest

from mailgate.domain import Alias, Thread
from mailgate.entrypoints import inbound as ses_action
from mailgate.errors import NotFound
from mailgate.services import inbound

from .inbound_support import DATA, REPO, answers, deliver, mail, notifications, reply_address, stack


def test_same_message_delivered_twice_creates_one_result():
    c = stack()
    raw = mail(message_id="dup@customer.test")
    first = deliver(c, raw)
    second = deliver(c, raw)  # SES delivered it again, under another S3 key
    assert second.key == first.key and second.thread_id == first.thread_id
    assert len(c.messages.records) == 1
    assert len([t for t, _ in c.events.published if t == "Record To Create"]) == 1


def test_same_message_id_with_different_bytes_is_still_one_message():
    c = stack()
    deliver(c, mail(message_id="same@customer.test", body="one\n"))
    deliver(c, b"Received: from relay\n" + mail(message_id="same@customer.test", body="one\n"))
    assert len(c.messages.records) == 1


def test_message_without_message_id_is_deduplicated_by_its_content():
    c = stack()
    raw = mail(message_id=None)
    a, b = deliver(c, raw), deliver(c, raw)
    assert a.key == b.key and a.key.startswith("in:msg:")
    assert len(c.events.published) == 1
    assert deliver(c, mail(message_id=None, body="other\n")).key != a.key


def test_concurrent_invocations_on_the_same_message_create_one_result():
    c = stack()
    c.threads.put_thread(Thread("t1", followers=["agent@example.org"]))
    addr = reply_address(c, "t1")
    c.raw_store.put("raw/ses/same", mail(to=addr, message_id="race@customer.test"))
    barrier = threading.Barrier(8)
    results, errors = [], []

    def worker():
        try:
            barrier.wait()
            results.append(inbound.ingest(c, "raw/ses/same", source="ses", envelope_recipients=[addr]))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {r.key for r in results} == {next(iter(c.messages.records))}
    assert {r.outcome for r in results} == {"thread"}
    assert len(c.events.published) == 1 and len(notifications(c)) == 1


def test_follower_notification_carries_the_reply_token_and_skips_the_author():
    c = stack()
    first = deliver(c, mail(frm="Ann <ann@customer.test>", subject="Order"))
    c.threads.add_follower(first.thread_id, "rep@example.org")
    c.threads.add_follower(first.thread_id, "boss@example.org")
    addr = reply_address(c, first.thread_id)
    deliver(c, mail(frm="Ann <ann@customer.test>", to=addr, subject="Re: Order"), recipients=[addr])
    sent = notifications(c)
    assert sorted(n["to"][0] for n in sent) == ["boss@example.org", "rep@example.org"]
    for n in sent:
        assert n["thread_id"] == first.thread_id  # outbound answers it with the reply address of this thread
        assert n["from"] == "Ann <notifications@example.test>" and n["notification"] is True
        assert n["idempotency_key"].endswith(n["to"][0])


def test_polite_answer_is_sent_once_even_when_the_message_arrives_twice():
    c = stack()
    raw = mail(to="catchall@example.test")
    deliver(c, raw, recipients=["catchall@example.test"])
    deliver(c, raw, recipients=["catchall@example.test"])
    deliver(c, mail(to="catchall@example.test"), recipients=["catchall@example.test"])
    assert len(answers(c)) == 1


def test_replay_after_adding_the_missing_alias_creates_the_record():
    c = stack()
    rec = deliver(c, mail(to="support@example.test"), recipients=["support@example.test"])
    assert rec.outcome == "unknown-recipient"
    c.config.put_alias(Alias("example.test", "support", "helpdesk.ticket"))
    again = inbound.replay(c, rec.key)
    assert again.key == rec.key and again.outcome == "new-record" and again.detail["model"] == "helpdesk.ticket"
    assert c.messages.get(rec.key).detail["replays"][0]["outcome"] == "unknown-recipient"


def test_replay_of_an_unknown_key_says_how_to_find_keys():
    with pytest.raises(NotFound, match="mailgate messages list"):
        inbound.replay(stack(), "in:mid:nope")


def test_missing_raw_object_is_recorded_as_failed():
    c = stack()
    rec = inbound.ingest(c, "raw/ses/never-stored", source="ses", envelope_recipients=["sales@example.test"])
    assert rec.outcome == "failed" and "raw message not found" in rec.reason
    assert c.messages.get(rec.key) is not None


def test_attachments_are_stored_with_name_type_and_size():
    c = stack()
    body = ("--B\nContent-Type: text/plain\n\nSee attached.\n--B\nContent-Type: application/pdf; name=\"q.pdf\"\n"
            "Content-Disposition: attachment; filename=\"q.pdf\"\nContent-Transfer-Encoding: base64\n\n"
            "JVBERi0xLjQKJcOkw7zDtsOf\n--B\nContent-Type: image/png\nContent-ID: <logo1>\n"
            "Content-Disposition: inline\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--B--\n")
    rec = deliver(c, mail(extra='Content-Type: multipart/mixed; boundary="B"', body=body))
    pdf, png = rec.detail["attachments"]
    assert (pdf["filename"], pdf["content_type"], pdf["size"]) == ("q.pdf", "application/pdf", 18)
    assert c.raw_store.get(pdf["key"]).startswith(b"%PDF-1.4")
    assert png["inline"] is True and png["content_id"] == "logo1"


def test_ses_lambda_event_sample_is_routed_from_the_s3_object():
    c = stack()
    event = json.loads((REPO / "events" / "ses-inbound.json").read_text())
    ses_id = event["Records"][0]["ses"]["mail"]["messageId"]
    c.raw_store.put(inbound.RAW_PREFIX + ses_id, (DATA / "ses-inbound.eml").read_bytes())
    result = ses_action.handle(c, event)
    [r] = result["results"]
    assert result["disposition"] == "CONTINUE" and r["outcome"] == "new-record"
    rec = c.messages.get(r["key"])
    assert rec.raw_key == "raw/ses/" + ses_id and rec.detail["verdicts"]["dmarc"] == "PASS"
    assert rec.message_id == "quote-40@customer.example"


def test_ses_event_with_virus_verdict_is_quarantined():
    c = stack()
    event = json.loads((REPO / "events" / "ses-inbound.json").read_text())
    event["Records"][0]["ses"]["receipt"]["virusVerdict"]["status"] = "FAIL"
    c.raw_store.put(inbound.RAW_PREFIX + event["Records"][0]["ses"]["mail"]["messageId"],
                    (DATA / "ses-inbound.eml").read_bytes())
    assert ses_action.handle(c, event)["results"][0]["outcome"] == "quarantined"


def test_ses_receipt_without_verdicts_is_routed_with_empty_verdicts():
    c = stack()
    event = json.loads((REPO / "events" / "ses-inbound.json").read_text())
    receipt = event["Records"][0]["ses"]["receipt"]
    for name in ("spamVerdict", "virusVerdict", "dmarcVerdict"):
        del receipt[name]
    receipt["spfVerdict"] = "PASS"  # not the {"status": ...} shape
    c.raw_store.put(inbound.RAW_PREFIX + event["Records"][0]["ses"]["mail"]["messageId"],
                    (DATA / "ses-inbound.eml").read_bytes())
    [r] = ses_action.handle(c, event)["results"]
    assert r["outcome"] == "new-record"
    assert c.messages.get(r["key"]).detail["verdicts"] == {
        "spam": "", "virus": "", "spf": "", "dkim": "PASS", "dmarc": "", "dmarc_policy": ""}


def test_malformed_ses_event_is_reported_not_raised():
    c = stack()
    assert "not an SES event" in ses_action.handle(c, {"foo": 1})["results"][0]["error"]
    assert "malformed" in ses_action.handle(c, {"Records": [{"ses": {}}]})["results"][0]["error"]
    assert "malformed" in ses_action.handle(c, {"Records": ["text"]})["results"][0]["error"]


@pytest.mark.parametrize("name", ["message-routed-to-thread", "record-to-create", "message-outcome"])
def test_published_events_have_the_documented_fields(name):
    """events/eventbridge/*.json are the documented samples: what we publish has the same keys."""
    sample = json.loads((REPO / "events" / "eventbridge" / f"{name}.json").read_text())
    c = stack()
    c.threads.put_thread(Thread("t1", model="crm.lead", record_id="5", followers=["rep@example.org"]))
    addr = reply_address(c, "t1")
    deliver(c, mail(to=addr), recipients=[addr])
    deliver(c, mail())
    deliver(c, mail(to="nobody@example.test"), recipients=["nobody@example.test"])
    got = {t: d for t, d in c.events.published}[sample["detail-type"]]
    assert sample["source"] == "mailgate"
    assert set(got) == set(sample["detail"])
    if "message" in got:
        assert set(got["message"]) == set(sample["detail"]["message"])


def test_retry_after_event_bus_outage_publishes_the_event_once_it_is_back():
    from mailgate.errors import TransientError

    c = stack()

    class Down:
        def publish(self, detail_type, detail):
            raise TransientError("EventBridge throttled")

    working, c.events = c.events, Down()
    c.raw_store.put("raw/ses/x", mail(message_id="outage@customer.test"))
    with pytest.raises(TransientError):
        inbound.ingest(c, "raw/ses/x", source="ses", envelope_recipients=["sales@example.test"])
    rec = c.messages.get(next(iter(c.messages.records)))
    assert rec.outcome == "new-record" and "throttled" in rec.detail["effects_error"]
    c.events = working  # the invocation is retried once the bus answers again
    again = inbound.ingest(c, "raw/ses/x", source="ses", envelope_recipients=["sales@example.test"])
    assert again.key == rec.key and again.thread_id == rec.thread_id
    assert [t for t, _ in c.events.published] == ["Record To Create"]
    assert "effects_error" not in c.messages.get(rec.key).detail
    inbound.ingest(c, "raw/ses/x", source="ses", envelope_recipients=["sales@example.test"])
    assert len(c.events.published) == 1


def test_fetched_mail_matching_no_alias_opens_a_record_of_the_servers_fallback_model():
    from mailgate.domain import IncomingServer
    from mailgate.services import inbound

    c = stack()
    c.config.put_incoming(IncomingServer("office", "imap", "imap.customer.test", 993, "info@customer.test",
                                         fallback_model="helpdesk.ticket"))
    raw = mail(frm="Carl <carl@client.test>", to="info@customer.test")
    c.raw_store.put("raw/fetch/x.eml", raw)
    record = inbound.ingest(c, "raw/fetch/x.eml", source="imap:office")
    assert record.outcome == "new-record" and "fallback model" in record.reason
    [(kind, detail)] = [(t, d) for t, d in c.events.published if t == "Record To Create"]
    assert detail["model"] == "helpdesk.ticket" and detail["alias"] == "info@customer.test"
    # the same mail through SES (no fallback there) is simply a duplicate of the first
    c.raw_store.put("raw/ses/x", raw)
    assert inbound.ingest(c, "raw/ses/x", source="ses").key == record.key


def test_a_server_that_keeps_no_original_gets_events_without_the_raw_link_but_the_raw_stays():
    from mailgate.domain import IncomingServer
    from mailgate.services import inbound

    c = stack()
    c.config.put_incoming(IncomingServer("office", "imap", "imap.customer.test", 993, "me", keep_original=False))
    c.raw_store.put("raw/fetch/y.eml", mail(to="sales@example.test"))
    record = inbound.ingest(c, "raw/fetch/y.eml", source="imap:office")
    [detail] = [d for t, d in c.events.published if t == "Record To Create"]
    assert "raw_key" not in detail and record.raw_key == "raw/fetch/y.eml"
    assert c.raw_store.exists(record.raw_key)
