"""Small hand-written cases: what is and is not a bounce, and what the report says."""

from __future__ import annotations

from mailgate.bounces import classify, classify_parsed, classify_ses_notification, is_permanent, reason_for
from mailgate.message import parse


def test_a_person_writing_about_a_rejected_offer_is_not_a_bounce():
    raw = (b"From: Ann <ann@customer.example>\nTo: sales@example.test\nSubject: Re: rejected proposal\n"
           b"Message-ID: <a1@customer.example>\n\nWe rejected it. Call me on 555 0100, the error was ours.\n")
    report = classify(raw)
    assert report.kind == "normal" and report.recipients == []


def test_a_mailer_daemon_text_bounce_names_the_recipient_not_the_sender():
    raw = (b"Return-Path: <>\nFrom: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\n"
           b"To: bounce@example.test\nSubject: Mail delivery failed: returning message to sender\n\n"
           b"This message was created automatically by mail delivery software.\n\n"
           b"A message that you sent could not be delivered to one or more of its recipients.\n\n"
           b"  gone@customer.example\n    SMTP error from remote mail server after RCPT TO:<gone@customer.example>:\n"
           b"    550 5.1.1 <gone@customer.example>: Recipient address rejected: User unknown\n\n"
           b"------ This is a copy of the message, including all the headers. ------\n\n"
           b"From: notifications@example.test\nTo: gone@customer.example\nMessage-ID: <ref123@example.test>\n"
           b"X-Mailgate-Id: ref123\nSubject: hello\n\nhello\n")
    report = classify(raw)
    assert report.kind == "bounce"
    assert [(r.address, r.permanent, r.status, r.reason) for r in report.recipients] == [
        ("gone@customer.example", True, "5.1.1", "userunknown")]
    assert report.original_mailgate_id == "ref123" and report.original_message_id == "ref123@example.test"
    assert report.inspect_dict()["bounce"]["recipients"][0]["address"] == "gone@customer.example"


def test_delayed_dsn_is_a_temporary_failure():
    raw = (b"From: MAILER-DAEMON@mx.example\nSubject: Delivery Status Notification (Delay)\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
           b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
           b"Final-Recipient: rfc822; slow@customer.example\nAction: delayed\nStatus: 4.4.7\n--b--\n")
    report = classify(raw)
    assert report.kind == "bounce"
    assert [(r.address, r.permanent, r.action) for r in report.recipients] == [("slow@customer.example", False, "delayed")]


def test_message_level_rejections_are_not_permanent_for_the_address():
    for diag, status in [("550 5.7.26 Unauthenticated email is not accepted due to DMARC policy", "5.7.26"),
                         ("552 5.2.2 Mailbox full", "5.2.2"),
                         ("554 5.7.1 Service unavailable; client host blocked using Spamhaus", "5.7.1")]:
        assert not is_permanent(reason_for(diag, status), status), diag
    assert is_permanent(reason_for("550 5.1.1 No such user", "5.1.1"), "5.1.1")
    assert is_permanent(reason_for("Host or domain name not found", "5.4.4"), "5.4.4")


def test_ses_bounce_subtypes():
    def one(btype, sub, diag=""):
        r = classify_ses_notification({"notificationType": "Bounce", "bounce": {
            "bounceType": btype, "bounceSubType": sub,
            "bouncedRecipients": [{"emailAddress": "X@Customer.example", "diagnosticCode": diag}]}})
        return r.kind, r.recipients[0].address, r.recipients[0].permanent

    assert one("Permanent", "Suppressed") == ("bounce", "x@customer.example", True)
    assert one("Permanent", "General", "smtp; 550 5.7.1 blocked by policy") == ("bounce", "x@customer.example", False)
    assert one("Permanent", "General") == ("bounce", "x@customer.example", True)
    assert one("Transient", "MailboxFull") == ("bounce", "x@customer.example", False)


def test_a_message_parsed_for_routing_is_classified_without_parsing_it_again():
    raw = (b"From: MAILER-DAEMON@mx.example\nSubject: Undelivered Mail\n"
           b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
           b"--b\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
           b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example\n\n"
           b"Final-Recipient: rfc822; gone@customer.example\nAction: failed\nStatus: 5.1.1\n"
           b"--b\nContent-Type: text/rfc822-headers\n\nMessage-ID: <ref9@example.test>\nX-Mailgate-Id: ref9\n--b--\n")
    parsed = parse(raw)
    report = classify_parsed(parsed)
    assert report == classify(raw)
    assert (report.kind, report.method, report.original_mailgate_id) == ("bounce", "dsn", "ref9")
    assert [(r.address, r.permanent, r.reason) for r in report.recipients] == [
        ("gone@customer.example", True, "userunknown")]


def test_a_relay_that_wrapped_the_bounce_it_got_names_the_inner_recipient():
    inner = ("From: MAILER-DAEMON@a.example\nTo: someone@b.example\nSubject: Undelivered Mail Returned to Sender\n"
             "Content-Type: text/plain\n\n<x@b.example>: 550 5.1.1 User unknown\n")
    for i in range(3):
        inner = (f"From: MAILER-DAEMON@r{i}.example\nTo: bounce@example.test\nSubject: failure notice\n"
                 f"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=q{i}\n\n--q{i}\n"
                 "Content-Type: text/plain\n\nHi. This is the qmail-send program.\n"
                 "I'm afraid I wasn't able to deliver your message.\n\n"
                 f"--q{i}\nContent-Type: message/rfc822\n\n" + inner + f"\n--q{i}--\n")
    report = classify(inner.encode())
    assert report.kind == "bounce" and [r.address for r in report.recipients] == ["x@b.example"]


def _report(fields: str, original: str = "Message-ID: <m1@example.test>\n") -> bytes:
    return (b"From: MAILER-DAEMON@mx.customer.example\nTo: bounce@example.test\nSubject: Undelivered Mail\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n"
            b"--b\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
            b"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.customer.example\n\n"
            + fields.encode() + b"\n--b\nContent-Type: text/rfc822-headers\n\n" + original.encode() + b"--b--\n")


def test_dsn_recipient_fields_are_read_by_the_address_parser():
    for value, want in [("rfc822; Ann Smith <Ann@Customer.Example>", "ann@customer.example"),
                        ("rfc822;<ann@customer.example> (mailbox ann)", "ann@customer.example"),
                        ("RFC822; =?utf-8?q?Ann?= <ann@customer.example>", "ann@customer.example"),
                        ("rfc822; SMTP=Ann@Customer.EXAMPLE", "ann@customer.example")]:
        report = classify(_report(f"Final-Recipient: {value}\nAction: failed\nStatus: 5.1.1\n"))
        assert [r.address for r in report.recipients] == [want], value


def test_arf_original_rcpt_to_is_read_by_the_address_parser():
    raw = (b"From: fbl@isp.example\nTo: bounce@example.test\nSubject: complaint\n"
           b"Content-Type: multipart/report; report-type=feedback-report; boundary=F\n\n"
           b"--F\nContent-Type: text/plain\n\nThis is an abuse report.\n"
           b"--F\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: FBL/1.0\nVersion: 1\n"
           b"Original-Rcpt-To: Carol (home) <Carol@Customer.Example>\n--F--\n")
    report = classify(raw)
    assert report.kind == "complaint" and [r.address for r in report.recipients] == ["carol@customer.example"]


def test_ses_recipient_fields_are_read_by_the_address_parser():
    r = classify_ses_notification({"notificationType": "Bounce", "bounce": {
        "bounceType": "Permanent", "bounceSubType": "NoEmail",
        "bouncedRecipients": [{"emailAddress": "=?utf-8?b?R29uZQ==?= <Gone@Customer.Example>"},
                              {"emailAddress": "left@customer.example (left the company)"}]}})
    assert [x.address for x in r.recipients] == ["gone@customer.example", "left@customer.example"]
