"""Which records a customer must publish (pure)."""

from __future__ import annotations

import base64
import functools

import dns.zone
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from mailgate.dnsadvice import (
    dkim_key_from_pem, make_plan, required_records, smtp_spf_term, transports_for, zone_lines,
)
from mailgate.domain import AliasDomain, OutgoingServer

D = AliasDomain("Example.COM")


@functools.cache
def rsa_pem() -> str:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def by(records, purpose, rtype=None):
    return [r for r in records if r.purpose == purpose and (rtype is None or r.rtype == rtype)]


def records(**kw):
    kw.setdefault("region", "eu-west-1")
    kw.setdefault("gateway_domain", "gw.example.net")
    transports = kw.pop("transports", [])
    return required_records(D, transports, **kw)


def test_mx_points_the_domain_to_the_ses_inbound_endpoint_of_the_region():
    mx = by(records(), "mx")
    assert [(r.name, r.rtype, r.value) for r in mx] == [("example.com", "MX", "10 inbound-smtp.eu-west-1.amazonaws.com")]


def test_redirect_mode_asks_for_the_catchall_forwarding_and_the_gateway_mx():
    mx = by(records(inbound="redirect"), "mx")
    assert ("gw.example.net", "MX", "10 inbound-smtp.eu-west-1.amazonaws.com") in [(r.name, r.rtype, r.value) for r in mx]
    assert ("catchall@example.com", "REDIRECT", "catchall@gw.example.net") in [(r.name, r.rtype, r.value) for r in mx]


def test_spf_is_one_record_that_keeps_existing_mechanisms_and_adds_ses():
    spf = [r for r in by(records(existing_spf="v=spf1 include:_spf.google.com -all"), "spf", "TXT")
           if r.name == "example.com"]
    assert [r.value for r in spf] == ["v=spf1 include:_spf.google.com include:amazonses.com -all"]


def test_spf_authorizes_the_customers_smtp_host_known_and_unknown():
    recs = records(transports=[OutgoingServer("g", "smtp.gmail.com", 587), OutgoingServer("own", "mail.example.com", 465)])
    value = [r.value for r in by(recs, "spf", "TXT") if r.name == "example.com"][0]
    assert value == "v=spf1 include:amazonses.com include:_spf.google.com a:mail.example.com ~all"


def test_ses_gets_a_custom_mail_from_domain_under_the_bounce_alias():
    mf = [(r.name, r.rtype, r.value) for r in by(records(), "spf") if r.name != "example.com"]
    assert mf == [("bounce.example.com", "MX", "10 feedback-smtp.eu-west-1.amazonses.com"),
                  ("bounce.example.com", "TXT", "v=spf1 include:amazonses.com ~all")]


def test_without_ses_there_is_neither_amazonses_include_nor_mail_from():
    recs = records(ses=False, transports=[OutgoingServer("o", "smtp.office365.com", 587)])
    assert [r.value for r in by(recs, "spf")] == ["v=spf1 include:spf.protection.outlook.com ~all"]


def test_dkim_is_a_cname_to_the_gateway_key_when_the_domain_has_no_own_key():
    recs = records(dkim_keys={"gw.example.net": rsa_pem()})
    dkim = by(recs, "dkim")
    assert (dkim[0].name, dkim[0].rtype, dkim[0].value) == (
        "mailgate._domainkey.example.com", "CNAME", "mailgate._domainkey.gw.example.net")
    assert dkim[1].zone == "gw.example.net" and dkim[1].value.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")


def test_dkim_is_a_txt_record_of_our_public_key_when_the_domain_has_its_own():
    pem = rsa_pem()
    dkim = by(records(dkim_keys={"example.com": pem}), "dkim")
    assert len(dkim) == 1 and dkim[0].rtype == "TXT"
    public = serialization.load_pem_private_key(pem.encode(), None).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert dkim[0].value == "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


def test_ed25519_key_is_published_raw_as_rfc_8463_says():
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    key = dkim_key_from_pem(pem)
    assert key.k == "ed25519" and len(base64.b64decode(key.p)) == 32


def test_a_pem_that_is_not_a_key_is_a_value_error():
    with pytest.raises(ValueError):
        dkim_key_from_pem("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")


def test_ses_easy_dkim_tokens_become_three_cnames():
    recs = records(ses_dkim_tokens=["t1", "t2", "t3"])
    cn = [(r.name, r.value) for r in by(recs, "dkim", "CNAME") if "amazonses" in r.value]
    assert cn == [(f"t{i}._domainkey.example.com", f"t{i}.dkim.amazonses.com") for i in (1, 2, 3)]


def test_dmarc_starts_with_p_none_and_a_report_address():
    dmarc = by(records(), "dmarc")[0]
    assert (dmarc.name, dmarc.value) == ("_dmarc.example.com",
                                         "v=DMARC1; p=none; rua=mailto:dmarc-reports@example.com; adkim=r; aspf=r")


def test_zone_form_loads_in_a_zone_parser_and_splits_long_txt_strings():
    recs = records(dkim_keys={"example.com": rsa_pem()})
    text = zone_lines(recs)
    zone = dns.zone.from_text("$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ NS ns\n" + text, origin="example.com.",
                              relativize=False, check_origin=False)
    txt = zone.get_rdataset("mailgate._domainkey.example.com.", "TXT")[0]
    assert all(len(s) <= 255 for s in txt.strings) and len(txt.strings) > 1
    assert b"".join(txt.strings).decode() == by(recs, "dkim")[0].value


def test_from_filter_picks_the_transports_of_the_domain():
    servers = [OutgoingServer("any", "a.example", 587), OutgoingServer("ours", "b.example", 587, from_filter="example.com"),
               OutgoingServer("addr", "c.example", 587, from_filter="x@other.org, sales@example.com"),
               OutgoingServer("other", "d.example", 587, from_filter="other.org")]
    assert [s.name for s in transports_for("example.com", servers)] == ["any", "ours", "addr"]


def test_ses_smtp_interface_is_authorized_by_the_ses_include():
    assert smtp_spf_term("email-smtp.eu-west-1.amazonaws.com") == "include:amazonses.com"


def test_plan_of_the_gateway_domain_itself_publishes_its_key_as_txt():
    plan = make_plan(AliasDomain("gw.example.net"), [], region="us-east-1", gateway_domain="gw.example.net",
                     dkim_keys={"gw.example.net": rsa_pem()})
    assert plan.dkim_mode == "txt" and plan.dkim_key is not None


def test_an_smtp_host_given_as_an_address_is_authorized_with_ip4_or_ip6_not_a():
    from mailgate.dnsadvice.records import smtp_spf_term

    assert smtp_spf_term("127.0.0.1") == "ip4:127.0.0.1"
    assert smtp_spf_term("[2001:db8::25]") == "ip6:2001:db8::25"
    assert smtp_spf_term("mail.example.com") == "a:mail.example.com"
