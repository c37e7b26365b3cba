"""Bad input to the classifier and the feedback service: each gets an answer, none crashes or replies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from mailgate import suppression
from mailgate.bounces import classify, classify_ses_notification
from mailgate.domain import MessageRecord
from mailgate.message import parse
from mailgate.services.feedback import handle_inbound_bounce
from mailgate_dev import fakes


def _handle(raw: bytes):
    c = fakes.in_memory()
    rec = MessageRecord(key="in:x", raw_key="raw/x", recipients=["bounce@example.test"])
    c.messages.claim(rec)
    result = handle_inbound_bounce(c, rec, parse(raw))
    assert c.outbound_queue.sent == []  # never a reply
    return c, result


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_classify_without_raising(raw):
    report = classify(raw)
    assert report.kind in ("normal", "bounce", "auto-reply", "complaint", "delivery-report")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_any_text_after_dsn_headers_classifies_without_raising(body):
    raw = ("From: MAILER-DAEMON@x.example\nSubject: Undelivered Mail\nContent-Type: multipart/report; "
           "report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\n"
           + body + "\n--b--\n").encode("utf-8", "surrogatepass")
    classify(raw)


def test_bounce_of_a_bounce_is_recorded_and_nothing_is_suppressed():
    inner = ("From: MAILER-DAEMON@a.example\nTo: someone@b.example\nSubject: Undelivered Mail Returned to Sender\n"
             "Content-Type: text/plain\n\n<x@b.example>: 550 User unknown\n")
    raw = ("From: MAILER-DAEMON@b.example\nTo: bounce@example.test\nSubject: failure notice\n"
           "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/plain\n\n"
           "Hi. This is the qmail-send program.\nI'm afraid I wasn't able to deliver your message.\n\n"
           "--q\nContent-Type: message/rfc822\n\n" + inner + "\n--q--\n").encode()
    c, result = _handle(raw)
    assert result["kind"] == "bounce" and result["outcome"] == "unproven"
    assert suppression.list_suppressed(c.kv) == [] and c.events.published == []


def test_bounce_quoting_no_original_message_is_unproven():
    raw = (b"From: MAILER-DAEMON@b.example\nTo: bounce@example.test\nSubject: Mail delivery failed\n\n"
           b"The following address failed:\n\n  someone@b.example\n    550 5.1.1 User unknown\n")
    c, result = _handle(raw)
    assert result["kind"] == "bounce" and result["outcome"] == "unproven"
    assert suppression.list_suppressed(c.kv) == []


def test_dsn_in_an_unknown_charset_is_read():
    raw = ("From: MAILER-DAEMON@b.example\nTo: bounce@example.test\nSubject: Undelivered Mail\n"
           "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
           "--b\nContent-Type: text/plain; charset=x-no-such-charset-42\n\n\xe9chec de remise\n"
           "--b\nContent-Type: message/delivery-status; charset=x-unknown\n\nReporting-MTA: dns; b.example\n\n"
           "Final-Recipient: rfc822; someone@b.example\nAction: failed\nStatus: 5.1.1\n"
           "Diagnostic-Code: smtp; 550 5.1.1 utilisateur inconnu \xe9\n--b--\n").encode("latin-1")
    report = classify(raw)
    assert report.kind == "bounce"
    assert [(r.address, r.status) for r in report.recipients] == [("someone@b.example", "5.1.1")]
    _handle(raw)


def test_header_bomb_and_deep_nesting_are_survived():
    deep = "Content-Type: multipart/mixed; boundary=b0\n\n"
    for i in range(300):
        deep += f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n"
    raw = ("Subject: " + "x" * 200_000 + "\n" + "X-H: y\n" * 5000 + deep).encode()
    assert classify(raw).kind in ("normal", "bounce")
    _handle(raw)


@pytest.mark.timeout(60)  # it takes well under a second; before, hours (cubic backtracking)
def test_a_bounce_with_a_line_of_two_hundred_thousand_blanks_is_classified_without_stalling():
    raw = (b"From: MAILER-DAEMON@b.example\nReturn-Path: <>\nSubject: Undelivered Mail\n\n"
           b"This message could not be delivered to <gone@b.example>: 550 5.1.1 unknown.\n"
           + b" " * 200_000 + b"\n")
    report = classify(raw)
    assert report.kind == "bounce" and [r.address for r in report.recipients] == ["gone@b.example"]


def test_hostile_final_recipient_values():
    raw = ("From: MAILER-DAEMON@b.example\nSubject: Undelivered Mail\nContent-Type: multipart/report; "
           "report-type=delivery-status; boundary=b\n\n--b\nContent-Type: message/delivery-status\n\n"
           "Final-Recipient: rfc822;\nAction: failed\n\nFinal-Recipient: x400; /C=US/\nAction: failed\n\n"
           "Final-Recipient: rfc822; <" + "a" * 5000 + "@b.example>\nAction: failed\nStatus: 9.9.9\n--b--\n").encode()
    report = classify(raw)
    assert report.kind == "bounce"
    assert all(len(r.address) <= 300 for r in report.recipients)


def test_ses_notification_garbage_gives_a_normal_report_with_the_reason():
    for junk in (None, [], "x", {"notificationType": "Bounce", "bounce": "nope"}, {"eventType": "Open"}):
        report = classify_ses_notification(junk)
        assert report.kind in ("normal", "bounce")
    assert "not a JSON object" in classify_ses_notification([]).error


@pytest.mark.timeout(60)  # about a second; before, minutes (every address searched the whole text again)
def test_a_bounce_listing_twenty_thousand_addresses_reports_the_first_hundred_and_says_so():
    lines = "".join(f"<user{i}@client{i % 97}.example>: host mx.client.example said: 550 5.1.1 User unknown\n"
                    for i in range(20_000))
    raw = (b"From: MAILER-DAEMON@mx.client.example\nReturn-Path: <>\nSubject: Undelivered Mail Returned to Sender\n\n"
           b"I'm sorry to have to inform you that your message could not be delivered.\n\n" + lines.encode())
    report = classify(raw)
    assert report.kind == "bounce" and len(report.recipients) == 100
    assert report.recipients[0].address == "user0@client0.example" and report.recipients[0].permanent
    assert report.defects == ["more than 100 failed recipients: the first 100 read"]


@pytest.mark.timeout(60)
def test_a_dsn_with_thousands_of_recipient_blocks_reports_the_first_hundred_and_says_so():
    blocks = "".join(f"Final-Recipient: rfc822; user{i}@client.example\nAction: failed\nStatus: 5.1.1\n\n"
                     for i in range(3000))
    raw = ("From: MAILER-DAEMON@mx.client.example\nSubject: Undelivered Mail\nContent-Type: multipart/report; "
           "report-type=delivery-status; boundary=b\n\n--b\nContent-Type: text/plain\n\nNot delivered.\n"
           "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.client.example\n\n"
           + blocks + "--b--\n").encode()
    report = classify(raw)
    assert report.kind == "bounce" and len(report.recipients) == 100
    assert "more than 100 failed recipients: the first 100 read" in report.defects


@pytest.mark.timeout(60)  # a "warning: message ... delayed" pattern with an open ".*" was quadratic on one line
def test_long_lines_of_repeated_phrases_are_cut_and_recorded():
    line = "warning: message exceeded mailbox quota " * 25_000
    raw = (b"From: MAILER-DAEMON@b.example\nReturn-Path: <>\nSubject: Undelivered Mail\n\n"
           b"This message could not be delivered to <gone@b.example>: 550 5.1.1 unknown.\n"
           + line.encode() + b"\n")
    report = classify(raw)
    assert report.kind == "bounce" and [r.address for r in report.recipients] == ["gone@b.example"]
    assert "lines over 4,000 characters: read up to there" in report.defects
