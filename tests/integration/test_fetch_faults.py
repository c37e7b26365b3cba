"""Fault injection on the fetch path: 0 lost and 0 doubled, as the application sees it.

What the application sees is read back at the end of every case: the events on the bus (an
EventBridge rule delivering to a queue, as an application would subscribe), the ledger records,
the raw messages in the bucket and the messages left on the mail server. The store is the AWS
emulator; the servers are Dovecot for the kills and the scripted servers of
tests/fixtures/scripted_mail.py for the faults Dovecot cannot be told to make.

- servers that answer with temporary errors or leave out UIDs: the real worker in this process;
- kills between the steps of a run (after the raw messages are stored, after routing, after the
  acknowledgement, after the cursor write): the real Lambda handler in a child process, which a
  named failpoint (mailgate.failpoints) ends with os._exit, as a timeout or a kill would;
- routing that never finishes: the child process is killed while routing one message, run
  after run, until the worker isolates it.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import time
import uuid

import boto3
import pytest

from mailgate import failpoints
from mailgate.adapters.mailboxes import NetMailboxes
from mailgate.domain import Alias, AliasDomain, IncomingServer
from mailgate.entrypoints import fetch_worker
from mailgate.services import fetch
from mailgate.services.fetch import worker
from mailgate_dev import fakes

from tests.fixtures.scripted_mail import PASSWORD, USER

pytestmark = pytest.mark.integration


def make_raw(n: int, tag: str = "f") -> bytes:
    return (f"From: Customer {n} <c{n}@example.org>\r\nTo: shop@example.net\r\n"
            f"Subject: order {n}\r\nMessage-ID: <{tag}-{n}@example.org>\r\n"
            f"Date: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\nPlease send {n} chairs.\r\n").encode()


class App:
    """The gateway on the emulator as its application sees it: events on the bus, the ledger."""

    def __init__(self, c) -> None:
        self.c = c
        c.config.put_domain(AliasDomain(name="example.net"))
        c.config.put_alias(Alias(domain="example.net", name="shop", model="crm.lead"))
        kw = {"endpoint_url": c.settings.endpoint_url, "region_name": "us-east-1"}
        self.sqs, events = boto3.client("sqs", **kw), boto3.client("events", **kw)
        self.url = self.sqs.create_queue(QueueName=f"app-{uuid.uuid4().hex[:10]}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = c.settings.event_bus_name
        events.put_rule(Name="app", EventBusName=bus, EventPattern=json.dumps({"source": ["mailgate"]}))
        events.put_targets(Rule="app", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        self.events: list[dict] = []

    def read_events(self) -> list[dict]:
        """Every event published so far (the queue is drained; what was read is kept)."""
        while True:
            got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            if not got.get("Messages"):
                return self.events
            for m in got["Messages"]:
                self.events.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])

    def records_created(self) -> list[str]:
        """The Message-IDs of the "Record To Create" events (one per message, never two)."""
        return sorted(e["detail"]["message"]["message_id"] for e in self.read_events()
                      if e["detail-type"] == "Record To Create")

    def ledger(self) -> dict[str, str]:
        """Message-ID (or fetch-failed key) -> outcome, for every inbound record."""
        records = [r for r in self.c.messages.list(limit=1000) if r.direction == "in"]
        return {(r.message_id or r.key): r.outcome for r in records}

    def raw_objects(self) -> list[str]:
        s3 = boto3.client("s3", endpoint_url=self.c.settings.endpoint_url, region_name="us-east-1")
        listed = s3.list_objects_v2(Bucket=self.c.settings.bucket_name, Prefix="raw/fetch/")
        return sorted(o["Key"] for o in listed.get("Contents", []))


@pytest.fixture
def app(aws):
    return App(aws)


def scripted_server(c, server, *, protocol: str, ack: str, name: str = "shop") -> IncomingServer:
    item = IncomingServer(name=name, protocol=protocol, host="127.0.0.1", port=server.port, user=USER,
                          security="ssl", ack=ack, secret_id=c.settings.server_secret_prefix + name)
    c.config.put_incoming(item)
    c.secrets.put(item.secret_id, PASSWORD)
    return item


def run(c, cafile, name="shop"):
    return fetch.fetch_mailbox(c, name, deadline=time.monotonic() + 60, max_messages=1000,
                               mailbox_factory=NetMailboxes(cafile=str(cafile)))


def expected(tag: str, ns) -> list[str]:
    return sorted(f"{tag}-{n}@example.org" for n in ns)


# --- servers answering with temporary errors or leaving out UIDs ------------------------------------

def test_pop3_retr_answered_sys_temp_is_fetched_later_and_never_deleted_unread(app, scripted_pop3, scripted_tls):
    c = app.c
    scripted_server(c, scripted_pop3, protocol="pop", ack="delete")
    uidls = [scripted_pop3.add(make_raw(n)) for n in range(4)]
    scripted_pop3.retr_replies[uidls[2]] = ["-ERR [SYS/TEMP] the message store is busy, try later"]
    first = run(c, scripted_tls.ca_file)
    assert (first.status, first.ingested, first.missing, first.vanished) == ("ok", 3, 1, 0), first
    assert list(scripted_pop3.messages) == [uidls[2]]  # never deleted unread
    assert app.records_created() == expected("f", (0, 1, 3))
    second = run(c, scripted_tls.ca_file)
    assert (second.status, second.ingested, second.missing) == ("ok", 1, 0), second
    assert scripted_pop3.messages == {}
    assert app.records_created() == expected("f", range(4))  # each exactly once
    assert set(app.ledger().values()) == {"new-record"} and len(app.ledger()) == 4
    assert len(app.raw_objects()) == 4


def test_pop3_in_use_at_login_is_retried_not_taken_for_a_wrong_password(scripted_pop3, scripted_tls):
    c = fakes.in_memory()
    scripted_server(c, scripted_pop3, protocol="pop", ack="delete")
    scripted_pop3.add(make_raw(1))
    scripted_pop3.login_replies = ["-ERR [IN-USE] Do you have another POP session running?"]
    res = run(c, scripted_tls.ca_file)
    assert (res.status, res.error_code, res.transient) == ("failed", "server-busy", True), res
    assert fetch.health(c, "shop")["last_error"].startswith("server busy")
    assert run(c, scripted_tls.ca_file).ingested == 1 and scripted_pop3.messages == {}


def test_pop3_message_refused_run_after_run_is_skipped_visibly_and_left_on_the_server(
        app, scripted_pop3, scripted_tls):
    c = app.c
    scripted_server(c, scripted_pop3, protocol="pop", ack="delete")
    bad = scripted_pop3.add(make_raw(1))
    scripted_pop3.add(make_raw(2))
    scripted_pop3.retr_replies[bad] = ["-ERR [SYS/PERM] message file is damaged"] * 100
    results = [run(c, scripted_tls.ca_file) for _ in range(worker.MAX_FETCH_ATTEMPTS + 2)]
    assert [r.skipped for r in results] == [0] * (worker.MAX_FETCH_ATTEMPTS - 1) + [1, 0, 0]
    assert list(scripted_pop3.messages) == [bad]  # still there, after runs that re-delete what was stored
    (skip,) = fetch.skipped(c, "shop")  # what `mailgate fetch skipped` lists
    assert (skip["message"], skip["reason"]) == (bad, "not-returned")
    assert "[SYS/PERM] message file is damaged" in skip["detail"]
    assert sum(cmd == "RETR 1" for cmd in scripted_pop3.commands) == worker.MAX_FETCH_ATTEMPTS
    assert app.records_created() == expected("f", (2,))


def test_imap_uid_left_out_of_the_fetch_answer_is_fetched_next_run(app, scripted_imap, scripted_tls):
    c = app.c
    scripted_server(c, scripted_imap, protocol="imap", ack="delete")
    uids = [scripted_imap.add(make_raw(n)) for n in range(5)]
    scripted_imap.leave_out[uids[1]] = 1  # the answer says OK and lacks this UID, once
    first = run(c, scripted_tls.ca_file)
    assert (first.status, first.ingested, first.missing, first.vanished) == ("ok", 4, 1, 0), first
    assert list(scripted_imap.folders["INBOX"]) == [uids[1]]  # not expunged: never stored
    second = run(c, scripted_tls.ca_file)
    assert (second.status, second.ingested) == ("ok", 1), second
    assert scripted_imap.folders["INBOX"] == {}
    assert app.records_created() == expected("f", range(5))
    assert len(app.ledger()) == 5 and len(app.raw_objects()) == 5


def test_imap_fetch_answer_ending_in_no_keeps_the_withheld_messages_for_the_next_run(scripted_imap, scripted_tls):
    c = fakes.in_memory()
    scripted_server(c, scripted_imap, protocol="imap", ack="seen")
    uids = [scripted_imap.add(make_raw(n)) for n in range(3)]
    scripted_imap.leave_out[uids[2]] = 1
    scripted_imap.no_when_leaving_out = "NO [UNAVAILABLE] some messages could not be read, try later"
    first = run(c, scripted_tls.ca_file)
    assert (first.status, first.ingested, first.missing) == ("ok", 2, 1), first
    assert any("[UNAVAILABLE] some messages could not be read" in n for n in first.notes)
    assert run(c, scripted_tls.ca_file).ingested == 1
    assert all("\\Seen" in flags for _, flags in scripted_imap.folders["INBOX"].values())
    assert sorted(r.message_id for r in c.messages.list()) == expected("f", range(3))


def test_imap_uid_never_returned_is_skipped_visibly_after_n_runs_and_left_on_the_server(
        scripted_imap, scripted_tls):
    c = fakes.in_memory()
    scripted_server(c, scripted_imap, protocol="imap", ack="delete")
    uids = [scripted_imap.add(make_raw(n)) for n in range(3)]
    scripted_imap.leave_out[uids[0]] = 1000
    results = [run(c, scripted_tls.ca_file) for _ in range(worker.MAX_FETCH_ATTEMPTS + 1)]
    assert [r.skipped for r in results] == [0] * (worker.MAX_FETCH_ATTEMPTS - 1) + [1, 0]
    assert list(scripted_imap.folders["INBOX"]) == [uids[0]]
    skip = c.kv.get_item(f"fetchskip#shop#{uids[0]}")
    assert skip["reason"] == "not-returned" and skip["attempts"] == worker.MAX_FETCH_ATTEMPTS
    assert fetch.health(c, "shop")["skipped_messages"] == 1
    assert sorted(r.message_id for r in c.messages.list()) == expected("f", (1, 2))


def test_imap_message_expunged_by_another_client_is_passed_only_once_the_server_confirms(
        scripted_imap, scripted_tls):
    c = fakes.in_memory()
    scripted_server(c, scripted_imap, protocol="imap", ack="seen")
    uids = [scripted_imap.add(make_raw(n)) for n in range(3)]
    original = scripted_imap._fetch

    def expunge_then_fetch(tag, box, seqs, wanted, items):
        if "BODY.PEEK[]" in items:
            box.pop(uids[1], None)  # another client expunged it between listing and fetching
        return original(tag, box, seqs, [u for u in wanted if u in box], items)

    scripted_imap._fetch = expunge_then_fetch
    res = run(c, scripted_tls.ca_file)
    assert (res.ingested, res.vanished, res.missing) == (2, 1, 0), res
    assert any(cmd.endswith(f"UID SEARCH UID {uids[1]}") for cmd in scripted_imap.commands)
    assert c.kv.get_item("cursor#shop")["last_uid"] == uids[2]


def test_imap_unavailable_at_login_is_retried_not_taken_for_a_wrong_password(scripted_imap, scripted_tls):
    c = fakes.in_memory()
    scripted_server(c, scripted_imap, protocol="imap", ack="seen")
    scripted_imap.login_replies = ["NO [UNAVAILABLE] Temporary authentication failure"]
    res = run(c, scripted_tls.ca_file)
    assert (res.status, res.error_code, res.transient) == ("failed", "server-busy", True), res


# --- the worker killed between its steps (the real handler in a child process) ----------------------

CHILD = """
import json, os, sys, time
if os.environ.get("TEST_HANG_ON"):
    # routing that never finishes for one message (a hostile input the parser spins on)
    import mailgate.services.inbound as inbound
    real = inbound.ingest
    def ingest(c, raw_key, **kw):
        if os.environ["TEST_HANG_ON"].encode() in c.raw_store.get(raw_key):
            print("ROUTING-HANGS", flush=True)
            time.sleep(3600)
        return real(c, raw_key, **kw)
    inbound.ingest = ingest
from mailgate_dev.local.invoker import invoke
print("RESULT " + json.dumps(invoke("fetch_worker", json.loads(sys.argv[1]), timeout_s=60)), flush=True)
"""


class Worker:
    """The fetch worker Lambda, in a process of its own, with the stack's environment."""

    def __init__(self, c, cafile: pathlib.Path) -> None:
        s = c.settings
        self.c = c
        self.env = dict(
            os.environ, MAILGATE_TABLE=s.table_name, MAILGATE_BUCKET=s.bucket_name,
            MAILGATE_EVENT_BUS=s.event_bus_name, MAILGATE_OUTBOUND_QUEUE_URL=s.outbound_queue_url,
            MAILGATE_FETCH_QUEUE_URL=s.fetch_queue_url, MAILGATE_GATEWAY_DOMAIN=s.gateway_domain,
            MAILGATE_TOKEN_SECRET_ID=s.token_secret_id, MAILGATE_DKIM_SECRET_PREFIX=s.dkim_secret_prefix,
            MAILGATE_SERVER_SECRET_PREFIX=s.server_secret_prefix, AWS_ENDPOINT_URL=s.endpoint_url,
            SSL_CERT_FILE=str(cafile), POWERTOOLS_METRICS_NAMESPACE="mailgate")
        self.event = json.dumps({"Records": [{
            "messageId": "job-1", "receiptHandle": "r", "body": json.dumps({"server": "shop"}),
            "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:fetch", "awsRegion": "us-east-1"}]})

    def run(self, *, failpoint: str = "", hang_on: str = "") -> str:
        """One invocation; "ok", "killed" (a failpoint ended it) or "hung" (killed while routing)."""
        env = dict(self.env, MAILGATE_FAILPOINTS=failpoint, TEST_HANG_ON=hang_on)
        proc = subprocess.Popen([sys.executable, "-c", CHILD, self.event], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        output: list[str] = []
        try:
            for line in proc.stdout:
                output.append(line)
                if line.startswith("ROUTING-HANGS"):
                    proc.kill()  # Lambda's timeout: no finally, no except runs
                    return "hung"
                if line.startswith("RESULT "):
                    result = json.loads(line[len("RESULT "):])
                    assert result == {"batchItemFailures": []}, result
            status = proc.wait(60)
            assert status in (0, failpoints.KILLED), "".join(output[-30:])
            return "killed" if status == failpoints.KILLED else "ok"
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
            proc.stdout.close()

    def run_here(self) -> str:
        """The same handler, in this process (a run that is not killed needs no process of its own)."""
        self.c.mailboxes = NetMailboxes(cafile=self.env["SSL_CERT_FILE"])
        result = fetch_worker.handle(self.c, json.loads(self.event), deadline=time.monotonic() + 45)
        assert result == {"batchItemFailures": []}, result
        return "ok"

    def forget_lease(self) -> None:
        """A killed worker's lease expires a minute after its deadline; the test does not wait."""
        self.c.kv.delete_item("lease#shop")


def dovecot_server(c, dovecot, user, *, protocol: str, ack: str) -> None:
    port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port
    server = IncomingServer(name="shop", protocol=protocol, host="127.0.0.1", port=port, user=user,
                            security="ssl", ack=ack, secret_id=c.settings.server_secret_prefix + "shop")
    c.config.put_incoming(server)
    c.secrets.put(server.secret_id, "secret")


@pytest.mark.parametrize("protocol,ack", [("imap", "delete"), ("pop", "delete"), ("imap", "seen")])
@pytest.mark.parametrize("point", ["fetch.stored", "fetch.routed", "fetch.acked", "fetch.saved"])
def test_worker_killed_between_its_steps_loses_and_doubles_nothing(app, dovecot, mailbox_user, protocol, ack, point):
    c = app.c
    dovecot_server(c, dovecot, mailbox_user, protocol=protocol, ack=ack)
    for n in range(4):
        dovecot.deliver(mailbox_user, make_raw(n, tag=point))
    child = Worker(c, dovecot.ca_pem)
    assert child.run(failpoint=point) == "killed"
    child.forget_lease()
    assert child.run_here() == "ok"
    assert app.records_created() == expected(point, range(4))  # each once: none lost, none doubled
    assert sorted(app.ledger()) == expected(point, range(4))
    assert len(app.raw_objects()) == 4
    left = dovecot.message_files(mailbox_user)
    if ack == "delete":
        assert left == []
    else:
        assert len(left) == 4 and all(p.name.endswith("S") for p in left)  # \Seen, still there
    assert child.run_here() == "ok" and app.records_created() == expected(point, range(4))


@pytest.mark.parametrize("protocol", ["imap", "pop"])
def test_routing_that_never_finishes_is_isolated_and_the_mailbox_moves_on(app, dovecot, mailbox_user, protocol,
                                                                          monkeypatch):
    c = app.c
    dovecot_server(c, dovecot, mailbox_user, protocol=protocol, ack="delete")
    for n in range(5):
        dovecot.deliver(mailbox_user, make_raw(n, tag="hang"))
    child = Worker(c, dovecot.ca_pem)
    for _ in range(worker.MAX_INGEST_ATTEMPTS):
        assert child.run(hang_on="<hang-2@example.org>") == "hung"  # killed while routing it
        child.forget_lease()
    # the next run does not route it again: it was started, and never finished, three times
    import mailgate.services.inbound as inbound

    real, routed_again = inbound.ingest, []

    def ingest(c_, raw_key, **kw):
        if b"<hang-2@example.org>" in c_.raw_store.get(raw_key):
            routed_again.append(raw_key)
        return real(c_, raw_key, **kw)

    monkeypatch.setattr(inbound, "ingest", ingest)
    assert child.run_here() == "ok" and routed_again == []
    assert app.records_created() == expected("hang", (0, 1, 3, 4))
    (failed,) = [k for k, outcome in app.ledger().items() if outcome == "failed"]
    record = c.messages.get(failed)
    assert record.reason.startswith("routing did not finish within"), record.reason
    assert b"<hang-2@example.org>" in c.raw_store.get(record.raw_key)  # kept: `mailgate replay` after a fix
    assert dovecot.message_files(mailbox_user) == []  # stored, so acknowledged like the others
    assert len(app.raw_objects()) == 5
