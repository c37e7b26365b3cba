"""`mailgate demo` as a user runs it (`make demo`): in-process, against a fresh local stack.

The demo runs once for the module; each step's test reads that step's part of the output, so a
failing step names itself (and the demo's own FAILED line says why).
"""

from __future__ import annotations

import contextlib
import io
import re

import pytest

from mailgate.errors import ConfigError
from mailgate_dev.cli.demo import STEPS, exit_status
from mailgate_dev.cli.main import main
from mailgate_dev.local import dovecot as dovecot_mod

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def demo():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["demo"])
    text = out.getvalue()
    print(text)  # shown by pytest when a test fails
    return code, text


def section(text: str, step: str) -> str:
    """The lines of one step: from its "[n/5] step:" header to its "=> step:" line."""
    m = re.search(rf"^\[\d/\d\] {step}: .*?^  => {step}: \S+$", text, re.M | re.S)
    assert m, f"the demo printed no section for step {step!r}:\n{text}"
    return m.group(0)


def failed_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("FAILED:")]


def assert_step_ok(text: str, step: str, *facts: str) -> None:
    part = section(text, step)
    assert "FAILED" not in part, part
    assert part.rstrip().endswith(f"=> {step}: ok"), part
    ok_lines = [line for line in part.splitlines() if line.startswith("  ok: ")]
    for fact in facts:
        assert any(fact in line for line in ok_lines), f"no ok line saying {fact!r}:\n{part}"


def test_demo_exits_0_and_says_every_step_is_ok(demo):
    code, text = demo
    assert code == 0, text
    assert re.search(r"^demo ok in \d+ s: inbound ok, outbound ok, bounces ok, dns ok, fetch ok$", text, re.M), text


def test_inbound_step_opens_a_record_threads_the_reply_notifies_and_answers_unknown_alias_once(demo):
    part = section(demo[1], "inbound")
    for fact in ('opened a record: "Record To Create", model crm.lead', "boss@partner.test follows the thread",
                 "landed in the thread", '"Message Routed To Thread" published', "a second one is not answered again"):
        assert any(fact in line for line in part.splitlines() if line.startswith("  ok: ")), part
    assert_step_ok(demo[1], "inbound",
                   "the follower was notified",
                   "DKIM-signed (d=example.test) and verifies",
                   "its Reply-To is the thread's reply address",
                   "answered once")


def test_outbound_step_sends_from_a_record_dkim_signed_and_a_tampered_copy_fails(demo):
    assert_step_ok(demo[1], "outbound",
                   "outbound.send from record crm.lead/42: sent via local-sink",
                   "the SMTP sink received it",
                   "dkimpy verifies it against the local DNS server",
                   "a tampered copy (45 -> 4500 chairs) fails verification")


def test_bounces_step_suppresses_the_dead_address_and_skips_the_next_message(demo):
    assert_step_ok(demo[1], "bounces",
                   "its envelope sender is the VERP address bounce+",
                   "DSN (RFC 3464, 5.1.1 user unknown) was sent",
                   "dead@client.test is suppressed",
                   'the next message to it is skipped: Send Result says "suppressed"',
                   "nothing reached the sink for it")


def test_dns_step_serves_the_plan_and_every_record_checks_ok(demo):
    part = section(demo[1], "dns")
    assert_step_ok(demo[1], "dns", "`mailgate dns records example.test` printed the plan",
                   "`mailgate dns check example.test`: ok")
    for record in ("spf   example.test", "dkim  mailgate._domainkey.example.test", "dmarc _dmarc.example.test",
                   "mx    example.test"):
        assert f"  ok: {record}: ok" in part, part


def test_fetch_step_fetches_routes_and_marks_seen_on_a_private_dovecot(demo):
    if not dovecot_mod.installed():
        pytest.fail(dovecot_mod.not_installed_message())  # like the dovecot fixture: fail, never skip
    assert_step_ok(demo[1], "fetch", "a private Dovecot listens on 127.0.0.1:",
                   "fetch now local-imap: ok, fetched 1, stored 1",
                   "it was routed: new-record",
                   "it is acknowledged on the server (IMAP FLAGS show \\Seen)")


def test_demo_restores_the_environment_and_leaves_no_state_behind(demo):
    import os
    import pathlib

    assert "MAILGATE_LOCAL_DIR" not in os.environ or not os.environ["MAILGATE_LOCAL_DIR"].startswith("/tmp/mailgate-demo-")
    state = re.search(r"fresh local stack in (\S+) ", demo[1]).group(1)
    assert not pathlib.Path(state).exists()


def test_a_failed_or_missing_step_makes_the_exit_status_1_and_a_skipped_one_does_not():
    every_ok = {s: "ok" for s in STEPS}
    assert exit_status(every_ok) == 0
    assert exit_status({**every_ok, "fetch": "skipped"}) == 0
    assert exit_status({**every_ok, "dns": "FAILED"}) == 1
    assert exit_status({s: "ok" for s in STEPS[:-1]}) == 1  # the tour stopped early


def test_starting_dovecot_when_it_is_not_installed_names_the_apt_command(tmp_path, monkeypatch):
    monkeypatch.setattr(dovecot_mod, "DOVECOT", str(tmp_path / "no-dovecot"))
    with pytest.raises(ConfigError, match=r"apt-get install -y dovecot-imapd dovecot-pop3d"):
        dovecot_mod.DovecotServer(tmp_path / "dv").start()


def test_dev_imap_stack_fetches_its_demo_mailbox_on_the_schedule_and_marks_it_seen():
    """`mailgate dev --imap`: the stack's own Dovecot, fetched by the schedule -> fetch worker path."""
    import imaplib
    import os
    import pathlib
    import shutil
    import ssl
    import tempfile
    import time

    from mailgate_dev.local.stack import IMAP_PASSWORD, IMAP_SERVER, IMAP_USER, LocalStack, Ports, free_port

    if not dovecot_mod.installed():
        pytest.fail(dovecot_mod.not_installed_message())
    # not pytest's tmp_path: its parent is private to root, and Dovecot's mail processes run as "mail"
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="mailgate-dev-imap-"))
    os.chmod(tmp_path, 0o755)
    saved = dict(os.environ)
    stack = LocalStack(state_dir=tmp_path / "local", ports=Ports(aws=free_port(), smtp=free_port(), sink=free_port()),
                       fetch_every=1, imap=True)
    try:
        stack.start()
        text = stack.describe()
        assert f"IMAPS 127.0.0.1:{stack.dovecot.imaps_port}" in text
        assert f"user {IMAP_USER!r}, password {IMAP_PASSWORD!r}" in text and str(stack.dovecot.ca_file) in text
        stack.dovecot.deliver(IMAP_USER, b"From: eve@client.test\r\nTo: sales@example.test\r\nSubject: via IMAP\r\n"
                                         b"Message-ID: <dev-imap@client.test>\r\n\r\nhello\r\n")
        c = stack.container()
        assert c.config.get_incoming(IMAP_SERVER).port == stack.dovecot.imaps_port
        deadline, record = time.monotonic() + 30, None
        while record is None and time.monotonic() < deadline:
            record = next((r for r in c.messages.list(limit=100) if r.message_id == "dev-imap@client.test"), None)
            time.sleep(0.2)
        assert record is not None, "the schedule did not fetch the message within 30 s"
        assert record.outcome == "new-record" and record.source == f"imap:{IMAP_SERVER}"
        imap = imaplib.IMAP4_SSL("127.0.0.1", stack.dovecot.imaps_port,
                                 ssl_context=ssl.create_default_context(cafile=str(stack.dovecot.ca_file)))
        imap.login(IMAP_USER, IMAP_PASSWORD)
        imap.select("INBOX", readonly=True)
        deadline = time.monotonic() + 10
        while b"\\Seen" not in imap.fetch("1", "(FLAGS)")[1][0] and time.monotonic() < deadline:
            time.sleep(0.2)  # the worker acknowledges right after routing
        assert b"\\Seen" in imap.fetch("1", "(FLAGS)")[1][0]
        imap.logout()
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert stack.dovecot is None
