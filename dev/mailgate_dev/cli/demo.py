"""`mailgate demo`: a scripted tour of the gateway against a fresh local stack.

The stack (AWS emulator with the template deployed, SES-like SMTP listener, SMTP sink) starts on
free ports in a temporary state directory, never the user's .local, and is stopped at the end.
Every step uses the real paths: SMTP into the SES-like listener (which invokes the inbound
handler), the outbound queue drained through the outbound handler, the services and CLI
commands. Each fact is printed as "ok: ..." or "FAILED: ...", each step ends with
"=> STEP: ok|FAILED|skipped"; the exit status is 0 when no step failed, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import pathlib
import shutil
import smtplib
import tempfile
import time
import traceback
from email import message_from_bytes, policy
from typing import Any, Callable

from mailgate.errors import ConfigError

from . import common
from .main import main

STEPS = ("inbound", "outbound", "bounces", "dns", "fetch")
SKIP_FETCH = "skipped: install dovecot-imapd dovecot-pop3d (make test does as root)"


def register(sub) -> None:
    p = sub.add_parser("demo", help="a scripted tour against a fresh local stack (exit 0 when every step works)",
                       description="Start a fresh local stack on free ports in a temporary directory, walk "
                                   "through inbound routing, outbound DKIM, bounces, DNS and fetching, print what "
                                   "happened, stop everything. Exit 0 when every step did what it should.")
    p.add_argument("--keep", action="store_true", help="keep the temporary state directory (outbox, logs)")
    p.set_defaults(func=cmd_demo)


class StepFailed(Exception):
    pass


class Tour:
    """The demo's state and its output: one header per step, one line per fact."""

    def __init__(self, stack, out: Callable[[str], None]) -> None:
        self.stack = stack
        self.out = out
        self.c = stack.container()
        self.domain = stack.gateway_domain
        self.results: dict[str, str] = {}
        self.thread_id = ""
        self._events: list[dict] = []
        self._events_url = ""
        self._dkim_published = False

    # -- output ----------------------------------------------------------------------------------
    def ok(self, fact: str) -> None:
        self.out(f"  ok: {fact}")

    def check(self, condition: Any, fact: str, why: str, *, required: bool = False) -> bool:
        """Print the fact as ok, or as FAILED with why. `required`: later facts of the step
        depend on this one, so the step stops here."""
        if condition:
            self.ok(fact)
            return True
        if required:
            raise StepFailed(f"{fact}: {why}")
        self.out(f"  FAILED: {fact}: {why}")
        self._failed = True
        return False

    def run(self, number: int, name: str, title: str, step: Callable[[], str | None]) -> None:
        self.out(f"[{number}/{len(STEPS)}] {name}: {title}")
        self._failed = False
        try:
            result = step() or "ok"
            if self._failed:
                result = "FAILED"
        except StepFailed as exc:
            self.out(f"  FAILED: {exc}")
            result = "FAILED"
        except Exception as exc:  # a broken step must not hide the others
            self.out(f"  FAILED: unexpected {type(exc).__name__}: {exc}")
            for line in traceback.format_exc().rstrip().splitlines()[-4:]:
                self.out(f"    {line}")
            result = "FAILED"
        self.results[name] = result
        self.out(f"  => {name}: {result}")

    # -- the real paths --------------------------------------------------------------------------
    def smtp(self, raw: bytes, to: list[str], mail_from: str) -> None:
        """Hand a message to the SES-like listener; it stores it and runs the inbound handler."""
        with smtplib.SMTP("127.0.0.1", self.stack.ports.smtp, timeout=30) as s:
            s.sendmail(mail_from, to, raw)

    def drain(self) -> int:
        return self.stack.drain("outbound")

    def record(self, message_id: str):
        return next((r for r in self.c.messages.list(limit=500) if r.message_id == message_id), None)

    def sink_to(self, address: str) -> list[dict]:
        return [m for m in self.stack.sink.messages if address in m["rcpt_tos"]]

    def prepare(self) -> None:
        """The sink as an outgoing server named by host name, as a real one is: the DNS plan then
        authorizes it with a:localhost (an IP literal is no domain-spec, RFC 7208 5.3)."""
        import dataclasses

        sink = self.c.config.get_outgoing("local-sink")
        if sink is not None and sink.host == "127.0.0.1":
            self.c.config.put_outgoing(dataclasses.replace(sink, host="localhost"))
        self.listen_for_events()

    def listen_for_events(self) -> None:
        """What an application does: an EventBridge rule on the bus delivering to its queue."""
        import boto3

        kw = {"endpoint_url": self.stack.endpoint, "region_name": "us-east-1"}
        sqs, events = boto3.client("sqs", **kw), boto3.client("events", **kw)
        self._sqs = sqs
        self._events_url = sqs.create_queue(QueueName="demo-app-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=self._events_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = self.c.settings.event_bus_name
        events.put_rule(Name="demo-app", EventBusName=bus, EventPattern=json.dumps({"source": ["mailgate"]}))
        events.put_targets(Rule="demo-app", EventBusName=bus, Targets=[{"Id": "app", "Arn": arn}])

    def event(self, detail_type: str, match: Callable[[dict], bool], timeout: float = 10.0) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            for e in self._events:
                if e.get("detail-type") == detail_type and match(e.get("detail") or {}):
                    self._events.remove(e)
                    return e["detail"]
            if time.monotonic() > deadline:
                return None
            for m in self._sqs.receive_message(QueueUrl=self._events_url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=1).get("Messages", []):
                self._events.append(json.loads(m["Body"]))
                self._sqs.delete_message(QueueUrl=self._events_url, ReceiptHandle=m["ReceiptHandle"])

    def cli(self, *argv: str) -> tuple[int, str]:
        """Run a `mailgate` command against this stack; its exit status and printed output."""
        buf, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
            code = main(list(argv))
        return code, buf.getvalue() + err.getvalue()

    # -- DKIM against the local DNS server -------------------------------------------------------
    def dkim_txt(self) -> tuple[str, str]:
        from mailgate import dkim as D
        from mailgate import keyring

        d = self.c.config.get_domain(self.domain)
        pem = self.c.secrets.get(keyring.secret_id(self.c.settings, self.domain, d.dkim_selector))
        return f"{d.dkim_selector}._domainkey.{self.domain}", D.public_txt(D.load_private_key(pem))

    def publish_dkim(self) -> None:
        if self._dkim_published:
            return
        name, value = self.dkim_txt()
        dns = self.stack.dns_server
        dns.set_zone(self.domain, f"{name}. IN TXT {dns.txt(value)}")
        self.ok(f"the local DNS server ({dns.nameserver}) publishes {name} TXT \"{value[:30]}...\"")
        self._dkim_published = True

    def dkim_verify(self, raw: bytes) -> bool:
        """RFC 6376 verification with dkimpy, the key looked up in the local DNS server."""
        import dkim

        from mailgate.adapters.dnspython import DnspythonResolver

        resolver = DnspythonResolver.for_nameserver(self.stack.dns_server.nameserver, timeout=2)

        def dnsfunc(name, timeout=5):
            qname = (name.decode() if isinstance(name, bytes) else name).rstrip(".")
            ans = resolver.query(qname, "TXT")
            return "".join(ans.records).encode() if ans.records else None

        return bool(dkim.verify(raw, dnsfunc=dnsfunc))

    # -- the steps -------------------------------------------------------------------------------
    def step_inbound(self) -> None:
        from mailgate import tokens

        d = self.domain
        raw = (f"From: Ann Client <ann@client.test>\r\nTo: sales@{d}\r\nSubject: 40 chairs, quote please\r\n"
               f"Message-ID: <demo-lead@client.test>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n"
               "Hello, could you quote 40 chairs?\r\n").encode()
        self.smtp(raw, [f"sales@{d}"], "ann@client.test")
        ev = self.event("Record To Create", lambda x: x.get("message", {}).get("message_id") == "demo-lead@client.test")
        self.check(ev and ev.get("model") == "crm.lead" and ev.get("thread_id"),
                   f"mail to sales@{d} opened a record: \"Record To Create\", model {ev and ev.get('model')}, "
                   f"thread {ev and ev.get('thread_id')}",
                   f"no Record To Create event with model crm.lead (ledger: {self._outcome('demo-lead@client.test')})",
                   required=True)
        self.thread_id = ev["thread_id"]

        follower = "boss@partner.test"
        self.c.threads.add_follower(self.thread_id, follower)
        thread = self.c.threads.get_thread(self.thread_id)
        self.check(thread and follower in thread.followers, f"{follower} follows the thread",
                   f"followers are {thread and thread.followers}", required=True)

        reply_to = tokens.reply_address(self.c.token_key, "catchall", d, self.thread_id)
        before = len(self.sink_to(follower))
        raw = (f"From: Ann Client <ann@client.test>\r\nTo: {reply_to}\r\nSubject: Re: 40 chairs\r\n"
               f"Message-ID: <demo-reply@client.test>\r\nDate: Thu, 26 Nov 2026 10:05:00 +0000\r\n\r\n"
               "Make it 45 chairs, please.\r\n").encode()
        self.smtp(raw, [reply_to], "ann@client.test")
        rec = self.record("demo-reply@client.test")
        if self.check(rec and rec.outcome == "thread" and rec.thread_id == self.thread_id,
                      f"a reply to catchall+TOKEN@{d} landed in the thread ({rec and rec.reason})",
                      f"outcome {rec and rec.outcome!r}, thread {rec and rec.thread_id!r}, reason {rec and rec.reason!r}"):
            ev = self.event("Message Routed To Thread", lambda x: x.get("message_id") == "demo-reply@client.test")
            self.check(ev, "\"Message Routed To Thread\" published", "no event")
            n = self.drain()
            got = self.sink_to(follower)[before:]
            if self.check(got, f"the follower was notified: outbound queue ({n} message) -> SMTP sink",
                          f"the sink got nothing for {follower}; "
                          + self._sent(f"{rec.key}:notify:{follower}")):
                note = got[-1]["raw"]
                msg = message_from_bytes(note, policy=policy.default)
                self.publish_dkim()
                self.check("DKIM-Signature" in msg and self.dkim_verify(note),
                           f"the notification is DKIM-signed (d={d}) and verifies (dkimpy, key from local DNS)",
                           "no DKIM-Signature, or it does not verify")
                self.check("catchall+" in str(msg.get("Reply-To", "")),
                           "its Reply-To is the thread's reply address", f"Reply-To is {msg.get('Reply-To')!r}")

        carl = "carl@client.test"
        for n, mid in ((1, "demo-unknown-1@client.test"), (2, "demo-unknown-2@client.test")):
            raw = (f"From: carl@client.test\r\nTo: nobody@{d}\r\nSubject: anyone there? ({n})\r\n"
                   f"Message-ID: <{mid}>\r\n\r\nHello?\r\n").encode()
            self.smtp(raw, [f"nobody@{d}"], carl)
            self.drain()
        first, second = self.record("demo-unknown-1@client.test"), self.record("demo-unknown-2@client.test")
        answers = self.sink_to(carl)
        self.check(first and first.detail.get("answer", "").startswith("sent") and len(answers) == 1,
                   f"mail to nobody@{d} ({first and first.outcome}) is answered once (sink)",
                   f"{len(answers)} answers reached {carl}; "
                   + (self._sent(f"{first.key}:answer") if first else "the message was not recorded"))
        self.check(second and not second.detail.get("answer", "").startswith("sent") and len(answers) <= 1,
                   f"a second one is not answered again ({second and second.detail.get('answer')})",
                   f"{len(answers)} answers reached {carl}; record says {second and second.detail.get('answer')!r}")

    def _sent(self, idempotency_key: str) -> str:
        """What became of the send request with this key (for a FAILED line)."""
        from mailgate.services.outbound import recorded_ref

        ref = recorded_ref(self.c, idempotency_key)
        out = self.c.messages.get("out:" + ref) if ref else None
        if out is not None:
            return f"its send request is {out.outcome}: {out.reason}"
        ev = self.event("Send Result", lambda x: x.get("idempotency_key") == idempotency_key, timeout=3)
        if ev is not None:
            return f"Send Result of its request: {ev.get('status')} ({ev.get('error')}: {ev.get('reason')})"
        return "no send request was recorded"

    def _outcome(self, message_id: str) -> str:
        r = self.record(message_id)
        return f"{r.outcome}: {r.reason}" if r else "not recorded"

    def step_outbound(self) -> None:
        from mailgate.services import outbound

        d = self.domain
        result = outbound.send(self.c, {
            "idempotency_key": "demo-quote-42", "from": f"Sales <sales@{d}>", "to": ["ann@client.test"],
            "subject": "Your quote for 45 chairs", "text": "Dear Ann,\n\nplease find our quote: 45 chairs.\n",
            "record": {"model": "crm.lead", "id": "42"},
        })
        self.check(result["status"] == "sent",
                   f"outbound.send from record crm.lead/42: {result['status']} via {result.get('transport')} "
                   f"(Message-ID {result.get('message_id')})",
                   f"status {result['status']}: {result.get('reason') or result.get('recipients')}", required=True)
        got = [m for m in self.sink_to("ann@client.test") if f"X-Mailgate-Id: {result['ref']}".encode() in m["raw"]]
        self.check(got, "the SMTP sink received it", "nothing with its X-Mailgate-Id in the sink", required=True)
        raw = got[-1]["raw"]
        self.check(b"DKIM-Signature:" in raw, "it carries a DKIM-Signature", "no DKIM-Signature header")
        self.publish_dkim()
        self.check(self.dkim_verify(raw), "dkimpy verifies it against the local DNS server", "verification failed")
        tampered = raw.replace(b"45 chairs", b"4500 chairs")
        self.check(tampered != raw and not self.dkim_verify(tampered),
                   "a tampered copy (45 -> 4500 chairs) fails verification", "the tampered copy verified")

    def step_bounces(self) -> None:
        from mailgate import suppression
        from mailgate.services import outbound

        d, dead = self.domain, "dead@client.test"
        result = outbound.send(self.c, {"idempotency_key": "demo-dead-1", "from": f"sales@{d}", "to": [dead],
                                        "subject": "Hello", "text": "Anyone?\n"})
        self.check(result["status"] == "sent", f"a message to {dead} went out ({result['status']})",
                   f"status {result['status']}: {result.get('reason') or result.get('recipients')}", required=True)
        got = [m for m in self.sink_to(dead) if f"X-Mailgate-Id: {result['ref']}".encode() in m["raw"]]
        self.check(got and got[-1]["mail_from"].startswith("bounce+"),
                   f"its envelope sender is the VERP address {got and got[-1]['mail_from'][:20]}...@{d}",
                   f"envelope sender {got and got[-1]['mail_from']!r}", required=True)
        verp = got[-1]["mail_from"]
        self.smtp(dsn(verp, dead, result["message_id"], d), [verp], "")
        self.ok(f"the remote MTA's DSN (RFC 3464, 5.1.1 user unknown) was sent to {verp[:20]}...@{d}")
        entry = suppression.is_suppressed(self.c.kv, d, dead)
        self.check(entry, f"{dead} is suppressed ({entry and entry.get('reason')})", "not on the suppression list")
        again = outbound.send(self.c, {"idempotency_key": "demo-dead-2", "from": f"sales@{d}", "to": [dead],
                                       "subject": "Hello again", "text": "Anyone?\n"})
        r = (again.get("recipients") or [{}])[0]
        ev = self.event("Send Result", lambda x: x.get("ref") == again.get("ref"))
        shown = ((ev or {}).get("recipients") or [{}])[0]
        self.check(r.get("status") == "suppressed" and shown.get("status") == "suppressed",
                   f"the next message to it is skipped: Send Result says \"{shown.get('status')}\" "
                   f"({(shown.get('detail') or '')[:60]}...)",
                   f"recipient status {r.get('status')!r}, event {shown.get('status')!r}")
        self.check(not [m for m in self.sink_to(dead) if f"X-Mailgate-Id: {again['ref']}".encode() in m["raw"]],
                   "nothing reached the sink for it", "the sink got it anyway")

    def step_dns(self) -> None:
        d = self.domain
        dns = self.stack.dns_server
        code, zone = self.cli("dns", "records", d, "--offline", "--zone")
        self.check(code == 0 and "; zone" in zone, f"`mailgate dns records {d}` printed the plan "
                   f"({sum(1 for x in zone.splitlines() if x.strip() and not x.startswith(';'))} records)",
                   f"exit {code}: {zone.strip()[:200]}", required=True)
        # What the local server cannot fetch from the internet: SES's SPF record (docs/dns.md), and
        # the sink's host name, which the SPF record authorizes with a:localhost.
        zone += ('\n; zone amazonses.com\n@ IN TXT "v=spf1 ip4:199.255.192.0/22 -all"\n'
                 '\n; zone localhost\n@ IN A 127.0.0.1\n')
        zones = dns.load(zone)
        self._dkim_published = d in [z.rstrip(".") for z in zones] or self._dkim_published
        self.ok(f"the local DNS server {dns.nameserver} serves it: zones {', '.join(z.rstrip('.') for z in zones)}")
        code, out = self.cli("dns", "check", d, "--nameserver", dns.nameserver, "--json")
        try:
            report = json.loads(out)
        except ValueError:
            raise StepFailed(f"`dns check` printed no JSON (exit {code}): {out.strip()[:200]}") from None
        for f in report.get("checks", []):
            self.check(f["status"] == "ok", f"{f['record']:5} {f['name']}: ok",
                       f"{f['status']}: found {f['found']}; fix: {f['fix']}")
        self.check(code == 0 and report.get("status") == "ok" and report.get("checks"),
                   f"`mailgate dns check {d}`: {report.get('status')} ({report.get('queries')} DNS queries)",
                   f"exit {code}, status {report.get('status')}")

    def step_fetch(self) -> str | None:
        import imaplib
        import ssl

        from ..local import dovecot
        from ..local.stack import IMAP_USER
        from mailgate.services import fetch

        if not dovecot.installed():
            self.out(f"  {SKIP_FETCH}")
            return "skipped"
        server = self.stack.start_imap()
        dv = self.stack.dovecot
        self.ok(f"a private Dovecot listens on {dv.host}:{dv.imaps_port} (IMAPS, its own CA)")
        raw = (f"From: Dora <dora@client.test>\r\nTo: sales@{self.domain}\r\nSubject: fetched lead\r\n"
               "Message-ID: <demo-fetched@client.test>\r\nDate: Thu, 26 Nov 2026 11:00:00 +0000\r\n\r\n"
               "Found you through your shared mailbox.\r\n").encode()
        dv.deliver(IMAP_USER, raw)
        self.ok(f"a message waits in {IMAP_USER}'s INBOX; incoming server {server.name} "
                f"(imap ssl {server.host}:{server.port}) is configured")
        res = fetch.fetch_mailbox(self.c, server.name, deadline=time.monotonic() + 60, max_messages=50)
        self.check(res.status == "ok" and res.fetched == 1 and res.stored == 1,
                   f"fetch now {server.name}: {res.status}, fetched {res.fetched}, stored {res.stored}",
                   f"{res.status}, fetched {res.fetched}, stored {res.stored}: {res.error}", required=True)
        rec = self.record("demo-fetched@client.test")
        self.check(rec and rec.outcome == "new-record", f"it was routed: {rec and rec.outcome} ({rec and rec.reason})",
                   f"ledger says {self._outcome('demo-fetched@client.test')}")
        ctx = ssl.create_default_context(cafile=str(dv.ca_file))
        imap = imaplib.IMAP4_SSL(dv.host, dv.imaps_port, ssl_context=ctx, timeout=10)
        try:
            imap.login(IMAP_USER, self.c.secrets.get(server.secret_id))
            imap.select("INBOX", readonly=True)
            _, data = imap.fetch("1", "(FLAGS)")
        finally:
            with contextlib.suppress(Exception):
                imap.logout()
        flags = data[0].decode() if data and data[0] else ""
        self.check("\\Seen" in flags, "it is acknowledged on the server (IMAP FLAGS show \\Seen)",
                   f"flags on the server: {flags!r}")
        return None


def dsn(verp: str, recipient: str, message_id: str, domain: str) -> bytes:
    """A remote MTA's delivery status notification (RFC 3464 multipart/report, RFC 6522)."""
    boundary = "demo-dsn-boundary"
    return (
        f"From: Mail Delivery System <MAILER-DAEMON@mx.client.test>\r\nTo: {verp}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n"
        f"Message-ID: <dsn-{int(time.time() * 1000)}@mx.client.test>\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"Your message could not be delivered to {recipient}: no such user.\r\n\r\n"
        f"--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.client.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\r\n\r\n"
        f"--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: sales@{domain}\r\nTo: {recipient}\r\nSubject: Hello\r\nMessage-ID: {message_id}\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def cmd_demo(args) -> int:
    from .common import safe

    def out(line: str) -> None:
        print(safe(line), flush=True)  # a FAILED line may quote what a server or a message said

    state = pathlib.Path(tempfile.mkdtemp(prefix="mailgate-demo-"))
    os.chmod(state, 0o755)  # Dovecot's mail processes (user mail) must reach <state>/dovecot
    saved_env = dict(os.environ)
    # The handlers' JSON logs and metrics would bury the tour: warnings and errors only.
    from mailgate.entrypoints import _runtime  # noqa: F401  (its Logger sets the level when imported)

    mailgate_log = logging.getLogger("mailgate")
    saved_level = mailgate_log.level
    mailgate_log.setLevel(logging.WARNING)
    out(f"mailgate demo: starting a fresh local stack in {state} (AWS emulator, template deployment, SMTP)...")
    started = time.monotonic()
    tour = stack = None
    try:
        stack = start_stack(state, out)
        # CLI commands of this process target this stack, not the user's .local
        os.environ["MAILGATE_LOCAL_DIR"] = str(state)
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
        out(f"  AWS emulator {stack.endpoint}, SES-like SMTP 127.0.0.1:{stack.ports.smtp}, "
            f"SMTP sink 127.0.0.1:{stack.ports.sink}, DNS {stack.dns_server.nameserver} "
            f"({time.monotonic() - started:.1f} s)")
        tour = Tour(stack, out)
        tour.prepare()
        tour.run(1, "inbound", "an alias opens a record, a reply finds its thread, unknown aliases",
                 tour.step_inbound)
        tour.run(2, "outbound", "a message from a record, DKIM-signed, verified against local DNS",
                 tour.step_outbound)
        tour.run(3, "bounces", "a DSN to the VERP address suppresses the dead address", tour.step_bounces)
        tour.run(4, "dns", "the records to publish, served locally, checked", tour.step_dns)
        tour.run(5, "fetch", "a private Dovecot mailbox fetched, routed and acknowledged", tour.step_fetch)
    finally:
        if stack is not None:
            stack.stop()
        os.environ.clear()
        os.environ.update(saved_env)
        mailgate_log.setLevel(saved_level)
        if args.keep:
            out(f"state kept in {state}")
        else:
            shutil.rmtree(state, ignore_errors=True)
    results = tour.results if tour else {}
    status = exit_status(results)
    summary = ", ".join(f"{n} {r}" for n, r in results.items())
    out(f"demo {'ok' if status == common.EXIT_OK else 'FAILED'} in {time.monotonic() - started:.0f} s: {summary}")
    return status


def start_stack(state: pathlib.Path, out: Callable[[str], None], attempts: int = 3):
    """A LocalStack on free ports; a port taken between choosing and binding it (another process
    on this machine) costs a retry on new ports, not the demo."""
    from ..local.stack import LocalStack, Ports, free_port

    for attempt in range(1, attempts + 1):
        stack = LocalStack(state_dir=state, ports=Ports(aws=free_port(), smtp=free_port(), sink=free_port()),
                           fetch_every=3600, asynchronous=False, consumers=False, dns=True)
        try:
            return stack.start()
        except (OSError, ConfigError) as exc:  # start() has stopped what it started
            busy = "in use" in str(exc)
            if not busy or attempt == attempts:
                raise ConfigError(f"the local stack did not start: {exc}") from exc
            out(f"  a chosen port was taken meanwhile ({exc}); trying other ports")
    raise AssertionError("unreachable")


def exit_status(results: dict[str, str]) -> int:
    """0 when every step ran and none FAILED (a skipped step does not fail the demo), else 1."""
    if set(results) != set(STEPS) or any(r == "FAILED" for r in results.values()):
        return common.EXIT_FAILED
    return common.EXIT_OK
