"""The fetch worker against a real Dovecot (IMAP, IMAPS, STARTTLS, POP3 STLS, POP3S) with its own CA.

Every case ends by checking what a person would check: every message stored exactly once in the
ledger and the raw store, and what the mailbox on the server looks like afterwards.
"""

from __future__ import annotations

import hashlib
import imaplib
import socket
import ssl
import threading
import time
from email.parser import BytesHeaderParser

import pytest

from mailgate.adapters.imap import ImapMailbox
from mailgate.adapters.mailboxes import NetMailboxes
from mailgate.ports import Timeouts
from mailgate.domain import IncomingServer, MessageRecord, server_secret_id
from mailgate.entrypoints import fetch_worker
from mailgate.errors import PermanentError
from mailgate.services import fetch
from mailgate_dev import fakes

pytestmark = pytest.mark.integration


def make_raw(n: int, tag: str = "t", size: int = 600) -> bytes:
    body = "".join(f"line {i} of message {n} {'-' * 40}\r\n" for i in range(max(1, size // 60)))
    return (f"From: Customer {n} <c{n}@example.org>\r\nTo: shop@example.net\r\n"
            f"Subject: order {n}\r\nMessage-ID: <{tag}-{n}@example.org>\r\n"
            f"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n{body}").encode()


def ingest(c, raw_key, *, source, envelope_recipients, verdicts=None, deadline=None, raw=None):
    """A small real ingest: one MessageRecord per Message-ID (else per digest), claimed once."""
    raw = c.raw_store.get(raw_key)
    mid = (BytesHeaderParser().parsebytes(raw).get("Message-ID") or "").strip()
    digest = hashlib.sha256(raw).hexdigest()
    record = MessageRecord(key=f"mid:{mid}" if mid else f"sha:{digest}", raw_key=raw_key,
                           source=source, message_id=mid, digest=digest, outcome="routed")
    c.messages.claim(record)
    return record


def container(dovecot):
    return fakes.in_memory(mailboxes=NetMailboxes(cafile=str(dovecot.ca_pem)))


def add_server(c, dovecot, user, *, name="shop", protocol="imap", security="ssl", port=None,
               password="secret", **kw) -> IncomingServer:
    if port is None:
        port = {("imap", "ssl"): dovecot.imaps_port, ("imap", "starttls"): dovecot.imap_port,
                ("pop", "ssl"): dovecot.pop3s_port, ("pop", "starttls"): dovecot.pop3_port,
                ("imap", "none"): dovecot.imap_port, ("pop", "none"): dovecot.pop3_port}[(protocol, security)]
    server = IncomingServer(name=name, protocol=protocol, host="127.0.0.1", port=port, user=user,
                            security=security, **kw)
    c.config.put_incoming(server)
    c.secrets.put(server_secret_id("mailgate/server/", protocol, name), password)  # where the worker looks
    return server


def run(c, name="shop", max_messages=10_000, budget=120.0, **kw):
    return fetch.fetch_mailbox(c, name, deadline=time.monotonic() + budget, max_messages=max_messages,
                               ingest=kw.pop("ingest", ingest), **kw)


def person(dovecot, user) -> imaplib.IMAP4_SSL:
    """A mail client a person uses, to look at (and change) the mailbox."""
    ctx = ssl.create_default_context(cafile=str(dovecot.ca_pem))
    m = imaplib.IMAP4_SSL("127.0.0.1", dovecot.imaps_port, ssl_context=ctx, timeout=10)
    m.login(user, "secret")
    return m


def flags_by_message_id(dovecot, user, folder="INBOX") -> dict[str, str]:
    m = person(dovecot, user)
    try:
        typ, data = m.select(f'"{folder}"', readonly=True)
        if int(data[0]) == 0:
            return {}
        typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        out = {}
        for entry in data:
            if isinstance(entry, tuple):
                mid = BytesHeaderParser().parsebytes(entry[1]).get("Message-ID", "").strip()
                out[mid] = entry[0].decode()
        return out
    finally:
        m.logout()


def ledger(c) -> list[str]:
    return sorted(r.key for r in c.messages.list(limit=1_000_000))


def test_imaps_fetch_stores_each_message_once_and_marks_it_seen_only_after(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, ack="seen")
    for n in range(20):
        dovecot.deliver(mailbox_user, make_raw(n))
    res = run(c)
    assert (res.status, res.fetched, res.stored, res.acked) == ("ok", 20, 20, 20), res
    assert ledger(c) == sorted(f"mid:<t-{n}@example.org>" for n in range(20))
    assert all("\\Seen" in f for f in flags_by_message_id(dovecot, mailbox_user).values())
    stored = {c.raw_store.get(k) for k in c.raw_store.objects}
    assert make_raw(7) in stored  # byte for byte what the server holds
    again = run(c)
    assert again.fetched == 0 and c.raw_store.puts == 20
    assert fetch.health(c, "shop")["consecutive_failures"] == 0


def test_starttls_on_the_plain_port_fetches_over_verified_tls(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, security="starttls", ack="leave")
    dovecot.deliver(mailbox_user, make_raw(1))
    res = run(c)
    assert res.status == "ok" and res.fetched == 1, res


def test_plaintext_is_refused_unless_the_server_opts_in(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, security="none", ack="leave")
    dovecot.deliver(mailbox_user, make_raw(1))
    res = run(c)
    assert res.status == "failed" and res.error_code == "plaintext-refused"
    assert "allow_plaintext" in res.error
    add_server(c, dovecot, mailbox_user, security="none", ack="leave", allow_plaintext=True)
    assert run(c).fetched == 1


def test_mail_already_read_by_a_person_is_fetched_and_leave_changes_no_flag(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, ack="leave")
    dovecot.deliver(mailbox_user, make_raw(1), seen=True)
    dovecot.deliver(mailbox_user, make_raw(2))
    before = flags_by_message_id(dovecot, mailbox_user)
    res = run(c)
    assert res.fetched == 2 and len(ledger(c)) == 2
    after = flags_by_message_id(dovecot, mailbox_user)
    assert "\\Seen" in after["<t-1@example.org>"]
    assert "\\Seen" not in after["<t-2@example.org>"]  # BODY.PEEK[]: reading changed nothing
    assert before == after


def test_wrong_password_is_reported_as_authentication_failed(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, password="wrong")
    res = run(c)
    assert res.status == "failed" and res.error_code == "auth-failed" and not res.transient
    h = fetch.health(c, "shop")
    assert h["last_error"].startswith("authentication failed") and h["consecutive_failures"] == 1
    assert "fix the user name or the password" in h["last_error"]
    steps = fetch.test_connection(c, c.config.get_incoming("shop"))
    assert [(s.name, s.ok) for s in steps] == [("connect", True), ("tls", True), ("login", False)]


def test_pop3_wrong_password_is_reported_as_authentication_failed(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, protocol="pop", password="wrong")
    res = run(c)
    assert res.status == "failed" and res.error_code == "auth-failed"


def test_certificate_from_an_unknown_ca_is_not_trusted_by_default(dovecot, mailbox_user):
    c = fakes.in_memory(mailboxes=NetMailboxes())  # system trust store only: our test CA is not in it
    add_server(c, dovecot, mailbox_user)
    res = run(c)
    assert res.status == "failed" and res.error_code == "tls-untrusted"
    assert "certificate not trusted" in res.error
    steps = fetch.test_connection(c, c.config.get_incoming("shop"))
    assert [(s.name, s.ok) for s in steps] == [("connect", True), ("tls", False)]
    assert fetch.health(c, "shop")["last_error"].startswith("certificate not trusted")


def test_certificate_for_another_host_name_is_refused(dovecot, mailbox_user):
    c = container(dovecot)
    server = add_server(c, dovecot, mailbox_user)
    box = ImapMailbox(IncomingServer(**{**server.__dict__, "host": "mail.other.test"}), "secret",
                      cafile=str(dovecot.ca_pem),
                      socket_factory=lambda h, p, t: socket.create_connection(("127.0.0.1", p), t))
    with pytest.raises(PermanentError) as err:
        box.connect()
    assert err.value.code == "tls-untrusted"


def test_host_that_accepts_and_never_answers_times_out(dovecot):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # the kernel completes the handshake; nobody ever speaks
    try:
        c = container(dovecot)
        for protocol, security in (("imap", "ssl"), ("imap", "starttls"), ("pop", "ssl")):
            add_server(c, dovecot, "nobody", protocol=protocol, security=security,
                       port=silent.getsockname()[1])
            factory = NetMailboxes(cafile=str(dovecot.ca_pem), timeouts=Timeouts(connect=1, login=1, command=1))
            started = time.monotonic()
            res = run(c, mailbox_factory=factory)
            assert res.status == "failed" and res.error_code == "timeout" and res.transient
            assert time.monotonic() - started < 5
        assert fetch.health(c, "shop")["last_error"].startswith("timed out")
    finally:
        silent.close()


def test_closed_port_is_reported_as_host_unreachable(dovecot):
    c = container(dovecot)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    add_server(c, dovecot, "nobody", port=port)
    res = run(c)
    assert res.error_code == "unreachable" and res.transient
    assert fetch.health(c, "shop")["last_error"].startswith("host unreachable")


def test_uidvalidity_reset_refetches_without_storing_anything_twice(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, ack="leave")
    for n in range(10):
        dovecot.deliver(mailbox_user, make_raw(n))
    assert run(c).fetched == 10
    old = c.kv.get_item("cursor#shop")["uidvalidity"]
    dovecot.reset_uidvalidity(mailbox_user)
    dovecot.deliver(mailbox_user, make_raw(10))
    res = run(c)
    assert res.uidvalidity_reset and res.fetched == 11 and res.duplicates == 10 and res.stored == 1
    assert c.kv.get_item("cursor#shop")["uidvalidity"] != old
    assert len(ledger(c)) == 11 and c.raw_store.puts == 11


def test_message_deleted_between_runs_is_no_trouble(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, ack="leave")
    for n in range(3):
        dovecot.deliver(mailbox_user, make_raw(n))
    assert run(c).fetched == 3
    m = person(dovecot, mailbox_user)
    m.select("INBOX")
    m.store("2", "+FLAGS", "(\\Deleted)")
    m.expunge()
    m.logout()
    for n in range(3, 5):
        dovecot.deliver(mailbox_user, make_raw(n))
    res = run(c)
    assert res.status == "ok" and res.fetched == 2 and len(ledger(c)) == 5


def test_pop3_message_deleted_between_runs_and_delete_ack(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, protocol="pop", security="starttls", ack="leave")
    for n in range(3):
        dovecot.deliver(mailbox_user, make_raw(n))
    assert run(c).fetched == 3
    dovecot.message_files(mailbox_user)[0].unlink()  # someone deleted one on the server
    dovecot.deliver(mailbox_user, make_raw(3))
    res = run(c)
    assert res.status == "ok" and res.fetched == 1 and len(ledger(c)) == 4
    add_server(c, dovecot, mailbox_user, protocol="pop", security="ssl", ack="delete")
    dovecot.deliver(mailbox_user, make_raw(4))
    res = run(c)
    assert res.fetched == 1 and "re-deleted 3" in " ".join(res.notes)
    assert dovecot.message_files(mailbox_user) == [] and len(ledger(c)) == 5


class Crash(BaseException):
    """The process dying: not an Exception, so no handler in the worker can swallow it."""


def crashing_factory(dovecot, where: str):
    """Real mailboxes; the first one dies at `where` (after the raw messages are stored)."""
    state = {"armed": True}
    base = NetMailboxes(cafile=str(dovecot.ca_pem))

    def make(server, password):
        box = base(server, password)
        if state["armed"]:
            state["armed"] = False
            original = getattr(box, where)

            def die(*a, **kw):
                if where == "ack":
                    raise Crash("killed between storing and acknowledging")
                original(*a, **kw)
                raise Crash(f"killed right after {where}")

            setattr(box, where, die)
        return box

    return make


@pytest.mark.parametrize("protocol,ack,where", [
    ("imap", "seen", "ack"), ("imap", "move", "ack"), ("imap", "delete", "ack"),
    ("imap", "seen", "ingest"), ("imap", "delete", "ingest"), ("imap", "seen", "fetch"),
    ("pop", "delete", "ack"), ("pop", "delete", "commit"), ("pop", "delete", "ingest"),
])
def test_crash_between_storing_and_acknowledging_loses_and_duplicates_nothing(
        dovecot, mailbox_user, protocol, ack, where):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, protocol=protocol, ack=ack, move_to="Archive")
    for n in range(30):
        dovecot.deliver(mailbox_user, make_raw(n))
    calls = []

    def dying_ingest(c_, raw_key, **kw):
        calls.append(raw_key)
        if len(calls) == 10:
            raise Crash("killed after 10 messages were stored, before any acknowledgement")
        return ingest(c_, raw_key, **kw)

    with pytest.raises(Crash):
        if where == "ingest":
            run(c, ingest=dying_ingest)
        else:
            run(c, mailbox_factory=crashing_factory(dovecot, where))
    if where == "ingest":
        assert len(flags_by_message_id(dovecot, mailbox_user)) == 30  # nothing acknowledged
    c.kv.delete_item("lease#shop")  # the dead worker's lease; it would expire on its own
    res = run(c)
    assert res.status == "ok", res
    assert ledger(c) == sorted(f"mid:<t-{n}@example.org>" for n in range(30))
    assert c.raw_store.puts == 30  # content-addressed: the retry stored nothing twice
    inbox = flags_by_message_id(dovecot, mailbox_user)
    if ack == "seen":
        assert len(inbox) == 30 and all("\\Seen" in f for f in inbox.values())
    else:
        assert inbox == {}
    if ack == "move":
        assert len(flags_by_message_id(dovecot, mailbox_user, "Archive")) == 30


def test_two_workers_on_the_same_mailbox_store_each_message_once(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, ack="move", move_to="Archive")
    for n in range(200):
        dovecot.deliver(mailbox_user, make_raw(n))
    results = []
    second = {}
    base = NetMailboxes(cafile=str(dovecot.ca_pem))

    def first_factory(server, password):
        box = base(server, password)
        original = box.fetch

        def fetch_while_another_worker_starts(items):
            if not second:
                t = threading.Thread(target=lambda: second.setdefault("res", run(c)))
                t.start()
                t.join()
            yield from original(items)

        box.fetch = fetch_while_another_worker_starts
        return box

    results.append(run(c, mailbox_factory=first_factory))
    assert second["res"].status == "busy" and second["res"].fetched == 0
    # and two truly concurrent workers, with nothing forced
    for n in range(200, 400):
        dovecot.deliver(mailbox_user, make_raw(n))
    threads = [threading.Thread(target=lambda: results.append(run(c))) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sum(r.fetched for r in results) + second["res"].fetched == 400
    assert len(ledger(c)) == 400 and c.raw_store.puts == 400
    assert flags_by_message_id(dovecot, mailbox_user) == {}
    assert len(flags_by_message_id(dovecot, mailbox_user, "Archive")) == 400


def test_poison_message_is_kept_with_its_error_and_the_mailbox_moves_on(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, ack="delete")
    for n in range(5):
        dovecot.deliver(mailbox_user, make_raw(n))

    def picky_ingest(c_, raw_key, **kw):
        if b"<t-2@example.org>" in c_.raw_store.get(raw_key):
            raise ValueError("router cannot parse this")
        return ingest(c_, raw_key, **kw)

    res = run(c, ingest=picky_ingest)
    assert res.ingested == 4 and res.failed == 1 and res.acked == 5
    failed = [r for r in c.messages.list() if r.outcome == "failed"]
    assert len(failed) == 1 and "router cannot parse this" in failed[0].reason
    assert b"<t-2@example.org>" in c.raw_store.get(failed[0].raw_key)  # kept for a replay
    assert run(c, ingest=picky_ingest).fetched == 0  # never fetched again


def test_message_that_came_through_ses_and_a_fetch_is_recorded_once(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user)
    raw = make_raw(1)
    c.raw_store.put("raw/ses/abc", b"Received: from ses\r\n" + raw)
    ingest(c, "raw/ses/abc", source="ses", envelope_recipients=["shop@example.net"])
    dovecot.deliver(mailbox_user, raw)
    assert run(c).fetched == 1
    (record,) = c.messages.list()
    assert record.source == "ses" and record.key == "mid:<t-1@example.org>"


def test_size_cap_leaves_a_big_message_on_the_server(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, ack="delete", max_message_bytes=10_000)
    dovecot.deliver(mailbox_user, make_raw(1))
    dovecot.deliver(mailbox_user, make_raw(2, size=50_000))
    res = run(c)
    assert res.fetched == 1 and res.skipped == 1
    assert list(flags_by_message_id(dovecot, mailbox_user)) == ["<t-2@example.org>"]


def test_test_connection_counts_the_messages_on_each_protocol(dovecot, mailbox_user):
    c = container(dovecot)
    for n in range(3):
        dovecot.deliver(mailbox_user, make_raw(n))
    for protocol in ("imap", "pop"):
        for security in ("ssl", "starttls"):
            server = add_server(c, dovecot, mailbox_user, protocol=protocol, security=security)
            steps = fetch.test_connection(c, server)
            assert [s.name for s in steps] == ["connect", "tls", "login", "folder", "count"], steps
            assert all(s.ok for s in steps) and steps[-1].detail == "3 message(s) on the server"
    missing = add_server(c, dovecot, mailbox_user, folder="Nope")
    steps = fetch.test_connection(c, missing)
    assert steps[-1].name == "folder" and not steps[-1].ok and "Nope" in steps[-1].detail


def test_5000_messages_over_several_runs_each_stored_exactly_once(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, ack="move", move_to="Archive")
    for n in range(5000):
        dovecot.deliver(mailbox_user, make_raw(n, tag="bulk", size=300))
    runs = []
    while True:
        res = run(c, max_messages=1500)
        assert res.status == "ok", res
        runs.append(res.fetched)
        if not res.more:
            break
    assert runs == [1500, 1500, 1500, 500]
    assert len(ledger(c)) == 5000 and c.raw_store.puts == 5000
    assert flags_by_message_id(dovecot, mailbox_user) == {}
    assert len(flags_by_message_id(dovecot, mailbox_user, "Archive")) == 5000


def test_move_to_a_missing_folder_is_reported_and_retried_without_duplicates(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, ack="move", move_to="Processed")
    for n in range(4):
        dovecot.deliver(mailbox_user, make_raw(n))
    res = run(c)
    assert res.status == "failed" and res.error_code == "ack-failed"
    assert "check that the folder 'Processed' exists" in res.error
    assert fetch.health(c, "shop")["last_error"].startswith("acknowledgement failed")
    assert len(ledger(c)) == 4  # stored and routed; only the move is missing
    m = person(dovecot, mailbox_user)
    m.create("Processed")
    m.logout()
    res = run(c)
    assert res.status == "ok" and res.duplicates == 4 and res.stored == 0 and res.acked == 4
    assert len(ledger(c)) == 4 and c.raw_store.puts == 4
    assert len(flags_by_message_id(dovecot, mailbox_user, "Processed")) == 4


def test_sqs_worker_fetches_the_mailbox_named_in_each_record(dovecot, mailbox_user):
    c = container(dovecot)
    add_server(c, dovecot, mailbox_user, ack="seen")
    add_server(c, dovecot, mailbox_user, name="locked", password="wrong")
    dovecot.deliver(mailbox_user, make_raw(1))
    event = {"Records": [{"messageId": "a", "body": '{"server": "shop"}'},
                         {"messageId": "b", "body": '{"server": "locked"}'}]}
    out = fetch_worker.handle(c, event, deadline=time.monotonic() + 60)
    assert out == {"batchItemFailures": []}  # a wrong password is not retried by SQS
    assert len(ledger(c)) == 1
    assert fetch.health(c, "locked")["last_error_code"] == "auth-failed"
