"""check_domain over a fake resolver: every shape of DNS trouble is a finding, never an exception."""

from __future__ import annotations

import functools

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings, strategies as st

from mailgate.dnsadvice import check_domain, dkim_key_from_pem, make_plan, plan_for
from mailgate.dnsadvice.resolver import Answer
from mailgate.domain import AliasDomain
from mailgate.settings import Settings
from mailgate_dev import fakes
from tests.unit.test_spf import FakeResolver

NAMES = [("example.com", "TXT"), ("amazonses.com", "TXT"), ("bounce.example.com", "MX"),
         ("bounce.example.com", "TXT"), ("mailgate._domainkey.example.com", "TXT"),
         ("mailgate._domainkey.gw.example.net", "TXT"), ("_dmarc.example.com", "TXT"), ("example.com", "MX")]


@functools.cache
def pem() -> str:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()


def plan():
    return make_plan(AliasDomain("example.com"), [], region="us-east-1", gateway_domain="gw.example.net",
                     dkim_keys={"gw.example.net": pem()})


class ChainResolver(FakeResolver):
    """FakeResolver plus CNAMEs: {name: target} followed like the real resolver does."""

    def __init__(self, data, cnames):
        super().__init__(data)
        self.cnames = cnames

    def query(self, name, rtype):
        if name in self.cnames:
            target = super().query(self.cnames[name], rtype)
            return Answer(name, rtype, target.records, target.error, (self.cnames[name], *target.chain))
        return super().query(name, rtype)


def good_data():
    return {
        ("example.com", "TXT"): ["v=spf1 include:amazonses.com ~all"],
        ("amazonses.com", "TXT"): ["v=spf1 ip4:199.255.192.0/22 -all"],
        ("bounce.example.com", "MX"): ["10 feedback-smtp.us-east-1.amazonses.com"],
        ("bounce.example.com", "TXT"): ["v=spf1 include:amazonses.com ~all"],
        ("mailgate._domainkey.gw.example.net", "TXT"): [dkim_key_from_pem(pem()).record],
        ("_dmarc.example.com", "TXT"): ["v=DMARC1; p=none; rua=mailto:d@example.com"],
        ("example.com", "MX"): ["10 inbound-smtp.us-east-1.amazonaws.com"],
    }


def run(data, cnames=None):
    cnames = {"mailgate._domainkey.example.com": "mailgate._domainkey.gw.example.net"} if cnames is None else cnames
    return check_domain(plan(), ChainResolver(data, cnames))


def test_good_dns_is_ok_and_queries_are_counted():
    report = run(good_data())
    assert report.status == "ok", report.to_dict()
    assert report.queries == 7


def test_dkim_key_published_with_spaces_and_upper_case_tags_matches():
    data = good_data()
    key = dkim_key_from_pem(pem())
    spaced = " ".join(key.p[i:i + 60] for i in range(0, len(key.p), 60))
    data[("mailgate._domainkey.gw.example.net", "TXT")] = [f"V=DKIM1 ;  K = rsa ;\tP = {spaced} ;"]
    dkim = run(data).by_record("dkim")[0]
    assert dkim.status == "ok", dkim


def test_dkim_key_in_pkcs1_form_is_accepted():
    import base64
    pub = serialization.load_pem_private_key(pem().encode(), None).public_key()
    pkcs1 = base64.b64encode(pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)).decode()
    data = good_data()
    data[("mailgate._domainkey.gw.example.net", "TXT")] = [f"v=DKIM1; k=rsa; p={pkcs1}"]
    assert run(data).by_record("dkim")[0].status == "ok"


def test_garbage_key_is_an_error_that_says_it_does_not_parse():
    data = good_data()
    data[("mailgate._domainkey.gw.example.net", "TXT")] = ["v=DKIM1; k=rsa; p=bm90IGEga2V5"]
    f = run(data).by_record("dkim")[0]
    assert f.status == "error" and "does not parse" in f.found


def test_two_dmarc_records_are_an_error():
    data = good_data()
    data[("_dmarc.example.com", "TXT")] = ["v=DMARC1; p=none", "v=DMARC1; p=reject"]
    assert run(data).by_record("dmarc")[0].status == "error"


def test_null_mx_is_an_error():
    data = good_data()
    data[("example.com", "MX")] = ["0 "]
    f = [f for f in run(data).by_record("mx") if f.name == "example.com"][0]
    assert f.status == "error" and "null MX" in f.found


def test_missing_private_key_is_a_warning_not_a_false_ok():
    p = make_plan(AliasDomain("example.com"), [], region="us-east-1", gateway_domain="gw.example.net")
    report = check_domain(p, ChainResolver(good_data(), {"mailgate._domainkey.example.com": "mailgate._domainkey.gw.example.net"}))
    assert report.by_record("dkim")[0].status == "warn"


def test_plan_for_reads_domain_transports_and_key_from_the_container():
    c = fakes.in_memory(Settings(table_name="t", bucket_name="b", gateway_domain="gw.example.net", region="eu-west-1"))
    c.config.put_domain(AliasDomain("example.com", dkim_selector="s1"))
    c.secrets.put("mailgate/dkim/gw.example.net/s1", pem())
    p = plan_for(c, "example.com")
    assert (p.region, p.dkim_mode, p.dkim_target, p.dkim_key.k) == ("eu-west-1", "cname", "s1._domainkey.gw.example.net", "rsa")


ERRORS = st.sampled_from(["nxdomain", "nodata", "servfail", "timeout", "loop", "error"])
TXT = st.sampled_from(["v=spf1 include:amazonses.com ~all", "v=spf1 +all", "v=spf1 include:example.com",
                       "v=spf1 redirect=example.com", "V=SPF1  a  mx ptr ~ALL", "v=spf1 ip4:x", "v=DKIM1; p=",
                       "v=DKIM1; k=ed25519; p=AAAA", "k=rsa; p=@@@", "v=DMARC1; p=reject", "v=DMARC1", "p=none; v=DMARC1",
                       "=", ";;", "", "v=spf1 exists:%{i}.example.com -all", "10 inbound-smtp.us-east-1.amazonaws.com"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(NAMES), st.one_of(ERRORS, st.lists(TXT, max_size=3))),
       st.booleans())
def test_any_dns_state_gives_findings_with_a_fix_never_an_exception(data, via_cname):
    report = run(data, None if via_cname else {})
    assert report.status in ("ok", "warn", "error")
    assert {f.record for f in report.findings} >= {"spf", "dkim", "dmarc", "mx"}
    for f in report.findings:
        assert f.status in ("ok", "warn", "error")
        assert f.found and f.expected
        assert f.status == "ok" or f.fix


def test_an_ed25519_key_adds_its_own_dkim_record_and_check_but_not_the_ses_tokens_twice():
    from mailgate import dkim as D
    from mailgate.dnsadvice import records_for_plan

    rsa = D.private_pem(D.generate_key("rsa", 1024))
    ed = D.private_pem(D.generate_key("ed25519"))
    p = make_plan(AliasDomain("example.com"), [], region="us-east-1", gateway_domain="gw.example.net",
                  dkim_keys={"gw.example.net": rsa}, ed25519_keys={"gw.example.net": ed}, ses_dkim_tokens=["t1"])
    recs = [(r.name, r.rtype) for r in records_for_plan(p) if r.purpose == "dkim"]
    assert recs == [("mailgate._domainkey.example.com", "CNAME"), ("mailgate._domainkey.gw.example.net", "TXT"),
                    ("mailgate-ed25519._domainkey.example.com", "CNAME"),
                    ("mailgate-ed25519._domainkey.gw.example.net", "TXT"), ("t1._domainkey.example.com", "CNAME")]
    assert [q.ses_dkim_tokens for q in p.dkim_plans] == [("t1",), ()]
