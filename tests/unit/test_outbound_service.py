"""The outbound service over in-memory fakes: idempotency, VERP, threads, suppression, transports."""

import email
import email.policy
import json
import time

import dkim
import pytest

from mailgate import suppression, tokens
from mailgate import compose as C
from mailgate import dkim as D
from mailgate.adapters.smtp import RecipientResult
from mailgate.domain import AliasDomain, OutgoingServer
from mailgate.entrypoints import outbound as outbound_handler
from mailgate.services import outbound
from mailgate_dev import fakes


@pytest.fixture(scope="module")
def rsa_key():
    return D.generate_key("rsa", 2048)


class FakeSender:
    """Records every transaction; answers per recipient from `replies` (default: accepted)."""

    kind = "smtp"

    def __init__(self, name="fake", replies=None):
        self.name = name
        self.replies = dict(replies or {})
        self.transactions = []
        self.closed = 0

    def send(self, envelopes, raw, *, smtputf8=False, **kw):
        out = []
        for env in envelopes:
            self.transactions.append((env.mail_from, env.rcpt, raw))
            status, code = self.replies.get(env.rcpt, ("sent", 250))
            out.append(RecipientResult(env.rcpt, status, code, f"{code} reply", "" if status == "sent" else "rcpt"))
        return out

    def close(self):
        self.closed += 1


@pytest.fixture
def c(rsa_key):
    c = fakes.in_memory()  # gateway domain example.test
    c.config.put_domain(AliasDomain("example.test", dkim_selector="mg"))
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(rsa_key))
    return c


@pytest.fixture
def lookup(rsa_key):
    return D.dnsfunc_for({"mg._domainkey.example.test": D.public_txt(rsa_key)})


def req(**over):
    base = {"idempotency_key": "order-42-confirmation", "from": "Shop <shop@example.test>",
            "to": ["bob@example.org", "carol@example.org"], "subject": "Your order", "text": "Thanks!"}
    base.update(over)
    return base


def results(c):
    return [d for t, d in c.events.published if t == outbound.SEND_RESULT]


def parsed(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_message_is_signed_and_sent_once_per_recipient_with_its_own_verp_sender(c, lookup):
    ses = FakeSender("ses")
    out = outbound.send(c, req(), senders={"ses": ses})
    assert out["status"] == "sent"
    assert [r["status"] for r in out["recipients"]] == ["sent", "sent"]
    ref = outbound.recorded_ref(c, "order-42-confirmation")
    record = c.messages.get("out:" + ref)
    for mail_from, rcpt, raw in ses.transactions:
        got_ref, index = tokens.parse_verp_address(c.token_key, mail_from)
        assert got_ref == ref and record.recipients[index] == rcpt
        assert mail_from.startswith("bounce+") and mail_from.endswith("@example.test")
        assert dkim.verify(raw, dnsfunc=lookup)
        assert not dkim.verify(raw.replace(b"Thanks!", b"Thanks?"), dnsfunc=lookup)
    m = parsed(ses.transactions[0][2])
    assert m["Message-ID"] == f"<{ref}@example.test>" and m["X-Mailgate-Id"] == ref
    assert results(c)[-1]["status"] == "sent"
    assert c.raw_store.get(record.raw_key) == ses.transactions[0][2]  # the signed bytes are kept


def test_same_idempotency_key_twice_sends_nothing_the_second_time(c):
    ses = FakeSender("ses")
    outbound.send(c, req(), senders={"ses": ses})
    again = outbound.send(c, req(), senders={"ses": ses})
    assert again["status"] == "duplicate"
    assert len(ses.transactions) == 2


def test_deferred_recipient_alone_is_retried_and_the_other_is_not_sent_again(c):
    ses = FakeSender("ses", {"carol@example.org": ("deferred", 451)})
    first = outbound.send(c, req(), senders={"ses": ses})
    assert first["status"] == "retrying"
    assert {r["address"]: r["status"] for r in first["recipients"]} == {"bob@example.org": "sent",
                                                                        "carol@example.org": "deferred"}
    ses.replies.clear()
    second = outbound.send(c, req(), senders={"ses": ses})
    assert second["status"] == "sent"
    assert [t[1] for t in ses.transactions] == ["bob@example.org", "carol@example.org", "carol@example.org"]
    assert ses.transactions[1][2] == ses.transactions[2][2]  # the very same signed bytes


def test_permanent_refusal_is_recorded_per_recipient_published_and_not_retried(c):
    ses = FakeSender("ses", {"carol@example.org": ("failed", 550)})
    out = outbound.send(c, req(), senders={"ses": ses})
    assert out["status"] == "partial"
    carol = next(r for r in out["recipients"] if r["address"] == "carol@example.org")
    assert carol["status"] == "failed" and carol["code"] == 550
    assert outbound.send(c, req(), senders={"ses": ses})["status"] == "duplicate"
    assert len(ses.transactions) == 2
    assert results(c)[0]["recipients"][1]["status"] == "failed"


def test_suppressed_recipient_is_skipped_with_the_reason_recorded(c):
    suppression.suppress(c.kv, "example.test", "carol@example.org", "hard bounce 5.1.1", source="bounce")
    ses = FakeSender("ses")
    out = outbound.send(c, req(), senders={"ses": ses})
    assert [t[1] for t in ses.transactions] == ["bob@example.org"]
    carol = next(r for r in out["recipients"] if r["address"] == "carol@example.org")
    assert carol["status"] == "suppressed" and "hard bounce 5.1.1" in carol["detail"]
    assert out["status"] == "partial"


@pytest.mark.parametrize("bad,code", [
    ({"subject": "Hi\r\nBcc: everyone@example.org"}, "header-injection"),
    ({"to": ["not-an-address"]}, "bad-address"),
    ({"thread_id": "nosuchthread"}, "unknown-thread"),
    ({"text": "x" * (C.MAX_MESSAGE_BYTES + 10)}, "too-large"),
])
def test_invalid_request_gets_a_clear_error_event_and_nothing_is_sent(c, bad, code):
    ses = FakeSender("ses")
    out = outbound.send(c, req(**bad), senders={"ses": ses})
    assert out["status"] == "rejected" and out["error"] == code
    assert out["reason"]
    assert results(c)[-1]["error"] == code
    assert ses.transactions == []


def test_request_that_is_not_an_object_is_rejected_not_crashed(c):
    assert outbound.send(c, ["nope"])["status"] == "rejected"


def test_record_gets_a_thread_on_first_use_and_the_next_message_continues_it(c):
    ses = FakeSender("ses")
    rec = {"model": "sale.order", "id": "42"}
    outbound.send(c, req(record=rec, to=["bob@example.org"]), senders={"ses": ses})
    thread = c.threads.find_thread_for_record("sale.order", "42")
    assert thread is not None
    first = parsed(ses.transactions[0][2])
    reply_to = first["Reply-To"].addresses[0]
    assert tokens.parse_reply_address(c.token_key, reply_to.addr_spec) == thread.thread_id
    assert len(reply_to.display_name) <= C.MAX_REPLY_TO_NAME
    bare = first["Message-ID"].strip("<>")
    assert c.threads.threads_for_message_ids([bare]) == {bare: thread.thread_id}
    outbound.send(c, req(idempotency_key="order-42-shipped", record=rec, to=["bob@example.org"]),
                  senders={"ses": ses})
    second = parsed(ses.transactions[1][2])
    assert second["In-Reply-To"] == first["Message-ID"]
    assert second["References"] == first["Message-ID"]
    assert c.threads.find_thread_for_record("sale.order", "42").thread_id == thread.thread_id
    by_id = outbound.send(c, req(idempotency_key="x", thread_id=thread.thread_id, to=["bob@example.org"]),
                          senders={"ses": ses})
    assert by_id["thread_id"] == thread.thread_id


def test_a_message_reusing_the_message_id_ses_gave_our_mail_does_not_take_the_replies_to_it(c):
    # Our own Message-IDs come back as loops; the one SES puts on the mail it sends is not ours by
    # its domain, and bob (and whoever he forwards the mail to) has read it.
    from mailgate.domain import Alias
    from mailgate.services import inbound

    c.config.put_alias(Alias("example.test", "sales", "crm.lead"))
    sent = outbound.send(c, req(record={"model": "sale.order", "id": "42"}, to=["bob@example.org"]),
                         senders={"ses": fakes.MemorySender("ses")})
    ses_id = outbound.ses_message_id(c.messages.get(f"out:{sent['ref']}").detail["recipients"][0]["transport_id"],
                                     c.settings.region)

    def ingest(key, raw):
        c.raw_store.put(key, raw.encode())
        return inbound.ingest(c, key, source="ses", envelope_recipients=["sales@example.test"])

    eve = ingest("raw/ses/eve", f"From: eve@attacker.example\nTo: sales@example.test\nSubject: Hi\n"
                                f"Message-ID: <{ses_id}>\n\nmine now\n")
    assert eve.outcome == "new-record" and eve.thread_id != sent["thread_id"]
    reply = ingest("raw/ses/bob", f"From: bob@example.org\nTo: sales@example.test\nSubject: Re: Your order\n"
                                  f"Message-ID: <r1@example.org>\nIn-Reply-To: <{ses_id}>\n\nThanks\n")
    assert (reply.outcome, reply.thread_id) == ("thread", sent["thread_id"])


def test_notification_is_marked_auto_submitted(c):
    ses = FakeSender("ses")
    outbound.send(c, req(notification=True), senders={"ses": ses})
    assert parsed(ses.transactions[0][2])["Auto-Submitted"] == "auto-generated"


def server(name, from_filter="", priority=10):
    return OutgoingServer(name=name, host="smtp.example.net", port=587, user="u", from_filter=from_filter,
                          priority=priority)


def box(address, name="Ann"):
    return C.Address(name, address)


def test_server_naming_the_exact_address_wins_over_one_naming_the_domain():
    servers = [server("domain", "customer.example", priority=1), server("exact", "ann@customer.example", priority=5)]
    sel = outbound.select_transport(servers, box("ann@customer.example"), ses_domains=set(),
                                    default_from="notifications@example.test")
    assert sel.transport == "exact" and not sel.rewritten


def test_domain_filters_are_tried_by_priority_and_lists_are_split_on_commas():
    servers = [server("b", "other.example, customer.example", priority=5), server("a", "customer.example", priority=9)]
    sel = outbound.select_transport(servers, box("bob@Customer.example"), ses_domains=set(),
                                    default_from="notifications@example.test")
    assert sel.transport == "b"


def test_server_without_filter_sends_any_from_before_ses():
    servers = [server("other", "other.example"), server("open")]
    sel = outbound.select_transport(servers, box("ann@customer.example"), ses_domains={"customer.example"},
                                    default_from="notifications@example.test")
    assert sel.transport == "open" and sel.author.address == "ann@customer.example"


def test_ses_sends_for_its_own_domains():
    sel = outbound.select_transport([server("other", "other.example")], box("ann@example.test"),
                                    ses_domains={"example.test"}, default_from="notifications@example.test")
    assert sel.transport == "ses" and not sel.rewritten


def test_from_becomes_notifications_keeping_the_author_name_when_nobody_may_send_for_the_domain():
    sel = outbound.select_transport([server("other", "other.example")], box("ann@gmail.example", "Ann Lee"),
                                    ses_domains={"example.test"}, default_from="notifications@example.test")
    assert sel.rewritten and sel.transport == "ses"
    assert sel.author == C.Address("Ann Lee", "notifications@example.test")
    sel = outbound.select_transport([server("ours", "example.test")], box("ann@gmail.example", ""),
                                    ses_domains=set(), default_from="notifications@example.test")
    assert sel.transport == "ours" and sel.author.name == "ann@gmail.example"


def test_rewritten_from_is_what_the_recipient_sees_and_what_dkim_signs(c, lookup):
    ses = FakeSender("ses")
    out = outbound.send(c, req(**{"from": "Ann Lee <ann@gmail.example>"}), senders={"ses": ses})
    assert out["from_rewritten"] and out["from"] == "notifications@example.test"
    raw = ses.transactions[0][2]
    sender = parsed(raw)["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Ann Lee", "notifications@example.test")
    assert dkim.verify(raw, dnsfunc=lookup)


def test_smtp_server_matching_from_filter_is_used_and_its_envelope_is_verp_when_allowed(c):
    c.config.put_outgoing(server("relay", "example.test"))
    relay = FakeSender("relay")
    out = outbound.send(c, req(), senders={"relay": relay, "ses": FakeSender("ses")})
    assert out["transport"] == "relay"
    assert all(t[0].startswith("bounce+") for t in relay.transactions)


def test_envelope_sender_is_the_author_when_the_server_only_allows_that_address(c):
    c.config.put_outgoing(server("o365", "shop@example.test"))
    relay = FakeSender("o365")
    outbound.send(c, req(), senders={"o365": relay})
    assert {t[0] for t in relay.transactions} == {"shop@example.test"}


def test_missing_dkim_key_rejects_with_the_fix_and_a_later_retry_sends(c, rsa_key):
    c.secrets.delete("mailgate/dkim/example.test/mg")
    ses = FakeSender("ses")
    out = outbound.send(c, req(), senders={"ses": ses})
    assert out["status"] == "rejected" and "mailgate dkim keygen example.test" in out["reason"]
    assert ses.transactions == []
    c.secrets.put("mailgate/dkim/example.test/mg", D.private_pem(rsa_key))
    c.signing_keys.forget()  # as `mailgate dkim keygen` does
    assert outbound.send(c, req(), senders={"ses": ses})["status"] == "sent"


def test_a_send_interrupted_mid_transaction_is_never_repeated(c):
    class Crash(BaseException):
        pass

    class CrashingSender(FakeSender):
        def send(self, envelopes, raw, **kw):
            if envelopes[0].rcpt == "carol@example.org":
                raise Crash()  # the process dies while talking to the server
            return super().send(envelopes, raw, **kw)

    with pytest.raises(Crash):
        outbound.send(c, req(), senders={"ses": CrashingSender("ses")})
    ses = FakeSender("ses")
    out = outbound.send(c, req(), senders={"ses": ses})
    carol = next(r for r in out["recipients"] if r["address"] == "carol@example.org")
    assert carol["status"] == "unknown" and "not re-sent" in carol["detail"]
    assert ses.transactions == []


def test_a_message_another_worker_is_sending_is_left_for_later(c):
    ref = outbound.claim_ref(c, "order-42-confirmation")
    c.kv.put_item(f"outlease#{ref}", {"since": 0}, ttl_seconds=60)
    ses = FakeSender("ses")
    assert outbound.send(c, req(), senders={"ses": ses})["status"] == "retrying"
    assert ses.transactions == []


def test_a_send_out_of_time_starts_no_transaction_and_leaves_the_recipients_to_its_retry(c):
    ses = FakeSender("ses")
    late = outbound.send(c, req(), senders={"ses": ses}, deadline=time.monotonic())
    assert late["status"] == "retrying"
    assert [r["status"] for r in late["recipients"]] == ["pending", "pending"] and ses.transactions == []
    again = outbound.send(c, req(), senders={"ses": ses})
    assert again["status"] == "sent" and [t[1] for t in ses.transactions] == ["bob@example.org", "carol@example.org"]


def test_a_batch_out_of_time_hands_its_requests_out_again(c):
    ses = FakeSender("ses")
    event = {"Records": [{"messageId": "m1", "receiptHandle": "h1", "body": json.dumps(req())}]}
    out = outbound_handler.handle(c, event, deadline=time.monotonic(), senders=outbound.Senders(c, {"ses": ses}))
    assert out == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert ses.transactions == [] and c.outbound_queue.delays == [("h1", 30)]


def test_sqs_batch_reports_only_deferred_messages_as_failures(c):
    ses = FakeSender("ses", {"later@example.org": ("deferred", 421)})
    event = {"Records": [
        {"messageId": "m1", "body": json.dumps(req(idempotency_key="a", to=["bob@example.org"]))},
        {"messageId": "m2", "body": "{not json"},
        {"messageId": "m3", "body": json.dumps(req(idempotency_key="b", to=["later@example.org"]))},
        {"messageId": "m4", "body": json.dumps(req(idempotency_key="c", to=["bad address"]))},
    ]}
    out = outbound_handler.handle(c, event, senders=outbound.Senders(c, {"ses": ses}))
    assert out == {"batchItemFailures": [{"itemIdentifier": "m3"}]}
    assert [d["status"] for d in results(c)] == ["sent", "rejected", "retrying", "rejected"]


def test_sample_sqs_event_is_a_valid_request(c):
    import pathlib

    event = json.loads((pathlib.Path(__file__).parents[2] / "events" / "sqs-outbound.json").read_text())
    ses = FakeSender("ses")
    c.config.put_domain(AliasDomain("example.test", dkim_selector="mg"))
    out = outbound_handler.handle(c, event, senders=outbound.Senders(c, {"ses": ses}))
    assert out == {"batchItemFailures": []}
    assert results(c)[0]["status"] == "sent"


def test_deferred_sqs_message_comes_back_later_each_time(c):
    ses = FakeSender("ses", {"later@example.org": ("deferred", 451)})
    for count in ("1", "2", "3", "9"):
        event = {"Records": [{"messageId": "m", "receiptHandle": "h", "attributes": {"ApproximateReceiveCount": count},
                              "body": json.dumps(req(idempotency_key="slow", to=["later@example.org"]))}]}
        assert outbound_handler.handle(c, event, senders=outbound.Senders(c, {"ses": ses})) == {
            "batchItemFailures": [{"itemIdentifier": "m"}]}
    assert c.outbound_queue.delays == [("h", 30), ("h", 60), ("h", 120), ("h", 900)]


# --- identifiers nobody outside can compute -------------------------------------------------------


def _derived_ref(idempotency_key: str) -> str:
    """What a stranger computes from a guessable idempotency key (refs were once derived so)."""
    import base64
    import hashlib

    return base64.b32encode(hashlib.sha256(b"mailgate-out:" + idempotency_key.encode()).digest()).decode().lower()[:16]


def test_a_stranger_cannot_compute_the_message_id_of_a_guessable_request_and_join_its_thread(c):
    from mailgate.services import inbound

    ses = FakeSender("ses")
    key = "invoice-42-reminder-1"
    sent = outbound.send(c, req(idempotency_key=key, record={"model": "account.move", "id": "42"},
                                to=["bob@example.org"]), senders={"ses": ses})
    m = parsed(ses.transactions[0][2])
    guessed = _derived_ref(key)
    assert guessed not in (sent["ref"], m["X-Mailgate-Id"]) and guessed not in m["Message-ID"]
    assert guessed not in ses.transactions[0][0]  # nor the VERP token's payload
    c.config.put_domain(AliasDomain("example.test", dkim_selector="mg"))
    attack = (f"From: eve@attacker.example\nTo: catchall@example.test\nSubject: Re: Invoice 42\n"
              f"Message-ID: <eve1@attacker.example>\nIn-Reply-To: <{guessed}@example.test>\n\n"
              "Please pay to my account instead.\n").encode()
    c.raw_store.put("raw/ses/eve1", attack)
    routed = inbound.ingest(c, "raw/ses/eve1", source="ses", envelope_recipients=["catchall@example.test"])
    assert routed.outcome != "thread" and routed.thread_id != sent["thread_id"]
    # and the same key on another stack (or a fresh ledger) gives another, unrelated ref
    other = fakes.in_memory()
    other.config.put_domain(AliasDomain("example.test", dkim_selector="mg"))
    other.secrets.put("mailgate/dkim/example.test/mg", c.secrets.get("mailgate/dkim/example.test/mg"))
    assert outbound.send(other, req(idempotency_key=key), senders={"ses": FakeSender("ses")})["ref"] != sent["ref"]


def test_a_retried_request_reuses_the_ref_recorded_the_first_time(c):
    ses = FakeSender("ses", {"carol@example.org": ("deferred", 451)})
    first = outbound.send(c, req(), senders={"ses": ses})
    ses.replies.clear()
    again = outbound.send(c, req(), senders={"ses": ses})
    assert again["ref"] == first["ref"] == outbound.recorded_ref(c, "order-42-confirmation")
    assert {parsed(raw)["Message-ID"] for _, _, raw in ses.transactions} == {f"<{first['ref']}@example.test>"}


def test_a_request_recorded_before_refs_were_random_is_finished_not_sent_again(c):
    """A retry that arrives after the upgrade finds the record its first attempt made under the
    ref derived from its key, and sends only to the recipients still pending."""
    ses = FakeSender("ses", {"carol@example.org": ("deferred", 451)})
    first = outbound.send(c, req(), senders={"ses": ses})
    record = c.messages.get("out:" + first["ref"])
    old = _derived_ref("order-42-confirmation")
    record.key, record.raw_key = "out:" + old, f"outbound/{old}.eml"
    c.messages.claim(record)
    c.raw_store.put(record.raw_key, c.raw_store.get(f"outbound/{first['ref']}.eml"))
    fresh = fakes.in_memory()  # the ledger as the previous version left it: no ref recorded per key
    fresh.messages, fresh.raw_store, fresh.config, fresh.secrets = c.messages, c.raw_store, c.config, c.secrets
    ses.replies.clear()
    again = outbound.send(fresh, req(), senders={"ses": ses})
    assert again["ref"] == old and again["status"] == "sent"
    assert [rcpt for _, rcpt, _ in ses.transactions] == ["bob@example.org", "carol@example.org", "carol@example.org"]


# --- attachments only from the request's own upload prefix -------------------------------------


def test_a_request_cannot_attach_a_stored_inbound_message_or_anything_outside_its_upload_prefix(c):
    """An attachment key `raw/ses/...` mailed a stored inbound message to an outsider."""
    ses = FakeSender("ses")
    c.raw_store.put("raw/ses/0a1b2c", b"From: ceo@example.test\r\nSubject: salaries\r\n\r\nconfidential\r\n")
    c.raw_store.put("outbound/uploads/other-request/contract.pdf", b"%PDF other customer's contract")
    for key in ("raw/ses/0a1b2c", "outbound/uploads/other-request/contract.pdf", "att/in:msg:1/1-x.pdf",
                "outbound/uploads/order-42-confirmation-2/x.pdf", "outbound/uploads/order-42-confirmation/"):
        out = outbound.send(c, req(idempotency_key="order-42-confirmation", to=["eve@attacker.example"],
                                   attachments=[key]), senders={"ses": ses})
        assert out["status"] == "rejected" and out["error"] == "attachment-not-allowed", (key, out)
        assert "outbound/uploads/order-42-confirmation/" in out["reason"]
    assert ses.transactions == []


def test_a_request_attaches_what_was_uploaded_under_its_own_prefix(c):
    ses = FakeSender("ses")
    key = "invoice 42/reminder#1"  # any idempotency key: URL-quoted in the prefix, '/' too
    prefix = outbound.upload_prefix(key)
    assert prefix == "outbound/uploads/invoice%2042%2Freminder%231/"
    c.raw_store.put(prefix + "invoice.pdf", b"%PDF-1.4 invoice 42")
    out = outbound.send(c, req(idempotency_key=key, attachments=[prefix + "invoice.pdf"]), senders={"ses": ses})
    assert out["status"] == "sent"
    assert b'filename="invoice.pdf"' in ses.transactions[0][2]
