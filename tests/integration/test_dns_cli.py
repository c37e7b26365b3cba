"""`mailgate dns records|check` end to end: the stack is the in-memory container, DNS is the
local authoritative server. This is also the demo's step: publish what `records` prints, check it."""

from __future__ import annotations

import argparse
import json

import pytest

from mailgate.domain import AliasDomain
from mailgate.settings import Settings
from mailgate_dev import fakes
from mailgate_dev.cli import common
from mailgate_dev.cli import dns as dns_cli
from tests.integration.test_dns_check import AMAZONSES, pem

pytestmark = pytest.mark.integration


@pytest.fixture
def stack(monkeypatch):
    c = fakes.in_memory(Settings(table_name="t", bucket_name="b", gateway_domain="gateway.test", region="eu-west-1"))
    c.config.put_domain(AliasDomain("example.test"))
    c.secrets.put("mailgate/dkim/gateway.test/mailgate", pem())
    monkeypatch.setattr(common, "get_container", lambda args: c)
    return c


def mailgate(*argv) -> int:
    parser = argparse.ArgumentParser(prog="mailgate")
    dns_cli.register(parser.add_subparsers(dest="area", required=True))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_records_then_check_of_the_published_records_exits_zero(stack, dns_server, capsys):
    dns_server.set_zone("example.test", '@ IN TXT "v=spf1 mx -all"\n@ IN MX 10 old-mx.example.test.')
    assert mailgate("dns", "records", "example.test", "--json", "--nameserver", dns_server.nameserver) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["existing_spf"] == ["v=spf1 mx -all"]
    dns_server.reset()
    # the zone-file form, as printed, is what gets published
    assert sorted(dns_server.load(out["zone"])) == ["example.test", "gateway.test"]
    dns_server.set_zone("amazonses.com", AMAZONSES)
    assert mailgate("dns", "check", "example.test", "--nameserver", dns_server.nameserver) == 0
    text = capsys.readouterr().out
    assert "example.test: ok (" in text and "DNS queries" in text
    assert "v=spf1 mx include:amazonses.com -all" in text


def test_records_text_shows_a_table_and_the_zone_file(stack, capsys):
    assert mailgate("dns", "records", "example.test", "--offline") == 0
    text = capsys.readouterr().out
    assert "PURPOSE" in text and "Zone-file form:" in text
    assert "mailgate._domainkey.example.test. 3600 IN CNAME mailgate._domainkey.gateway.test." in text
    assert "example.test. 3600 IN MX 10 inbound-smtp.eu-west-1.amazonaws.com." in text


def test_check_of_broken_dns_exits_one_with_json_findings(stack, dns_server, capsys):
    dns_server.set_zone("example.test", '@ IN TXT "v=spf1 +all"')
    assert mailgate("dns", "check", "example.test", "--json", "--nameserver", dns_server.nameserver) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["domain"] == "example.test" and out["status"] == "error"
    assert {c["record"] for c in out["checks"]} == {"spf", "dkim", "dmarc", "mx"}
    assert all(set(c) >= {"record", "status", "found", "expected", "fix"} for c in out["checks"])
    assert all(c["fix"] for c in out["checks"] if c["status"] != "ok")


def test_bad_nameserver_is_bad_usage(stack, capsys):
    assert mailgate("dns", "check", "example.test", "--nameserver", "127.0.0.1:99999") == 2
    assert "bad port" in capsys.readouterr().err


def test_unknown_domain_says_how_to_add_it(stack, capsys):
    assert mailgate("dns", "check", "nope.test", "--nameserver", "127.0.0.1:53") == 1
    assert "no alias domain 'nope.test'" in capsys.readouterr().err


def test_not_a_domain_name_is_bad_usage(stack, capsys):
    assert mailgate("dns", "records", "exa mple", "--offline") == 2


def test_demo_step_zone_output_served_by_the_local_server_checks_ok(stack, dns_server, capsys):
    assert mailgate("dns", "records", "example.test", "--offline", "--zone") == 0
    zone_text = capsys.readouterr().out
    assert zone_text.startswith("; zone example.test\n")
    dns_server.load(zone_text + "; zone amazonses.com\n" + AMAZONSES + "\n")
    assert mailgate("dns", "check", "example.test", "--nameserver", dns_server.nameserver) == 0
