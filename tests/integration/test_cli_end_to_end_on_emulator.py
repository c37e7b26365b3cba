"""`mailgate` commands end to end on the emulator with Dovecot and the SMTP and DNS fixtures:
what an operator types, and what the relay and a receiving server see."""

from __future__ import annotations

import json

import boto3
import dkim
import pytest

from mailgate import dkim as D
from mailgate.adapters.dnspython import DnspythonResolver
from mailgate.entrypoints import outbound as outbound_handler
from tests.integration.test_cli_config import cli  # noqa: F401 - the fixture
from tests.integration.test_dns_check import AMAZONSES

pytestmark = pytest.mark.integration


def queued(aws) -> list[dict]:
    sqs = boto3.client("sqs", endpoint_url=aws.settings.endpoint_url, region_name="us-east-1")
    got = sqs.receive_message(QueueUrl=aws.settings.outbound_queue_url, MaxNumberOfMessages=10,
                              AttributeNames=["All"])
    return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
             "attributes": m.get("Attributes", {})} for m in got.get("Messages", [])]


def test_send_queued_by_the_cli_goes_out_through_the_relay_signed_with_the_key_dns_advises(
        cli, aws, smtp_server, smtp_tls, dns_server, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_tls.ca_file))  # the relay's CA, as a system CA
    assert cli("domain", "add", "example.test")[0] == 0
    code, out, err = cli("dkim", "keygen", "example.test", "--json")
    assert code == 0, err
    assert cli("server", "add-smtp", "relay", "--host", "127.0.0.1", "--port", str(smtp_server.port),
               "--user", smtp_server.user, "--from-filter", "example.test", "--password-stdin",
               stdin=smtp_server.password + "\n")[0] == 0
    code, out, err = cli("server", "test", "relay")
    assert code == 0, out + err
    code, out, err = cli("dns", "records", "example.test", "--offline", "--json")
    assert code == 0, err
    dns_server.load(json.loads(out)["zone"])
    dns_server.set_zone("amazonses.com", AMAZONSES)
    code, out, err = cli("send", "--from", "Billing <billing@example.test>", "--to", "bob@example.org",
                         "--subject", "Invoice 7", "--text", "Please find invoice 7.", "--record", "sale.order:7",
                         "--json")
    assert code == 0, err
    ref = json.loads(out)["ref"]
    records = queued(aws)
    assert len(records) == 1
    result = outbound_handler.handle(aws, {"Records": records})
    assert result == {"batchItemFailures": []}
    assert [m.rcpt_tos for m in smtp_server.messages] == [["bob@example.org"]]
    lookup = D.dnsfunc_from_resolver(DnspythonResolver.for_nameserver(dns_server.nameserver))
    assert dkim.verify(smtp_server.messages[0].data, dnsfunc=lookup)
    record = aws.messages.get("out:" + ref)
    assert record.outcome == "sent"
    code, out, err = cli("dns", "check", "example.test", "--nameserver", dns_server.nameserver)
    assert code == 0, out + err


@pytest.mark.parametrize("protocol", ["imap", "pop"])
def test_server_cli_adds_tests_fetches_and_removes_a_dovecot_mailbox(cli, aws, dovecot, mailbox_user, tmp_path,
                                                                      protocol, capsys):
    from tests.integration.test_fetch_dovecot import make_raw

    state = json.loads((tmp_path / "stack.json").read_text())
    state["fetch_cafile"] = str(dovecot.ca_pem)
    (tmp_path / "stack.json").write_text(json.dumps(state))
    port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port
    code, out, err = cli("server", f"add-{protocol}", "office", "--host", "127.0.0.1", "--port", str(port),
                         "--user", mailbox_user, "--password-stdin", "--ack", "leave", stdin="secret\n")
    assert code == 0, err
    dovecot.deliver(mailbox_user, make_raw(1))
    code, out, err = cli("server", "test", "office")
    assert code == 0, out + err
    assert "1 message(s) on the server" in out
    code, out, err = cli("server", "list", "--json")
    assert [r["name"] for r in json.loads(out)] == ["office"]
    code, out, err = cli("fetch", "now", "office", "--json")
    assert code == 0, out + err
    (res,) = json.loads(out)
    assert (res["status"], res["fetched"], res["ingested"]) == ("ok", 1, 1), res
    code, out, err = cli("fetch", "status", "--json")
    assert code == 0 and json.loads(out)[0]["consecutive_failures"] == 0, out
    code, out, err = cli("server", "remove", "office")
    assert code == 0, err
    code, out, err = cli("server", "test", "office")
    assert code == 1 and "no server 'office'" in err


def test_gateway_key_made_by_the_cli_is_what_records_advise_and_the_daily_check_accepts(cli, aws, dns_server):
    from mailgate.services import dnswatch

    assert cli("domain", "add", "shop.test")[0] == 0
    code, out, err = cli("dkim", "keygen", aws.settings.gateway_domain, "--json")
    assert code == 0, err
    made = json.loads(out)
    code, out, err = cli("dns", "records", "shop.test", "--offline", "--json")
    assert code == 0, err
    records = json.loads(out)
    txt = [r for r in records["records"] if r["purpose"] == "dkim" and r["rtype"] == "TXT"]
    assert [(r["name"], r["value"]) for r in txt] == [(made["record_name"], made["value"])]
    dns_server.load(records["zone"])
    dns_server.set_zone("amazonses.com", AMAZONSES)
    aws.resolvers = lambda: DnspythonResolver.for_nameserver(dns_server.nameserver, timeout=1.0)
    [result] = dnswatch.run_daily(aws)
    assert result["status"] == "ok", result
    assert aws.kv.get_item("dnscheck#shop.test")["status"] == "ok"
    dns_server.set_zone("shop.test", "@ IN TXT \"v=spf1 -all\"")
    [result] = dnswatch.run_daily(aws)
    assert result["published"] and result["status"] == "error", result


def test_server_disabled_after_days_of_failures_is_enabled_again_by_the_command_it_names(
        cli, aws, dovecot, mailbox_user, tmp_path):
    from mailgate.services import fetch
    from tests.integration.test_fetch_dovecot import make_raw, person

    state = json.loads((tmp_path / "stack.json").read_text())
    from mailgate.adapters.mailboxes import NetMailboxes

    state["fetch_cafile"] = str(dovecot.ca_pem)
    aws.mailboxes = NetMailboxes(cafile=state["fetch_cafile"])
    (tmp_path / "stack.json").write_text(json.dumps(state))
    assert cli("server", "add-imap", "office", "--host", "127.0.0.1", "--port", str(dovecot.imaps_port),
               "--user", mailbox_user, "--folder", "Orders", "--password-stdin", stdin="secret\n")[0] == 0
    days = 24 * 3600.0
    start = 1_790_000_000.0
    for t in (start, start + 6 * days):  # the folder is missing for six days: the worker disables the server
        res = fetch.fetch_mailbox(aws, "office", deadline=10**12, max_messages=10, now=lambda: t)
        assert res.error_code == "folder-missing", res
    assert aws.config.get_incoming("office").enabled is False
    code, out, err = cli("fetch", "now", "office", "--json")
    (res,) = json.loads(out)
    assert res["status"] == "disabled"
    assert "mailgate server enable office" in " ".join(res["notes"])
    # the person fixes the cause, checks, and enables the server as told
    m = person(dovecot, mailbox_user)
    m.create("Orders")
    m.append("Orders", None, None, make_raw(1))
    m.logout()
    code, out, err = cli("server", "test", "office")
    assert code == 0, out + err
    code, out, err = cli("server", "enable", "office")
    assert code == 0, err
    assert aws.config.get_incoming("office").enabled is True
    # its failing days are over: one more failure does not disable it again at once
    assert fetch.health(aws, "office").get("failing_since") is None
    code, out, err = cli("fetch", "now", "office", "--json")
    assert code == 0 and json.loads(out)[0]["fetched"] == 1, out + err


def test_ed25519_key_made_by_the_cli_is_advised_checked_and_verifies_at_the_receiver(
        cli, aws, smtp_server, smtp_tls, dns_server, monkeypatch):
    """`dkim keygen --type ed25519` adds a second signature (RFC 8463) to every message: `dns
    records` must say where its key goes and `dns check` must see it, or receivers see a signature
    that fails on every message."""
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_tls.ca_file))
    assert cli("domain", "add", "example.test")[0] == 0
    assert cli("dkim", "keygen", "example.test")[0] == 0
    code, out, err = cli("dkim", "keygen", "example.test", "--type", "ed25519", "--json")
    assert code == 0, err
    made = json.loads(out)
    assert made["selector"] == "mailgate-ed25519"
    assert cli("server", "add-smtp", "relay", "--host", "127.0.0.1", "--port", str(smtp_server.port),
               "--user", smtp_server.user, "--from-filter", "example.test", "--password-stdin",
               stdin=smtp_server.password + "\n")[0] == 0
    code, out, err = cli("dns", "records", "example.test", "--offline", "--json")
    assert code == 0, err
    advice = json.loads(out)
    assert (made["record_name"], "TXT", made["value"]) in [(r["name"], r["rtype"], r["value"])
                                                          for r in advice["records"]]
    # published without the Ed25519 record, the check says what is missing
    dns_server.load(advice["zone"].replace(made["record_name"] + ".", "unrelated._domainkey.example.test."))
    dns_server.set_zone("amazonses.com", AMAZONSES)
    code, out, err = cli("dns", "check", "example.test", "--nameserver", dns_server.nameserver)
    assert code == 1 and made["record_name"] in out, out
    dns_server.reset()
    dns_server.load(advice["zone"])
    dns_server.set_zone("amazonses.com", AMAZONSES)
    code, out, err = cli("dns", "check", "example.test", "--nameserver", dns_server.nameserver)
    assert code == 0, out + err
    code, out, err = cli("send", "--from", "billing@example.test", "--to", "bob@example.org",
                         "--subject", "Invoice 8", "--text", "Invoice 8.", "--now")
    assert code == 0, out + err
    data = smtp_server.messages[0].data
    lookup = D.dnsfunc_from_resolver(DnspythonResolver.for_nameserver(dns_server.nameserver))
    verifier = dkim.DKIM(data)
    # a receiver checks every signature: the RSA one and the Ed25519 one both verify
    assert [verifier.verify(idx=i, dnsfunc=lookup) for i in range(2)] == [True, True]
    assert data.count(b"a=ed25519-sha256") == 1 and data.count(b"a=rsa-sha256") == 1


def test_an_incoming_server_named_like_an_outgoing_one_does_not_replace_it_or_its_password(cli, aws):
    """Servers share one name space (one table item and one secret per name)."""
    assert cli("server", "add-smtp", "relay", "--host", "smtp.example.test", "--user", "u", "--password-stdin",
               stdin="smtp-pass\n")[0] == 0
    code, out, err = cli("server", "add-imap", "relay", "--host", "imap.example.test", "--user", "u",
                         "--password-stdin", stdin="imap-pass\n")
    assert code == 2 and "relay" in err and "outgoing" in err and "mailgate server remove relay" in err, err
    assert aws.config.get_outgoing("relay") is not None
    assert aws.secrets.get(aws.settings.server_secret_prefix + "smtp/relay") == "smtp-pass"
    # and the other way round
    assert cli("server", "add-pop", "inbox", "--host", "pop.example.test", "--user", "u", "--password-stdin",
               stdin="pop-pass\n")[0] == 0
    code, out, err = cli("server", "add-smtp", "inbox", "--host", "smtp.example.test", "--user", "u",
                         "--password-stdin", stdin="x\n")
    assert code == 2 and "incoming" in err, err
    assert aws.config.get_incoming("inbox") is not None
    # re-adding a server of the same kind still updates it
    assert cli("server", "add-smtp", "relay", "--host", "smtp2.example.test", "--user", "u", "--password-stdin",
               stdin="new-pass\n")[0] == 0
    assert aws.config.get_outgoing("relay").host == "smtp2.example.test"


@pytest.mark.parametrize("protocol,ack", [("imap", "leave"), ("pop", "delete")])
def test_server_pointed_at_another_mailbox_fetches_that_mailbox_from_the_start(cli, aws, dovecot, tmp_path,
                                                                               protocol, ack):
    """An operator re-adds `office` for a new account (or removes and adds it again): the old
    mailbox's cursor must not hide the new one's mail. UIDVALIDITY is only unique per mailbox name
    on one server (RFC 3501 2.3.1.1): Dovecot derives it from the clock, others count from 1."""
    from tests.integration.test_fetch_dovecot import make_raw, person

    state = json.loads((tmp_path / "stack.json").read_text())
    state["fetch_cafile"] = str(dovecot.ca_pem)
    (tmp_path / "stack.json").write_text(json.dumps(state))
    old, new = dovecot.add_user(), dovecot.add_user()
    for n in range(2):
        dovecot.deliver(old, make_raw(n, tag="old"))
    for n in range(3):
        dovecot.deliver(new, make_raw(n, tag="new"))
    m = person(dovecot, old)
    uidvalidity = m.status("INBOX", "(UIDVALIDITY)")[1][0].split()[-1].strip(b")").decode()
    m.logout()
    person(dovecot, new).logout()
    dovecot.doveadm("mailbox", "update", "-u", new, "--uid-validity", uidvalidity, "INBOX")
    m = person(dovecot, new)
    assert m.status("INBOX", "(UIDVALIDITY)")[1][0].split()[-1].strip(b")").decode() == uidvalidity
    m.logout()

    def add(user):
        port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port
        return cli("server", f"add-{protocol}", "office", "--host", "127.0.0.1", "--port", str(port),
                   "--user", user, "--ack", ack, "--password-stdin", stdin="secret\n")[0]

    assert add(old) == 0
    code, out, err = cli("fetch", "now", "office", "--json")
    assert json.loads(out)[0]["fetched"] == 2, out + err
    assert add(new) == 0
    code, out, err = cli("fetch", "now", "office", "--json")
    assert json.loads(out)[0]["fetched"] == 3, out + err
    # removed and added again: a fresh start too
    assert cli("server", "remove", "office")[0] == 0
    assert add(new) == 0
    code, out, err = cli("fetch", "status", "--json")
    assert json.loads(out)[0].get("last_success") is None, out
    assert aws.kv.get_item("cursor#office") is None
    if ack == "delete":  # every message of both mailboxes was stored before it was deleted
        assert sorted(r.message_id for r in aws.messages.list(limit=100)) == sorted(
            [f"old-{n}@example.org" for n in range(2)] + [f"new-{n}@example.org" for n in range(3)])


def test_dkim_key_rotation_to_a_new_selector_can_be_completed_from_the_cli(
        cli, aws, smtp_server, smtp_tls, dns_server, monkeypatch):
    """docs/outbound.md: `dkim keygen DOMAIN --selector s2026`, publish, then switch the domain."""
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_tls.ca_file))
    assert cli("domain", "add", "example.test")[0] == 0
    assert cli("dkim", "keygen", "example.test")[0] == 0
    code, out, err = cli("dkim", "keygen", "example.test", "--selector", "s2026", "--json")
    assert code == 0, err
    new = json.loads(out)
    code, out, err = cli("dkim", "keygen", "example.test")  # the old key exists: the message says what to do
    assert code == 1 and "--dkim-selector" in err, err
    code, out, err = cli("domain", "add", "example.test", "--dkim-selector", "s2026")
    assert code == 0, err
    assert cli("domain", "add", "example.test", "--loop-limit", "30")[0] == 0  # an update keeps the selector
    assert aws.config.get_domain("example.test").dkim_selector == "s2026"
    code, out, err = cli("dns", "records", "example.test", "--offline", "--json")
    advice = json.loads(out)
    assert (new["record_name"], new["value"]) in [(r["name"], r["value"]) for r in advice["records"]]
    dns_server.load(advice["zone"])
    assert cli("server", "add-smtp", "relay", "--host", "127.0.0.1", "--port", str(smtp_server.port),
               "--user", smtp_server.user, "--password-stdin", stdin=smtp_server.password + "\n")[0] == 0
    assert cli("send", "--from", "billing@example.test", "--to", "bob@example.org", "--subject", "Hi",
               "--text", "Hello", "--now")[0] == 0
    data = smtp_server.messages[0].data
    assert b"s=s2026" in data
    lookup = D.dnsfunc_from_resolver(DnspythonResolver.for_nameserver(dns_server.nameserver))
    assert dkim.verify(data, dnsfunc=lookup)
