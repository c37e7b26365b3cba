"""`check_domain` against a real authoritative DNS server on 127.0.0.1, one zone per case."""

from __future__ import annotations

import functools

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mailgate.adapters.dnspython import DnspythonResolver
from mailgate.dnsadvice import (
    check_domain, dkim_key_from_pem, make_plan, records_for_plan, zone_lines,
)
from mailgate.domain import AliasDomain, OutgoingServer
from mailgate_dev.localdns import LocalDnsServer

pytestmark = pytest.mark.integration

DOMAIN, GATEWAY, REGION = "example.test", "gateway.test", "eu-west-1"


@functools.cache
def pem(bits: int = 2048, n: int = 0) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def plan(**kw):
    transports = kw.pop("transports", [])
    return make_plan(AliasDomain(DOMAIN), transports, region=REGION, gateway_domain=GATEWAY,
                     dkim_keys={GATEWAY: pem()}, **kw)


def dkim_txt(pem_text: str) -> str:
    """A zone-file TXT value (255-octet strings) holding the public half of `pem_text`."""
    return LocalDnsServer.txt(dkim_key_from_pem(pem_text).record)


SPF = '@ IN TXT "v=spf1 include:amazonses.com ~all"'
MX = "@ IN MX 10 inbound-smtp.eu-west-1.amazonaws.com."
MAILFROM = ('bounce IN MX 10 feedback-smtp.eu-west-1.amazonses.com.\n'
            'bounce IN TXT "v=spf1 include:amazonses.com ~all"')
DKIM = "mailgate._domainkey IN CNAME mailgate._domainkey.gateway.test."
AMAZONSES = '@ IN TXT "v=spf1 ip4:199.255.192.0/22 ip4:54.240.0.0/18 -all"'
DMARC = '_dmarc IN TXT "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.test"'


def serve(dns_server, *, spf=SPF, mx=MX, mailfrom=MAILFROM, dkim=DKIM, dmarc=DMARC, gateway_key=None, extra=""):
    dns_server.set_zone(DOMAIN, "\n".join(x for x in (spf, mx, mailfrom, dkim, dmarc, extra) if x))
    dns_server.set_zone(GATEWAY, f"mailgate._domainkey IN TXT {gateway_key or dkim_txt(pem())}\n"
                                 "@ IN MX 10 inbound-smtp.eu-west-1.amazonaws.com.")
    dns_server.set_zone("amazonses.com", AMAZONSES)


def run(dns_server, p=None, timeout=2.0):
    resolver = DnspythonResolver.for_nameserver(dns_server.nameserver, timeout=timeout)
    return check_domain(p or plan(), resolver)


def only(report, record, status=None):
    found = [f for f in report.by_record(record) if f.name in (DOMAIN, f"_dmarc.{DOMAIN}", f"mailgate._domainkey.{DOMAIN}")]
    if status:
        found = [f for f in found if f.status == status]
    assert found, f"no {record} finding with status {status}: {report.to_dict()}"
    return found


def test_correct_records_give_ok_for_every_record_and_each_query_is_asked_once(dns_server):
    serve(dns_server)
    report = run(dns_server)
    assert report.status == "ok", report.to_dict()
    assert {f.record for f in report.findings} == {"spf", "dkim", "dmarc", "mx"}
    asked = [(q.name, q.rtype) for q in dns_server.queries]
    assert len(asked) == len(set(asked)), asked
    assert report.queries == len(asked)
    dkim = only(report, "dkim")[0]
    assert "matches our private key" in dkim.found and "CNAME mailgate._domainkey.example.test -> mailgate._domainkey.gateway.test" in dkim.found


def test_records_we_advise_pass_our_own_check_when_published(dns_server):
    p = plan(transports=[OutgoingServer("office", "smtp.office365.com", 587)])
    records = records_for_plan(p, existing_spf="v=spf1 mx -all")
    for zone in (DOMAIN, GATEWAY):
        dns_server.set_zone(zone, zone_lines([r for r in records if r.zone == zone]))
    dns_server.set_zone("amazonses.com", AMAZONSES)
    dns_server.set_zone("spf.protection.outlook.com", '@ IN TXT "v=spf1 ip4:40.92.0.0/15 -all"')
    report = run(dns_server, p)
    assert report.status == "ok", report.to_dict()
    assert "include:spf.protection.outlook.com" in only(report, "spf")[0].found


def test_missing_spf_is_an_error_whose_fix_is_the_record_to_publish(dns_server):
    serve(dns_server, spf='@ IN TXT "google-site-verification=abc"')
    f = only(report := run(dns_server), "spf", "error")[0]
    assert report.status == "error"
    assert "no SPF record" in f.found
    assert '"v=spf1 include:amazonses.com ~all"' in f.fix


def test_two_spf_records_are_an_error_and_the_fix_merges_them_into_one(dns_server):
    serve(dns_server, spf='@ IN TXT "v=spf1 include:_spf.google.com ~all"\n@ IN TXT "v=spf1 include:amazonses.com -all"')
    f = only(run(dns_server), "spf", "error")[0]
    assert "2 SPF records" in f.found and "RFC 7208 4.5" in f.found
    merged = f.fix.split('"')[1]
    assert sorted(merged.split()) == sorted("v=spf1 include:_spf.google.com include:amazonses.com ~all".split())
    assert merged.endswith(" ~all")


def test_too_many_lookups_through_nested_includes_is_an_error(dns_server):
    # the top record has 3 includes, each with 4 a: terms -> 3 + 12 DNS-querying terms
    nested = "\n".join(f'n{i} IN TXT "v=spf1 a:h1.example.test a:h2.example.test a:h3.example.test a:h4.example.test ~all"'
                       for i in range(3))
    hosts = "\n".join(f"h{i} IN A 192.0.2.{i}" for i in range(1, 5))
    serve(dns_server, spf='@ IN TXT "v=spf1 include:n0.example.test include:n1.example.test '
                          'include:n2.example.test include:amazonses.com ~all"', extra=nested + "\n" + hosts)
    f = [f for f in only(run(dns_server), "spf", "error") if "more than 10" in f.found]
    assert f and "RFC 7208 4.6.4" in f[0].expected


def test_plus_all_is_a_security_error(dns_server):
    serve(dns_server, spf='@ IN TXT "v=spf1 include:amazonses.com +all"')
    f = only(run(dns_server), "spf", "error")
    assert any("+all" in x.found and "every host" in x.found for x in f)


def test_spf_without_all_is_a_warning_not_an_error(dns_server):
    serve(dns_server, spf='@ IN TXT "v=spf1 include:amazonses.com"')
    report = run(dns_server)
    assert report.status == "warn"
    assert "no all term" in only(report, "spf", "warn")[0].found


def test_include_loop_is_an_error_and_does_not_hang(dns_server):
    serve(dns_server, spf='@ IN TXT "v=spf1 include:loop.example.test include:amazonses.com ~all"',
          extra='loop IN TXT "v=spf1 include:example.test ~all"')
    f = only(run(dns_server), "spf", "error")
    assert any("loops back" in x.found for x in f)


def test_missing_dkim_cname_is_an_error_naming_the_cname_to_publish(dns_server):
    serve(dns_server, dkim="")
    f = only(run(dns_server), "dkim", "error")[0]
    assert "does not exist" in f.found
    assert f.fix == "Publish CNAME mailgate._domainkey.example.test mailgate._domainkey.gateway.test."


def test_dkim_cname_to_a_key_that_is_not_ours_is_an_error(dns_server):
    serve(dns_server, dkim="mailgate._domainkey IN CNAME other._domainkey.gateway.test.")
    dns_server.set_zone(GATEWAY, f"mailgate._domainkey IN TXT {dkim_txt(pem())}\n"
                                 f"other._domainkey IN TXT {dkim_txt(pem(2048, 1))}")
    f = only(run(dns_server), "dkim", "error")[0]
    assert "not the public half of our private key" in f.found
    assert f.fix == "Point mailgate._domainkey.example.test to mailgate._domainkey.gateway.test."


def test_dkim_cname_to_a_revoked_key_is_an_error(dns_server):
    serve(dns_server, gateway_key='"v=DKIM1; k=rsa; p="')
    f = only(run(dns_server), "dkim", "error")[0]
    assert "revoked (empty p=)" in f.found


def test_dkim_key_shorter_than_2048_bits_is_reported(dns_server):
    small = pem(1024)
    serve(dns_server, gateway_key=dkim_txt(small))
    p = make_plan(AliasDomain(DOMAIN), [], region=REGION, gateway_domain=GATEWAY, dkim_keys={GATEWAY: small})
    f = only(run(dns_server, p), "dkim", "warn")[0]
    assert "1024 bits" in f.found


def test_dkim_cname_loop_is_an_error_not_a_hang(dns_server):
    serve(dns_server, dkim="mailgate._domainkey IN CNAME a.example.test.", extra="a IN CNAME mailgate._domainkey.example.test.")
    f = only(run(dns_server), "dkim", "error")[0]
    assert "loops" in f.found


def test_dmarc_reject_without_alignment_is_an_error(dns_server):
    serve(dns_server, dkim="", mailfrom="", dmarc='_dmarc IN TXT "v=DMARC1; p=reject"')
    report = run(dns_server)
    f = only(report, "dmarc", "error")[0]
    assert "does not align" in f.found and "SES" in f.found
    assert "reject" in f.fix


def test_dmarc_reject_with_dkim_alignment_is_ok(dns_server):
    serve(dns_server, mailfrom="", dmarc='_dmarc IN TXT "v=DMARC1; p=reject; rua=mailto:d@example.test"')
    report = run(dns_server)
    assert only(report, "dmarc")[0].status == "ok"


def test_mx_elsewhere_is_an_error_naming_the_ses_inbound_endpoint(dns_server):
    serve(dns_server, mx="@ IN MX 10 mx.provider.test.")
    f = only(run(dns_server), "mx", "error")[0]
    assert "inbound-smtp.eu-west-1.amazonaws.com" in f.fix


def test_redirect_mode_checks_the_gateway_mx_and_the_domain_keeps_its_own(dns_server):
    serve(dns_server, mx="@ IN MX 10 mx.provider.test.")
    report = run(dns_server, plan(inbound="redirect"))
    mx = report.by_record("mx")
    assert {(f.name, f.status) for f in mx} >= {(GATEWAY, "ok"), (DOMAIN, "ok")}


def test_domain_that_does_not_exist_gives_findings_not_a_crash(dns_server):
    dns_server.set_zone("test", "other IN A 192.0.2.1")
    dns_server.set_zone(GATEWAY, f"mailgate._domainkey IN TXT {dkim_txt(pem())}")
    report = run(dns_server)
    assert report.status == "error"
    spf = only(report, "spf", "error")[0]
    assert "NXDOMAIN" in spf.found
    assert {f.record for f in report.findings} >= {"spf", "dkim", "dmarc", "mx"}


def test_nameserver_that_never_answers_gives_timeouts_and_asks_each_name_once(dns_server):
    dns_server.blackhole(DOMAIN)
    report = run(dns_server, timeout=0.2)
    assert report.status == "error"
    assert any("timeout" in f.found for f in report.findings)
    asked = [(q.name, q.rtype) for q in dns_server.queries]
    # each question is sent twice (one retry for a lost datagram), then answered from the cache
    assert all(asked.count(q) == 2 for q in asked), asked
    assert report.queries == len(asked)
    assert all(f.status != "ok" for f in report.findings if f.name.endswith(DOMAIN))


def test_servfail_is_a_finding_with_a_fix(dns_server):
    serve(dns_server)
    dns_server.servfail(f"_dmarc.{DOMAIN}")
    f = only(run(dns_server), "dmarc", "error")[0]
    assert "SERVFAIL" in f.found and "answer" in f.fix


def test_spf_split_into_several_strings_upper_case_and_odd_spacing_is_accepted(dns_server):
    serve(dns_server, spf='@ IN TXT "V=SPF1   INCLUDE:AmazonSES.com" "    ~ALL"')
    report = run(dns_server)
    assert only(report, "spf")[0].status == "ok", report.to_dict()


def test_too_many_void_lookups_is_an_error(dns_server):
    serve(dns_server, spf='@ IN TXT "v=spf1 a:gone1.example.test a:gone2.example.test mx:gone3.example.test '
                          'include:amazonses.com ~all"')
    f = only(run(dns_server), "spf", "error")
    assert any("3 void lookups" in x.found for x in f)


def test_ses_includes_are_followed_when_the_server_publishes_them(dns_server):
    serve(dns_server, spf='@ IN TXT "v=spf1 redirect=_spf.example.test"',
          extra='_spf IN TXT "v=spf1 include:amazonses.com -all"')
    report = run(dns_server)
    assert only(report, "spf")[0].status == "ok", report.to_dict()
    assert dns_server.count("amazonses.com", "TXT") == 1


def test_answer_too_big_for_udp_is_fetched_again_over_tcp(dns_server):
    big = " ".join(f'"{"x" * 250}"' for _ in range(8))
    dns_server.set_zone(DOMAIN, f"big IN TXT {big}")
    resolver = DnspythonResolver.for_nameserver(dns_server.nameserver)
    answer = resolver.query(f"big.{DOMAIN}", "TXT")
    assert answer.records == ("x" * 2000,)
    assert [q.transport for q in dns_server.queries] == ["udp", "tcp"]


def test_resolver_asks_each_name_and_type_once_per_run_even_when_it_fails(dns_server):
    dns_server.set_zone(DOMAIN, '@ IN TXT "v=spf1 -all"')
    resolver = DnspythonResolver.for_nameserver(dns_server.nameserver)
    for _ in range(3):
        assert resolver.query("EXAMPLE.test.", "TXT").records == ("v=spf1 -all",)
        assert resolver.query(f"nope.{DOMAIN}", "TXT").error == "nxdomain"
        assert resolver.query(DOMAIN, "MX").error == "nodata"
    assert resolver.queries == 3 == len(dns_server.queries)


def test_null_mx_from_a_real_server_is_an_error(dns_server):
    serve(dns_server, mx="@ IN MX 0 .")
    f = only(run(dns_server), "mx", "error")[0]
    assert "null MX" in f.found and "RFC 7505" in f.found
