"""The feedback service: bounces at the bounce alias and SES notifications, end to end on fakes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from mailgate import suppression, tokens
from mailgate.bounce_policy import note_inbound_from, score
from mailgate.domain import AliasDomain, MessageRecord, new_id
from mailgate.entrypoints import feedback as sns_action
from mailgate.message import parse
from mailgate.services.feedback import handle_feedback, handle_inbound_bounce
from mailgate_dev import fakes

EVENTS = Path(__file__).resolve().parents[2] / "events"
DOMAIN = "example.test"


def _container():
    c = fakes.in_memory()
    c.config.put_domain(AliasDomain(name=DOMAIN))
    return c


def _sent(c, recipients, ref=None, thread_id="thread1"):
    ref = ref or new_id()
    c.messages.claim(MessageRecord(key="out:" + ref, raw_key=f"out/{ref}.eml", direction="out",
                                   sender=f"notifications@{DOMAIN}", recipients=list(recipients),
                                   thread_id=thread_id, message_id=f"<{ref}@{DOMAIN}>"))
    return ref


def _verp(c, ref, index):
    return tokens.verp_address(c.token_key, "bounce", DOMAIN, ref, index)


def _dsn(recipient, status="5.1.1", diag="550 5.1.1 <{r}>: Recipient address rejected: User unknown",
         *, mailgate_id="", message_id="<original@elsewhere.example>", extra_recipients=()):
    """An RFC 3464 DSN as Postfix writes it."""
    blocks = []
    for r in (recipient, *extra_recipients):
        blocks.append(f"Final-Recipient: rfc822; {r}\nAction: failed\nStatus: {status}\n"
                      f"Diagnostic-Code: smtp; {diag.format(r=r)}\n")
    original = f"From: notifications@{DOMAIN}\nTo: {recipient}\nSubject: Your quotation\nMessage-ID: {message_id}\n"
    if mailgate_id:
        original += f"X-Mailgate-Id: {mailgate_id}\n"
    return (
        "From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\n"
        f"To: bounce@{DOMAIN}\nSubject: Undelivered Mail Returned to Sender\n"
        f"Message-ID: <{new_id()}@mx.customer.example>\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
        "--B\nContent-Type: text/plain\n\nI'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n"
        "--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.customer.example\n\n"
        + "\n".join(blocks)
        + "\n--B\nContent-Type: text/rfc822-headers\n\n" + original + "\n--B--\n"
    ).encode()


def _inbound(c, envelope_recipients, raw):
    rec = MessageRecord(key="in:" + new_id(), raw_key="raw/x", recipients=list(envelope_recipients))
    c.raw_store.put(rec.raw_key, raw)
    c.messages.claim(rec)
    return rec


def _events(c, kind):
    return [d for t, d in c.events.published if t == kind]


def test_verp_bounce_suppresses_exactly_the_recipient_the_token_names():
    c = _container()
    ref = _sent(c, ["alice@customer.example", "bob@customer.example"])
    raw = _dsn("bob@customer.example")
    rec = _inbound(c, [_verp(c, ref, 1)], raw)

    result = handle_inbound_bounce(c, rec, parse(raw))

    assert result["outcome"] == "bounced" and result["verified"] is True
    assert suppression.is_suppressed(c.kv, DOMAIN, "bob@customer.example")["source"] == "hard-bounce"
    assert suppression.is_suppressed(c.kv, DOMAIN, "alice@customer.example") is None
    [event] = _events(c, "Bounce")
    assert event["address"] == "bob@customer.example" and event["message_ref"] == ref
    assert event["thread_id"] == "thread1" and event["permanent"] is True and event["status"] == "5.1.1"
    assert event["verified_by"] == "verp" and event["newly_suppressed"] is True
    stored = c.messages.get(rec.key)
    assert stored.outcome == "bounce" and "bounced: " in stored.reason
    assert stored.detail["feedback"]["outcome"] == "bounced"
    assert c.outbound_queue.sent == []  # a bounce is never answered


def test_forged_token_does_not_get_an_arbitrary_address_suppressed():
    c = _container()
    ref = _sent(c, ["alice@customer.example"])
    forged = tokens.verp_address(b"attacker-guess", "bounce", DOMAIN, ref, 0)
    raw = _dsn("victim@important.example")
    rec = _inbound(c, [forged], raw)

    result = handle_inbound_bounce(c, rec, parse(raw))

    assert result["outcome"] == "unproven" and result["verified"] is False
    assert suppression.list_suppressed(c.kv) == []
    assert c.events.published == []
    assert "unproven" in result["recipients"][0]["why"]


def test_a_recipient_cannot_get_a_co_recipient_suppressed_by_quoting_the_shared_x_mailgate_id():
    """Every copy of a message carries the same X-Mailgate-Id and Message-ID: mallory, one of three
    recipients, forges a DSN naming bob to the bare bounce address. It proves nothing."""
    c = _container()
    ref = _sent(c, ["alice@customer.example", "bob@customer.example", "mallory@customer.example"])
    raw = _dsn("bob@customer.example", mailgate_id=ref, message_id=f"<{ref}@{DOMAIN}>",
               extra_recipients=("alice@customer.example",))
    rec = _inbound(c, [f"bounce@{DOMAIN}"], raw)

    result = handle_inbound_bounce(c, rec, parse(raw))

    assert result["outcome"] == "unproven" and result["verified"] is False and result["kind"] == "bounce"
    assert "VERP" in result["reason"]
    assert suppression.list_suppressed(c.kv) == [] and score(c.kv, DOMAIN, "bob@customer.example") == 0
    assert c.events.published == []
    stored = c.messages.get(rec.key)
    assert stored.outcome == "bounce" and "unproven: " in stored.reason
    assert stored.detail["feedback"]["kind"] == "bounce"
    assert {r["address"] for r in stored.detail["feedback"]["recipients"]} == {
        "bob@customer.example", "alice@customer.example"}


def test_a_recipient_holding_its_own_token_can_only_ever_name_itself():
    """mallory's own copy carried bounce+TOKEN(mallory)@: a DSN she sends there naming bob counts
    against the recipient the token names (mallory), never against the address in the body."""
    c = _container()
    ref = _sent(c, ["bob@customer.example", "mallory@customer.example"])
    raw = _dsn("bob@customer.example", mailgate_id=ref)
    rec = _inbound(c, [_verp(c, ref, 1)], raw)

    result = handle_inbound_bounce(c, rec, parse(raw))

    assert result["outcome"] == "bounced"
    assert suppression.is_suppressed(c.kv, DOMAIN, "bob@customer.example") is None
    assert [e["address"] for e in _events(c, "Bounce")] == ["mallory@customer.example"]


def _arf(rcpt, ref, *, return_path="", original_mail_from=""):
    """An RFC 5965 abuse report as a mailbox provider's feedback loop sends it."""
    fields = f"Feedback-Type: abuse\nUser-Agent: ISP-FBL/1.0\nVersion: 1\nOriginal-Rcpt-To: {rcpt}\n"
    if original_mail_from:
        fields += f"Original-Mail-From: <{original_mail_from}>\n"
    original = (f"Return-Path: <{return_path}>\n" if return_path else "") + (
        f"From: notifications@{DOMAIN}\nTo: {rcpt}\nMessage-ID: <{ref}@{DOMAIN}>\nX-Mailgate-Id: {ref}\n")
    return (
        "From: fbl@isp.example\nTo: fbl@example.test\nSubject: complaint\nMessage-ID: <fbl1@isp.example>\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\n\n"
        "--F\nContent-Type: text/plain\n\nThis is an abuse report.\n\n"
        f"--F\nContent-Type: message/feedback-report\n\n{fields}\n"
        f"--F\nContent-Type: text/rfc822-headers\n\n{original}\n--F--\n"
    ).encode()


def test_a_forged_complaint_quoting_the_shared_ids_suppresses_no_one():
    c = _container()
    ref = _sent(c, ["carol@customer.example", "mallory@customer.example"])
    raw = _arf("carol@customer.example", ref)
    rec = _inbound(c, [f"bounce@{DOMAIN}"], raw)

    result = handle_inbound_bounce(c, rec, parse(raw))

    assert result["outcome"] == "unproven" and result["kind"] == "complaint"
    assert suppression.list_suppressed(c.kv) == [] and c.events.published == []


def test_a_complaint_is_proven_by_the_token_in_the_return_path_of_the_copy_it_reports():
    """Feedback loops send the report to the address registered with them, not to the Return-Path;
    the copy they attach keeps the Return-Path its mailbox was delivered with (RFC 5965 §2), which
    is that recipient's VERP address. The report's own Original-Mail-From field names it too."""
    c = _container()
    ref = _sent(c, ["carol@customer.example", "dan@customer.example"])
    by_return_path = _arf("someone@redacted.example", ref, return_path=_verp(c, ref, 0))
    by_field = _arf("redacted", ref, original_mail_from=_verp(c, ref, 1))

    first = handle_inbound_bounce(c, _inbound(c, ["fbl@example.test"], by_return_path), parse(by_return_path))
    second = handle_inbound_bounce(c, _inbound(c, ["fbl@example.test"], by_field), parse(by_field))

    assert (first["outcome"], second["outcome"]) == ("complaint", "complaint")
    assert suppression.is_suppressed(c.kv, DOMAIN, "carol@customer.example")["source"] == "complaint"
    assert suppression.is_suppressed(c.kv, DOMAIN, "dan@customer.example")["source"] == "complaint"
    assert suppression.is_suppressed(c.kv, DOMAIN, "someone@redacted.example") is None
    assert [e["verified_by"] for e in _events(c, "Complaint")] == ["verp", "verp"]


def test_a_complaint_carrying_a_recipients_own_token_names_only_that_recipient():
    c = _container()
    ref = _sent(c, ["carol@customer.example", "mallory@customer.example"])
    raw = _arf("carol@customer.example", ref, return_path=_verp(c, ref, 1))

    handle_inbound_bounce(c, _inbound(c, ["fbl@example.test"], raw), parse(raw))

    assert suppression.is_suppressed(c.kv, DOMAIN, "carol@customer.example") is None
    assert [e["address"] for e in _events(c, "Complaint")] == ["mallory@customer.example"]


def test_arf_complaint_suppresses_and_publishes_complaint_event():
    c = _container()
    ref = _sent(c, ["carol@customer.example"])
    raw = (
        "From: fbl@isp.example\nTo: bounce@example.test\nSubject: complaint\nMessage-ID: <fbl1@isp.example>\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\n\n"
        "--F\nContent-Type: text/plain\n\nThis is an abuse report.\n\n"
        "--F\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nUser-Agent: ISP-FBL/1.0\n"
        "Version: 1\nOriginal-Rcpt-To: carol@customer.example\n\n"
        f"--F\nContent-Type: text/rfc822-headers\n\nFrom: notifications@{DOMAIN}\nTo: carol@customer.example\n"
        f"X-Mailgate-Id: {ref}\n\n--F--\n"
    ).encode()
    rec = _inbound(c, [_verp(c, ref, 0)], raw)

    result = handle_inbound_bounce(c, rec, parse(raw))

    assert result["outcome"] == "complaint"
    entry = suppression.is_suppressed(c.kv, DOMAIN, "carol@customer.example")
    assert entry["source"] == "complaint" and "abuse" in entry["reason"]
    [event] = _events(c, "Complaint")
    assert event["feedback_type"] == "abuse" and event["address"] == "carol@customer.example"


def test_soft_bounces_are_counted_and_suppress_at_the_threshold():
    c = _container()
    results = []
    for _ in range(4):
        ref = _sent(c, ["dave@customer.example"])
        raw = _dsn("dave@customer.example", status="4.2.2", diag="452 4.2.2 Mailbox full")
        results.append(handle_inbound_bounce(c, _inbound(c, [_verp(c, ref, 0)], raw), parse(raw)))

    assert [r["recipients"][0]["action"] for r in results] == ["counted", "counted", "counted", "suppressed"]
    assert suppression.is_suppressed(c.kv, DOMAIN, "dave@customer.example")["source"] == "soft-bounces"
    assert [e["score"] for e in _events(c, "Bounce")] == [1, 2, 3, 4]
    assert all(e["permanent"] is False for e in _events(c, "Bounce"))


def test_mail_received_from_the_address_resets_its_count():
    c = _container()
    for i in range(4):
        ref = _sent(c, ["erin@customer.example"])
        raw = _dsn("erin@customer.example", status="4.2.2", diag="452 4.2.2 Mailbox full")
        handle_inbound_bounce(c, _inbound(c, [_verp(c, ref, 0)], raw), parse(raw))
    assert suppression.is_suppressed(c.kv, DOMAIN, "erin@customer.example") is not None

    done = note_inbound_from(c, "Erin@Customer.example")

    assert done["unsuppressed"] == [DOMAIN]
    assert score(c.kv, DOMAIN, "erin@customer.example") == 0
    assert suppression.is_suppressed(c.kv, DOMAIN, "erin@customer.example") is None


def test_a_flood_of_the_same_bounce_counts_once():
    c = _container()
    ref = _sent(c, ["frank@customer.example"])
    raw = _dsn("frank@customer.example", status="4.2.2", diag="452 4.2.2 Mailbox full")
    outcomes = [handle_inbound_bounce(c, _inbound(c, [_verp(c, ref, 0)], raw), parse(raw))["outcome"] for _ in range(200)]

    assert outcomes[0] == "bounced" and set(outcomes[1:]) == {"duplicate"}
    assert score(c.kv, DOMAIN, "frank@customer.example") == 1
    assert len(_events(c, "Bounce")) == 1
    assert suppression.is_suppressed(c.kv, DOMAIN, "frank@customer.example") is None


def test_bounces_for_many_messages_to_one_address_suppress_it_once():
    c = _container()
    for _ in range(30):
        ref = _sent(c, ["gina@customer.example"])
        raw = _dsn("gina@customer.example")
        handle_inbound_bounce(c, _inbound(c, [_verp(c, ref, 0)], raw), parse(raw))
    assert sum(e["newly_suppressed"] for e in _events(c, "Bounce")) == 1
    assert len(suppression.list_suppressed(c.kv, DOMAIN)) == 1


def test_auto_reply_at_the_bounce_alias_is_recorded_and_never_answered():
    c = _container()
    ref = _sent(c, ["henry@customer.example"])
    raw = (b"From: henry@customer.example\nTo: bounce@example.test\nSubject: Out of office\n"
           b"Auto-Submitted: auto-replied\nMessage-ID: <ooo@customer.example>\n\nI am away until Monday.\n")
    rec = _inbound(c, [_verp(c, ref, 0)], raw)

    result = handle_inbound_bounce(c, rec, parse(raw))

    assert result["outcome"] == "ignored" and result["kind"] == "auto-reply"
    assert suppression.list_suppressed(c.kv) == [] and c.events.published == [] and c.outbound_queue.sent == []
    assert "ignored: " in c.messages.get(rec.key).reason


def test_ses_bounce_notification_suppresses_and_is_idempotent():
    c = _container()
    event = json.loads((EVENTS / "sns-ses-bounce.json").read_text())
    _sent(c, ["nobody@customer.example"], ref="k5xq3b7yzm2a4c6e8g0i")

    first = sns_action.handle(c, event)
    second = sns_action.handle(c, copy.deepcopy(event))

    assert first["results"][0]["outcome"] == "bounced"
    assert second["results"][0]["outcome"] == "duplicate"
    assert suppression.is_suppressed(c.kv, DOMAIN, "nobody@customer.example")["source"] == "hard-bounce"
    [bounce] = _events(c, "Bounce")
    assert bounce["message_ref"] == "k5xq3b7yzm2a4c6e8g0i" and bounce["thread_id"] == "thread1"
    assert bounce["feedback_id"] == "0102019abc-bounce-feedback-000000" and bounce["source"] == "ses"


def test_ses_complaint_notification_suppresses_even_without_a_ledger_entry():
    c = _container()
    event = json.loads((EVENTS / "sns-ses-complaint.json").read_text())
    notification = json.loads(event["Records"][0]["Sns"]["Message"])

    result = handle_feedback(c, notification)

    assert result["outcome"] == "complaint"
    assert handle_feedback(c, copy.deepcopy(notification))["outcome"] == "duplicate"
    # The sending domain comes from the SES `mail.source` when our ledger has no record.
    assert suppression.is_suppressed(c.kv, DOMAIN, "nobody@customer.example")["source"] == "complaint"
    assert _events(c, "Complaint")[0]["feedback_type"] == "abuse"


def _ses_bounce(source, recipient, *, feedback_id="fb-display-name"):
    return {"notificationType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": feedback_id,
                       "bouncedRecipients": [{"emailAddress": recipient, "action": "failed", "status": "5.1.1",
                                              "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
            "mail": {"source": source, "messageId": "ses-" + feedback_id, "destination": [recipient]}}


def test_ses_bounce_from_a_source_with_an_encoded_display_name_suppresses_under_its_domain():
    # SES copies the From header into mail.source: "=?utf-8?b?...?= <relay@domain>"
    c = _container()
    source = f"=?utf-8?b?VW5mY2sgUmVsYXk=?= <relay@{DOMAIN}>"

    result = handle_feedback(c, _ses_bounce(source, "gone@customer.example"))

    assert result["outcome"] == "bounced" and result["domain"] == DOMAIN
    assert suppression.is_suppressed(c.kv, DOMAIN, "gone@customer.example")["source"] == "hard-bounce"
    assert [e["domain"] for e in _events(c, "Bounce")] == [DOMAIN]


def test_ses_addresses_with_comments_display_names_and_angle_brackets_are_read_as_addresses():
    c = _container()
    cases = [(f"relay@{DOMAIN} (Relay <x@evil.example>)", "Gone One <gone1@customer.example>"),
             (f'"Sales, Example" <relay@{DOMAIN}>', "<GONE2@Customer.Example>"),
             (f"<relay@{DOMAIN}>", "gone3@customer.example (left the company)")]
    for i, (source, recipient) in enumerate(cases):
        handle_feedback(c, _ses_bounce(source, recipient, feedback_id=f"fb{i}"))

    assert sorted(e["address"] for e in suppression.list_suppressed(c.kv, DOMAIN)) == [
        "gone1@customer.example", "gone2@customer.example", "gone3@customer.example"]
    assert {e["domain"] for e in suppression.list_suppressed(c.kv)} == {DOMAIN}


def test_ses_complaint_recipient_with_a_display_name_is_suppressed_as_its_address():
    c = _container()
    notification = {"notificationType": "Complaint",
                    "complaint": {"feedbackId": "fbc", "complaintFeedbackType": "abuse",
                                  "complainedRecipients": [{"emailAddress": "=?utf-8?q?Ann?= <ann@customer.example>"}]},
                    "mail": {"source": f"Sales <notifications@{DOMAIN}>", "messageId": "ses-c"}}

    assert handle_feedback(c, notification)["outcome"] == "complaint"
    assert suppression.is_suppressed(c.kv, DOMAIN, "ann@customer.example")["source"] == "complaint"


def test_broken_sns_records_are_reported_not_raised():
    c = _container()
    good = json.loads((EVENTS / "sns-ses-bounce.json").read_text())["Records"][0]
    event = {"Records": [{"Sns": {"Message": "{not json"}}, {"nothing": 1}, "text", good,
                         {"Sns": {"Message": json.dumps({"notificationType": "Delivery", "delivery": {}})}}]}

    result = sns_action.handle(c, event)

    assert [r["outcome"] for r in result["results"]] == ["invalid", "invalid", "invalid", "bounced", "ignored"]
    assert sns_action.handle(c, {"nope": True}) == {"processed": 0, "results": []}


def test_a_delay_warning_is_reported_but_not_counted():
    c = _container()
    ref = _sent(c, ["ivy@customer.example"])
    raw = _dsn("ivy@customer.example", status="4.4.7", diag="Delivery delayed: will keep trying").replace(
        b"Action: failed", b"Action: delayed")
    result = handle_inbound_bounce(c, _inbound(c, [_verp(c, ref, 0)], raw), parse(raw))

    assert result["recipients"][0]["action"] == "delay-noted"
    assert score(c.kv, DOMAIN, "ivy@customer.example") == 0
    [event] = _events(c, "Bounce")
    assert event["action"] == "delayed" and event["permanent"] is False and event["suppressed"] is False


def test_a_delay_warning_naming_other_mailboxes_than_the_verp_one_is_not_counted_either():
    # the token names ivy@; the relay reports the two mailboxes ivy@ was forwarded to, both delayed
    c = _container()
    ref = _sent(c, ["ivy@customer.example"])
    raw = _dsn("ivy.home@isp.example", status="4.4.7", diag="Delivery delayed: will keep trying",
               extra_recipients=("ivy.work@corp.example",)).replace(b"Action: failed", b"Action: delayed")
    result = handle_inbound_bounce(c, _inbound(c, [_verp(c, ref, 0)], raw), parse(raw))

    assert [r["action"] for r in result["recipients"]] == ["delay-noted"]
    assert score(c.kv, DOMAIN, "ivy@customer.example") == 0
    assert suppression.is_suppressed(c.kv, DOMAIN, "ivy@customer.example") is None


def test_published_events_have_exactly_the_fields_of_the_documented_samples():
    c = _container()
    ref = _sent(c, ["jack@customer.example"])
    raw = _dsn("jack@customer.example")
    handle_inbound_bounce(c, _inbound(c, [_verp(c, ref, 0)], raw), parse(raw))
    sns_action.handle(c, json.loads((EVENTS / "sns-ses-complaint.json").read_text()))

    samples = {json.loads(p.read_text())["detail-type"]: json.loads(p.read_text())["detail"]
               for p in (EVENTS / "eventbridge").glob("*.json")}
    for detail_type, detail in c.events.published:
        assert set(detail) == set(samples[detail_type]), detail_type


def test_a_store_failing_mid_way_fails_the_invocation_and_its_retry_counts_the_bounce():
    """SNS retries a failed (asynchronous) invocation: the dedup markers this one wrote must not
    make the retry a "duplicate" that counts nothing."""
    import pytest

    from mailgate.errors import TransientError

    c = _container()
    event = json.loads((EVENTS / "sns-ses-bounce.json").read_text())
    _sent(c, ["nobody@customer.example"], ref="k5xq3b7yzm2a4c6e8g0i")
    put = c.kv.put_item

    def throttled(key, value, **kw):
        if key.startswith("bscore#"):
            raise TransientError("DynamoDB: ProvisionedThroughputExceededException", code="aws-transient")
        return put(key, value, **kw)

    c.kv.put_item = throttled
    with pytest.raises(TransientError):
        sns_action.handle(c, event)
    assert suppression.is_suppressed(c.kv, DOMAIN, "nobody@customer.example") is None
    c.kv.put_item = put  # the table is back; SNS retries the invocation
    again = sns_action.handle(c, copy.deepcopy(event))
    assert again["results"][0]["outcome"] == "bounced"
    assert suppression.is_suppressed(c.kv, DOMAIN, "nobody@customer.example")["source"] == "hard-bounce"


def test_a_notification_refused_for_its_own_sake_is_reported_and_the_others_go_on():
    from mailgate.errors import PermanentError

    c = _container()
    good = json.loads((EVENTS / "sns-ses-complaint.json").read_text())["Records"][0]
    notification = json.loads(good["Sns"]["Message"])
    notification["complaint"]["feedbackId"] = "refused-by-the-table"
    bad = {**good, "Sns": {**good["Sns"], "Message": json.dumps(notification)}}
    put = c.kv.put_item

    def refusing(key, value, **kw):
        if key == "sesfb#refused-by-the-table":
            raise PermanentError("item refused", code="invalid-item")
        return put(key, value, **kw)

    c.kv.put_item = refusing
    result = sns_action.handle(c, {"Records": [bad, good]})
    assert [r["outcome"] for r in result["results"]] == ["failed", "complaint"]
    assert "item refused" in result["results"][0]["reason"]


def test_a_notification_from_another_topic_than_the_stacks_feedback_topic_is_refused():
    """The function trusts SES notifications because only SES publishes to its topic: one that
    reaches it from elsewhere (a subscription added by mistake, another account) counts nothing."""
    import dataclasses

    c = _container()
    topic = "arn:aws:sns:eu-west-1:123456789012:mailgate-ses-feedback"
    c.settings = dataclasses.replace(c.settings, feedback_topic_arn=topic)
    event = json.loads((EVENTS / "sns-ses-bounce.json").read_text())
    other = copy.deepcopy(event)
    other["Records"][0]["Sns"]["TopicArn"] = "arn:aws:sns:eu-west-1:999999999999:someone-elses-topic"

    refused = sns_action.handle(c, other)["results"][0]
    assert refused["outcome"] == "refused" and "someone-elses-topic" in refused["reason"]
    assert suppression.list_suppressed(c.kv) == [] and c.events.published == []
    assert sns_action.handle(c, event)["results"][0]["outcome"] == "bounced"


# --- a process killed mid-way (a Lambda timeout, an out-of-memory kill), then the retry ---------


class Killed(BaseException):
    """The process died here (no except clause of the code under test catches it)."""


def _killed_at(point, call):
    import pytest

    from mailgate import failpoints

    def die():
        raise Killed(point)

    failpoints.enable(point, die)
    try:
        with pytest.raises(Killed):
            call()
    finally:
        failpoints.disable()


def test_killed_between_counting_an_ses_bounce_and_publishing_it_the_retry_publishes_it_once_counted_once():
    c = _container()
    event = json.loads((EVENTS / "sns-ses-bounce.json").read_text())
    _sent(c, ["nobody@customer.example"], ref="k5xq3b7yzm2a4c6e8g0i")
    _killed_at("feedback.before-publish", lambda: sns_action.handle(c, event))
    assert _events(c, "Bounce") == []

    again = sns_action.handle(c, copy.deepcopy(event))  # SNS's retry of the failed invocation
    assert again["results"][0]["outcome"] == "bounced"
    [bounce] = _events(c, "Bounce")
    assert bounce["address"] == "nobody@customer.example" and bounce["newly_suppressed"] is True
    assert score(c.kv, DOMAIN, "nobody@customer.example") == 2  # one hard bounce, counted once
    assert suppression.is_suppressed(c.kv, DOMAIN, "nobody@customer.example")["source"] == "hard-bounce"
    assert sns_action.handle(c, copy.deepcopy(event))["results"][0]["outcome"] == "duplicate"
    assert len(_events(c, "Bounce")) == 1


def test_killed_after_publishing_a_soft_bounce_the_retry_counts_it_once_and_any_repeat_has_its_id():
    """At least once: the application drops a repeat by its event_id."""
    c = _container()
    _sent(c, ["slow@customer.example"], ref="softref0000000000001")
    notification = _ses_bounce(f"shop@{DOMAIN}", "slow@customer.example", feedback_id="fb-soft")
    notification["bounce"]["bounceType"] = "Transient"
    notification["mail"]["headers"] = [{"name": "X-Mailgate-Id", "value": "softref0000000000001"}]
    _killed_at("feedback.after-publish", lambda: handle_feedback(c, notification))

    handle_feedback(c, copy.deepcopy(notification))
    seen = _events(c, "Bounce")
    assert seen and seen[0]["message_ref"] == "softref0000000000001" and seen[0]["event_id"]
    assert all(e == seen[0] for e in seen)  # a repeat is the same event, under the same id
    assert score(c.kv, DOMAIN, "slow@customer.example") == 1  # one soft bounce, counted once
    assert handle_feedback(c, copy.deepcopy(notification))["outcome"] == "duplicate"


def test_killed_between_counting_a_dsn_and_publishing_it_the_retry_of_the_message_publishes_it_once():
    """A DSN at the bounce alias is counted by an effect of its inbound record (the outbox): the
    retry carries the effect out again, and must not take its own marker for a duplicate."""
    import time as time_mod

    from mailgate.services import inbound
    from mailgate_dev.fakes import MemoryOutbox

    c = _container()
    now = [time_mod.time()]
    c.outbox = c.inbound.outbox = MemoryOutbox(c.messages, lambda: now[0])
    c.inbound.clock = lambda: now[0]
    ref = _sent(c, ["kim@customer.example"])
    verp = _verp(c, ref, 0)
    c.raw_store.put("raw/ses/dsn1", _dsn("kim@customer.example"))
    ingest = lambda: inbound.ingest(c, "raw/ses/dsn1", source="ses", envelope_recipients=[verp])  # noqa: E731
    _killed_at("feedback.before-publish", ingest)
    assert _events(c, "Bounce") == []

    now[0] += inbound.DEFAULT_ATTEMPT_SECONDS + 1  # SES's retry, after the killed invocation's end
    record = ingest()
    assert record.outcome == "bounce" and record.detail["feedback"]["outcome"] == "bounced"
    [bounce] = _events(c, "Bounce")
    assert bounce["address"] == "kim@customer.example" and bounce["message_ref"] == ref
    assert score(c.kv, DOMAIN, "kim@customer.example") == 2
    ingest()
    assert len(_events(c, "Bounce")) == 1 and c.outbox.entries == {}


def test_an_unreachable_ledger_retries_the_notification_instead_of_losing_whose_bounce_it_is(monkeypatch):
    # the ledger read failing was taken for "no such message": the bounce lost its thread and
    # message, and the notification was marked done, never counted right
    import pytest

    from mailgate.errors import TransientError

    c = _container()
    event = json.loads((EVENTS / "sns-ses-bounce.json").read_text())
    _sent(c, ["nobody@customer.example"], ref="k5xq3b7yzm2a4c6e8g0i")
    get = c.messages.get

    def down(key):
        raise TransientError("DynamoDB throttled", code="aws-transient")

    monkeypatch.setattr(c.messages, "get", down)
    with pytest.raises(TransientError):
        handle_feedback(c, json.loads(event["Records"][0]["Sns"]["Message"]))
    assert _events(c, "Bounce") == []
    monkeypatch.setattr(c.messages, "get", get)
    second = sns_action.handle(c, event)  # SNS's retry
    assert second["results"][0]["outcome"] == "bounced"
    [bounce] = _events(c, "Bounce")
    assert bounce["thread_id"] == "thread1"
