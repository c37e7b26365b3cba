"""Every routing rule, through ingest() on the in-memory stack: what the application would see."""

from __future__ import annotations

from mailgate.domain import Thread
from mailgate.services import inbound

from .inbound_support import answers, deliver, mail, notifications, reply_address, stack


def published(c, detail_type):
    return [d for t, d in c.events.published if t == detail_type]


# --- aliases -----------------------------------------------------------------------------------

def test_mail_to_alias_asks_the_application_to_create_a_record_with_the_alias_defaults():
    c = stack()
    rec = deliver(c, mail(subject="Quote please"))
    assert rec.outcome == "new-record"
    [event] = published(c, "Record To Create")
    assert event["model"] == "crm.lead" and event["defaults"] == {"team_id": 3}
    assert event["message"]["subject"] == "Quote please" and event["message"]["from"] == "ann@customer.test"
    thread = c.threads.get_thread(rec.thread_id)
    assert thread.model == "crm.lead" and thread.followers == ["ann@customer.test"]


def test_reply_by_references_to_a_new_record_reaches_its_thread():
    c = stack()
    first = deliver(c, mail(message_id="first@customer.test"))
    rec = deliver(c, mail(to="someone@else.test", headers={"In-Reply-To": "<first@customer.test>"}),
                  recipients=["catchall@example.test"])
    assert rec.outcome == "thread" and rec.thread_id == first.thread_id
    assert "first@customer.test" in rec.reason


def test_alias_with_forced_thread_posts_into_that_thread():
    c = stack()
    rec = deliver(c, mail(to="news@example.test"), recipients=["news@example.test"])
    assert (rec.outcome, rec.thread_id) == ("thread", "newsthread")
    assert [n["to"] for n in notifications(c)] == [["editor@example.org"]]


def test_same_alias_name_in_two_alias_domains_creates_records_of_each_domains_model():
    c = stack()
    a = deliver(c, mail(to="sales@example.test"), recipients=["sales@example.test"])
    b = deliver(c, mail(to="sales@other.test"), recipients=["sales@other.test"])
    assert [d["model"] for d in published(c, "Record To Create")] == ["crm.lead", "sale.order"]
    assert a.thread_id != b.thread_id


def test_partners_alias_rejects_an_unknown_sender_with_its_own_text():
    c = stack()
    rec = deliver(c, mail(to="vip@example.test"), recipients=["vip@example.test"])
    assert rec.outcome == "rejected" and "not a known contact" in rec.reason
    [answer] = answers(c)
    assert answer["to"] == ["ann@customer.test"] and answer["text"] == "Only our customers can write to vip@."
    assert not published(c, "Record To Create")


def test_partners_alias_accepts_a_sender_with_a_contact_entry():
    c = stack()
    c.kv.put_item("contact#ann@customer.test", {"address": "ann@customer.test"})
    assert deliver(c, mail(to="vip@example.test"), recipients=["vip@example.test"]).outcome == "new-record"


def test_partners_alias_accepts_a_sender_who_started_a_thread_before():
    c = stack()
    deliver(c, mail(to="sales@example.test"))
    assert deliver(c, mail(to="vip@example.test"), recipients=["vip@example.test"]).outcome == "new-record"


def test_followers_alias_takes_mail_from_a_follower_of_its_thread_only():
    c = stack()
    ok = deliver(c, mail(frm="chair@club.test", to="board@example.test"), recipients=["board@example.test"])
    no = deliver(c, mail(frm="stranger@web.test", to="board@example.test"), recipients=["board@example.test"])
    assert (ok.outcome, ok.thread_id) == ("thread", "boardthread")
    assert no.outcome == "rejected" and "does not follow" in no.reason


# --- reply tokens and references ---------------------------------------------------------------

def test_reply_with_genuine_token_reaches_the_thread_and_notifies_other_followers():
    c = stack()
    c.threads.put_thread(Thread("t1", model="helpdesk.ticket", record_id="9",
                                followers=["ann@customer.test", "agent@example.org"]))
    addr = reply_address(c, "t1")
    rec = deliver(c, mail(to=addr, subject="Re: My ticket",
                          body="It works now.\n\nOn Mon, Agent wrote:\n> try again\n"), recipients=[addr])
    assert (rec.outcome, rec.thread_id) == ("thread", "t1")
    [event] = published(c, "Message Routed To Thread")
    assert event["reply_text"] == "It works now." and event["model"] == "helpdesk.ticket"
    [note] = notifications(c)
    assert note["to"] == ["agent@example.org"] and note["notification"] is True
    assert note["thread_id"] == "t1" and note["text"] == "It works now."  # outbound sets Reply-To from it


def test_reply_with_forged_token_is_not_routed_to_thread():
    c = stack()
    c.threads.put_thread(Thread("t1", followers=["agent@example.org"]))
    genuine = reply_address(c, "t1")
    forged = genuine.replace(genuine.split(".")[1].split("@")[0], "aaaaaaaaaaaaaaaa")
    rec = deliver(c, mail(to=forged), recipients=[forged])
    assert rec.outcome == "unknown-recipient" and rec.thread_id == ""
    assert any("not genuine" in n for n in rec.detail["route"]["notes"])
    assert not published(c, "Message Routed To Thread") and not notifications(c)


def test_token_for_a_thread_that_no_longer_exists_is_not_routed():
    c = stack()
    addr = reply_address(c, "gone")
    rec = deliver(c, mail(to=addr), recipients=[addr])
    assert rec.outcome == "unknown-recipient"


def test_references_pick_the_newest_known_message():
    c = stack()
    c.threads.put_thread(Thread("old"))
    c.threads.put_thread(Thread("new"))
    c.threads.index_message_id("a@x.test", "old")
    c.threads.index_message_id("b@x.test", "new")
    rec = deliver(c, mail(headers={"References": "<a@x.test> <b@x.test> <unknown@x.test>"}),
                  recipients=["catchall@example.test"])
    assert rec.thread_id == "new"


def test_a_strangers_message_reusing_a_known_message_id_does_not_take_the_replies_to_it():
    # A Message-ID is no secret: anyone the mail was copied to has read it.
    c = stack()
    ann = deliver(c, mail(message_id="order@customer.test", body="40 chairs, please.\n"))
    eve = deliver(c, mail(frm="eve@attacker.test", message_id="order@customer.test", body="mine now\n"))
    assert ann.outcome == eve.outcome == "new-record" and ann.thread_id != eve.thread_id
    replay = inbound.replay(c, eve.key)  # a replay of the stranger's message takes nothing either
    assert replay.thread_id == eve.thread_id

    reply = deliver(c, mail(frm="agent@example.org", to="catchall@example.test",
                            headers={"In-Reply-To": "<order@customer.test>"}), recipients=["catchall@example.test"])
    assert (reply.outcome, reply.thread_id) == ("thread", ann.thread_id)


def test_only_the_last_32_references_are_looked_at():
    c = stack()
    c.threads.put_thread(Thread("old"))
    c.threads.index_message_id("ancient@x.test", "old")
    refs = "<ancient@x.test> " + " ".join(f"<r{i}@x.test>" for i in range(40))
    rec = deliver(c, mail(to="catchall@example.test", headers={"References": refs}),
                  recipients=["catchall@example.test"])
    assert rec.outcome == "unknown-recipient"


# --- bounces -----------------------------------------------------------------------------------

def test_mail_to_the_bounce_alias_goes_to_bounce_handling_even_with_known_references():
    c = stack()
    c.threads.put_thread(Thread("t1"))
    c.threads.index_message_id("ours@example.test", "t1")
    rec = deliver(c, mail(to="bounce+abc.def@example.test", headers={"In-Reply-To": "<ours@example.test>"}),
                  recipients=["bounce+abc.def@example.test"])
    assert rec.outcome == "bounce" and rec.thread_id == ""
    assert not published(c, "Message Routed To Thread")


def test_a_delivery_status_notification_is_a_bounce_not_a_new_record():
    c = stack()
    dsn = mail(frm="Mail Delivery System <postmaster@mx.customer.test>", subject="Undelivered Mail",
               extra='Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
               body="--B\nContent-Type: text/plain\n\nfailed\n--B\nContent-Type: message/delivery-status\n\n"
                    "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; x@y.test\nAction: failed\nStatus: 5.1.1\n--B--\n")
    rec = deliver(c, dsn)
    assert rec.outcome == "bounce" and "multipart/report" in rec.reason
    assert not answers(c)


def test_mail_from_a_mailer_daemon_is_a_bounce():
    c = stack()
    assert deliver(c, mail(frm="MAILER-DAEMON@mx.test", subject="failure notice")).outcome == "bounce"


# --- auto-replies and loops --------------------------------------------------------------------

def test_auto_submitted_reply_is_recorded_not_answered_and_creates_nothing():
    c = stack()
    rec = deliver(c, mail(to="catchall@example.test", headers={"Auto-Submitted": "auto-replied"}),
                  recipients=["catchall@example.test"])
    assert rec.outcome == "auto-reply" and "RFC 3834" in rec.reason
    assert not answers(c) and not published(c, "Record To Create")
    [outcome] = published(c, "Message Outcome")
    assert outcome["outcome"] == "auto-reply"


def test_auto_submitted_no_is_a_person():
    c = stack()
    assert deliver(c, mail(headers={"Auto-Submitted": "no"})).outcome == "new-record"


def test_x_autoreply_and_x_autorespond_are_auto_replies():
    c = stack()
    assert deliver(c, mail(headers={"X-Autoreply": "yes"})).outcome == "auto-reply"
    assert deliver(c, mail(headers={"X-Autorespond": "yes"})).outcome == "auto-reply"


def test_list_mail_reaches_its_thread_but_opens_no_record_and_is_never_answered():
    # RFC 3834 §2: no automatic answer to list or bulk mail; it is not an auto-reply either.
    # DESIGN.md rule 3: it opens no new record (a newsletter to sales@ is not a lead), but a reply
    # that comes through a mailing list still reaches its thread.
    c = stack()
    digest = {"Precedence": "list", "List-Id": "<updates.lists.customer.test>"}
    newsletter = deliver(c, mail(headers={"Precedence": "bulk"}))
    assert newsletter.outcome == "bulk" and "Precedence: bulk" in newsletter.reason
    assert not published(c, "Record To Create") and answers(c) == []
    [outcome] = published(c, "Message Outcome")
    assert outcome["outcome"] == "bulk"
    first = deliver(c, mail(message_id="first@customer.test"))
    reply = deliver(c, mail(to="someone@else.test", headers={"In-Reply-To": "<first@customer.test>", **digest}),
                    recipients=["catchall@example.test"])
    assert reply.outcome == "thread" and reply.thread_id == first.thread_id
    rec = deliver(c, mail(to="nobody@example.test", headers=digest), recipients=["nobody@example.test"])
    assert rec.outcome == "bulk" and answers(c) == []
    route = rec.detail["route"]
    assert route["signals"]["bulk"] == ["Precedence: list", "List-Id header"] and route["signals"]["auto_reply"] == []


def test_list_mail_does_not_count_toward_the_senders_loop_limit():
    c = stack()
    for _ in range(25):
        deliver(c, mail(headers={"List-Id": "<news.customer.test>"}))
    assert deliver(c, mail()).outcome == "new-record"


def test_our_own_outbound_mail_coming_back_is_a_loop():
    c = stack()
    assert deliver(c, mail(headers={"X-Mailgate-Id": "abcdefghijklmnop"})).outcome == "loop"
    rec = deliver(c, mail(message_id="abcdefghijklmnop@example.test"))
    assert rec.outcome == "loop" and "one of ours" in rec.reason


def test_twenty_first_mail_from_one_sender_to_one_alias_within_two_hours_is_a_loop():
    c = stack()
    outcomes = [deliver(c, mail()).outcome for _ in range(21)]
    assert outcomes[:20] == ["new-record"] * 20 and outcomes[20] == "loop"
    assert len(published(c, "Record To Create")) == 20


def test_allow_listed_sender_is_exempt_from_the_loop_counter():
    c = stack(loop_limit=2, loop_allowlist=("@customer.test",))
    assert {deliver(c, mail()).outcome for _ in range(5)} == {"new-record"}


def test_loop_counter_is_per_alias():
    c = stack(loop_limit=2)
    assert [deliver(c, mail()).outcome for _ in range(3)] == ["new-record", "new-record", "loop"]
    assert deliver(c, mail(to="news@example.test"), recipients=["news@example.test"]).outcome == "thread"


# --- catchall and unknown aliases --------------------------------------------------------------

def test_mail_to_the_bare_catchall_gets_one_polite_answer_naming_the_fix():
    c = stack()
    rec = deliver(c, mail(to="catchall@example.test", subject="Question"), recipients=["catchall@example.test"])
    assert rec.outcome == "unknown-recipient"
    [answer] = answers(c)
    assert answer["to"] == ["ann@customer.test"] and answer["subject"] == "Re: Question"
    assert "reply to the last message you received from us" in answer["text"]
    assert answer["auto_reply"] is True  # outbound marks it Auto-Submitted: auto-replied (RFC 3834)


def test_unknown_alias_is_answered_with_the_domains_text_once_a_day():
    c = stack(bounce_text="Write to sales@example.test instead.")
    for _ in range(3):
        rec = deliver(c, mail(to="nobody@example.test"), recipients=["nobody@example.test"])
        assert rec.outcome == "unknown-recipient"
    assert [a["text"] for a in answers(c)] == ["Write to sales@example.test instead."]
    assert "already answered" in rec.detail["answer"]


def test_polite_answer_goes_to_the_envelope_sender():
    c = stack()
    deliver(c, mail(to="nobody@example.test", headers={"Return-Path": "<envelope@customer.test>"}),
            recipients=["nobody@example.test"])
    assert answers(c)[0]["to"] == ["envelope@customer.test"]


def test_null_sender_noreply_and_mail_daemon_are_never_answered():
    c = stack()
    deliver(c, mail(to="nobody@example.test", headers={"Return-Path": "<>"}), recipients=["nobody@example.test"])
    deliver(c, mail(frm="no-reply@shop.test", to="nobody@example.test"), recipients=["nobody@example.test"])
    deliver(c, mail(frm="ann@example.test", to="nobody@example.test"), recipients=["nobody@example.test"])
    assert answers(c) == []


def test_mail_for_no_configured_domain_is_recorded_and_not_answered():
    c = stack()
    rec = deliver(c, mail(to="x@elsewhere.test"), recipients=["x@elsewhere.test"])
    assert rec.outcome == "unknown-recipient" and "no recipient in a configured alias domain" in rec.reason
    assert answers(c) == []


# --- recipients from redirections --------------------------------------------------------------

def test_redirected_catchall_is_routed_from_the_original_recipient_headers():
    c = stack()
    c.threads.put_thread(Thread("t9", followers=["agent@example.org"]))
    token_addr = reply_address(c, "t9", domain="other.test")
    rec = deliver(c, mail(to=token_addr), recipients=["inbox@gateway.test"])
    assert (rec.outcome, rec.thread_id) == ("thread", "t9")
    rec2 = deliver(c, mail(to="whoever@gateway.test", headers={"X-Original-To": "sales@other.test"}),
                   recipients=["inbox@gateway.test"])
    assert rec2.outcome == "new-record" and rec2.detail["model"] == "sale.order"
    rec3 = deliver(c, mail(to="whoever@gateway.test", headers={"Delivered-To": "sales@example.test"}),
                   recipients=["inbox@gateway.test"])
    assert rec3.detail["model"] == "crm.lead"


# --- SES verdicts ------------------------------------------------------------------------------

def test_virus_and_dmarc_failures_are_quarantined_and_not_routed():
    c = stack()
    v = deliver(c, mail(), verdicts={"virus": "FAIL"})
    d = deliver(c, mail(), verdicts={"dmarc": "FAIL", "dmarc_policy": "reject"})
    assert (v.outcome, d.outcome) == ("quarantined", "quarantined")
    assert "virus" in v.reason and "DMARC" in d.reason
    assert not published(c, "Record To Create")


def test_dmarc_failure_under_a_none_policy_is_only_marked():
    c = stack()
    rec = deliver(c, mail(), verdicts={"dmarc": "FAIL", "dmarc_policy": "none"})
    assert rec.outcome == "new-record" and "dmarc FAIL" in rec.detail["route"]["notes"]


def test_spam_is_marked_by_default_and_quarantined_when_the_domain_says_so():
    c = stack()
    rec = deliver(c, mail(), verdicts={"spam": "FAIL"})
    assert rec.outcome == "new-record"
    assert published(c, "Record To Create")[0]["message"]["spam"] is True
    strict = stack(quarantine_spam=True)
    assert deliver(strict, mail(), verdicts={"spam": "FAIL"}).outcome == "quarantined"


def test_a_busy_conversation_through_reply_tokens_is_not_a_loop():
    c = stack(loop_limit=3)
    c.threads.put_thread(Thread("t1", followers=["agent@example.org"]))
    addr = reply_address(c, "t1")
    outcomes = {deliver(c, mail(to=addr), recipients=[addr]).outcome for _ in range(10)}
    assert outcomes == {"thread"}
