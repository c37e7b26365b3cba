"""Bad input, nothing lost: each odd message gets a recorded outcome, none crashes, none loses the
raw message, none sends more than one automatic answer."""

from __future__ import annotations

import base64

import pytest

from mailgate import message as message_mod
from mailgate.routing import KINDS

from .inbound_odd import odd_messages
from .inbound_support import answers, deliver, mail, stack

ODD = odd_messages()
OUTCOMES = set(KINDS) | {"failed"}


@pytest.mark.parametrize("name", sorted(ODD))
def test_odd_message_gets_a_recorded_outcome_and_keeps_its_raw(name):
    c = stack()
    key = f"raw/ses/{name}"
    rec = deliver(c, ODD[name], recipients=["sales@example.test", "catchall@example.test"], key=key)
    assert rec.outcome in OUTCOMES
    assert c.messages.get(rec.key).outcome == rec.outcome
    assert c.raw_store.get(key) == ODD[name]
    assert len(answers(c)) <= 1


def test_crlf_injected_into_an_encoded_subject_cannot_add_a_header():
    parsed = message_mod.parse(ODD["crlf-injected-encoded-subject"])
    assert "\r" not in parsed.subject and "\n" not in parsed.subject
    assert parsed.subject.startswith("hi") and "victim@evil.test" in parsed.subject  # shown, harmless
    c = stack()
    deliver(c, ODD["crlf-injected-encoded-subject"])
    [(_, event)] = c.events.published
    assert "\n" not in event["message"]["subject"]


def test_crlf_injected_into_a_display_name_stays_in_the_name():
    parsed = message_mod.parse(ODD["crlf-injected-encoded-from"])
    assert parsed.sender == "eve@customer.test" and "\n" not in parsed.sender_name


def test_unknown_charset_and_wrong_charset_are_read_without_a_crash():
    assert "caf" in message_mod.parse(ODD["unknown-charset"]).text
    assert message_mod.parse(ODD["wrong-charset"]).text.startswith("na\u00efve caf\u00e9")
    assert message_mod.parse(ODD["latin1-8bit-headers"]).subject == "caf\u00e9"
    assert message_mod.parse(ODD["eight-bit-headers"]).subject == "Caf\u00e9 \u2603 order"


def test_rfc2231_attachment_name_is_decoded():
    [att] = message_mod.parse(ODD["rfc2231-filename"]).attachments
    assert att.filename == "\u20ac rates.pdf" and att.data() == b"pdf"


def test_two_thousand_recipients_are_routed_on_ours_and_recorded_with_a_cap():
    c = stack()
    rec = deliver(c, ODD["two-thousand-recipients"], recipients=[])
    assert rec.outcome == "new-record"
    assert len(rec.recipients) == 200 and rec.detail["recipients_total"] == 2001


def test_forged_token_from_a_file_is_answered_politely_not_threaded():
    c = stack()
    rec = deliver(c, ODD["forged-reply-token"], recipients=[])
    assert rec.outcome == "unknown-recipient" and rec.thread_id == ""


def test_html_only_message_has_text_and_reply_text_without_the_quote():
    parsed = message_mod.parse(ODD["html-only"])
    assert parsed.reply_text == "Yes & thanks"


def test_mail_loop_between_two_auto_responders_gets_at_most_one_answer():
    """A badly behaved responder (no Auto-Submitted) answers everything; the other side is us."""
    c = stack()
    for i in range(50):
        headers = {"In-Reply-To": f"<answer{i}@example.test>"} if i else {}
        deliver(c, mail(frm="robot@responder.test", to="catchall@example.test", subject=f"Re: ticket {i}",
                        headers=headers), recipients=["catchall@example.test"])
    assert len(answers(c)) == 1
    # a compliant responder (RFC 3834) is never answered at all
    c2 = stack()
    for _ in range(10):
        deliver(c2, mail(frm="vacation@responder.test", to="catchall@example.test",
                         headers={"Auto-Submitted": "auto-replied"}), recipients=["catchall@example.test"])
    assert answers(c2) == []


def test_thirty_megabyte_message_with_attachments_is_routed_and_its_attachments_stored():
    c = stack()
    chunk = base64.encodebytes(bytes(range(256)) * 40_000)  # ~10 MB decoded each
    parts = b"".join(
        b"--Z\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"f%d.bin\"\n"
        b"Content-Transfer-Encoding: base64\n\n" % i + chunk for i in range(3))
    raw = (b"From: a@customer.test\nTo: sales@example.test\nSubject: big\nMessage-ID: <big@c.test>\n"
           b"Content-Type: multipart/mixed; boundary=\"Z\"\n\n--Z\nContent-Type: text/plain\n\nthree files\n"
           + parts + b"--Z--\n")
    assert len(raw) > 30_000_000
    rec = deliver(c, raw)
    assert rec.outcome == "new-record"
    assert [a["size"] for a in rec.detail["attachments"]] == [10_240_000] * 3
    assert c.raw_store.get(rec.detail["attachments"][2]["key"]) == bytes(range(256)) * 40_000


def test_big_base64_text_body_and_attached_message_are_read_back_whole():
    text = "ligne \u00e9t\u00e9 %d\n"
    body_text = "".join(text % i for i in range(100_000))
    inner = b"From: x@y.test\nSubject: inner\nContent-Transfer-Encoding: base64\n\n" + base64.encodebytes(b"z" * 600_000)
    raw = (b"From: a@customer.test\nTo: sales@example.test\nSubject: big text\n"
           b"Content-Type: multipart/mixed; boundary=\"Q\"\n\n--Q\nContent-Type: text/plain; charset=utf-8\n"
           b"Content-Transfer-Encoding: base64\n\n" + base64.encodebytes(body_text.encode()) +
           b"--Q\nContent-Type: message/rfc822\n\n" + inner + b"--Q--\n")
    parsed = message_mod.parse(raw)
    assert parsed.text == body_text
    [att] = parsed.attachments
    assert base64.b64decode(att.data().split(b"\n\n", 1)[1]) == b"z" * 600_000


def test_a_store_that_refuses_the_route_for_good_records_the_message_as_failed_and_replay_redoes_it():
    """Contract with the DynamoDB store: PermanentError from commit means "these items will never
    fit" (not "try again"), so the message is recorded as failed rather than retried and lost."""
    from mailgate.errors import PermanentError
    from mailgate_dev.fakes import MemoryInboundStore
    from mailgate.services import inbound

    c = stack()

    class Refusing(MemoryInboundStore):
        """Refuses a route's items for good, as DynamoDB refuses an item over 400 KB; the plain
        "failed" record fits."""

        def commit(self, record, **kw):
            if record.outcome != "failed":
                raise PermanentError("recording message was refused: item too large", code="dynamodb-validation")
            return super().commit(record, **kw)

    working = c.inbound
    c.inbound = Refusing(c.config, c.threads, c.messages, c.counters, c.kv, gateway_domain=c.settings.gateway_domain)
    record = deliver(c, mail(subject="refused"), key="raw/ses/refused")
    assert record.outcome == "failed" and "recording the route (new-record) failed" in record.reason
    assert c.messages.get(record.key).outcome == "failed" and not c.events.published
    c.inbound = working  # after the fix
    assert inbound.replay(c, record.key).outcome == "new-record"
