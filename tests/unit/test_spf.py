"""SPF parsing, merging and structural evaluation (pure: a dict-backed fake resolver)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from mailgate.dnsadvice import spf
from mailgate.dnsadvice.resolver import Answer, norm


class FakeResolver:
    """Answers TXT/A/MX from a dict (a str value is an error kind); anything absent is NXDOMAIN.
    Caches and counts lookups."""

    def __init__(self, data: dict[tuple[str, str], list[str] | str]):
        self.data = {(norm(n), t): v for (n, t), v in data.items()}
        self.queries = 0
        self.asked: list[tuple[str, str]] = []
        self.cache: dict[tuple[str, str], Answer] = {}

    def query(self, name, rtype):
        key = (norm(name), rtype)
        if key in self.cache:  # like the real resolver: each (name, type) once per run
            return self.cache[key]
        self.queries += 1
        self.asked.append(key)
        v = self.data.get(key)
        if v is None:
            answer = Answer(key[0], rtype, error="nxdomain")
        elif isinstance(v, str):
            answer = Answer(key[0], rtype, error=v)
        else:
            answer = Answer(key[0], rtype, tuple(v))
        self.cache[key] = answer
        return answer


def test_merge_adds_the_include_before_all_and_keeps_existing_mechanisms():
    assert spf.merge("v=spf1 mx ip4:192.0.2.0/24 -all", ["include:amazonses.com"]) == \
        "v=spf1 mx ip4:192.0.2.0/24 include:amazonses.com -all"


def test_merge_without_existing_record_gives_a_fresh_soft_fail_record():
    assert spf.merge(None, ["include:amazonses.com"]) == "v=spf1 include:amazonses.com ~all"


def test_merge_does_not_repeat_an_include_already_present_in_any_case():
    assert spf.merge("v=spf1 INCLUDE:AmazonSES.com ~all", ["include:amazonses.com"]) == \
        "v=spf1 INCLUDE:AmazonSES.com ~all"


def test_merge_folds_two_records_into_one_and_never_returns_two():
    merged = spf.merge(["v=spf1 include:_spf.google.com -all", "v=spf1 ip4:198.51.100.7 ~all"],
                       ["include:amazonses.com"])
    assert merged == "v=spf1 include:_spf.google.com ip4:198.51.100.7 include:amazonses.com ~all"
    assert merged.count("v=spf1") == 1


def test_merge_replaces_plus_all_which_would_authorize_everybody():
    assert spf.merge("v=spf1 a +all", ["include:amazonses.com"]).endswith(" ~all")
    assert spf.merge("v=spf1 a all", []).endswith(" ~all")


def test_merge_keeps_a_redirect_when_the_record_has_no_all():
    assert spf.merge("v=spf1 redirect=_spf.example.com", ["include:amazonses.com"]) == \
        "v=spf1 include:amazonses.com redirect=_spf.example.com"


def test_merge_ignores_txt_strings_that_are_not_spf():
    assert spf.merge(["google-site-verification=x", "v=spf1 mx -all"], []) == "v=spf1 mx -all"


def test_is_spf_needs_version_followed_by_space_or_end():
    assert spf.is_spf("v=spf1 -all") and spf.is_spf("V=SPF1") and not spf.is_spf("v=spf10 -all")


@pytest.mark.parametrize("record, problem", [
    ("v=spf1 inclde:amazonses.com -all", "not an SPF mechanism"),
    ("v=spf1 ip4:300.1.1.1 -all", "not an IP4"),
    ("v=spf1 ip4:2001:db8::1 -all", "not an IPv4"),
    ("v=spf1 include: -all", "needs a domain"),
    ("v=spf1 all:x", "takes no argument"),
    ("v=spf1 redirect=a.example redirect=b.example", "more than once"),
    ("spf1 -all", "must start with v=spf1"),
])
def test_syntax_errors_are_named(record, problem):
    errors = spf.parse(record).errors
    assert any(problem in e for e in errors), errors


def test_valid_record_with_macros_cidr_and_unknown_modifier_parses():
    parsed = spf.parse("v=spf1 a/24 mx:example.com/24//64 exists:%{i}._spf.example.com ip6:2001:db8::/32 ~all foo=bar")
    assert parsed.errors == []
    assert [t.name for t in parsed.mechanisms] == ["a", "mx", "exists", "ip6", "all"]


def test_evaluate_counts_nested_lookups_and_stops_at_the_eleventh():
    data = {("example.com", "TXT"): ["v=spf1 " + " ".join(f"include:i{i}.example.com" for i in range(4)) + " ~all"]}
    for i in range(4):
        data[(f"i{i}.example.com", "TXT")] = ["v=spf1 a:h.example.com mx:h.example.com ~all"]
    data[("h.example.com", "A")] = ["192.0.2.1"]
    data[("h.example.com", "MX")] = ["10 h.example.com"]
    ev = spf.evaluate("example.com", FakeResolver(data))
    assert ev.stopped and ev.dns_terms == 11


def test_evaluate_under_the_limit_reports_the_count():
    data = {("example.com", "TXT"): ["v=spf1 include:amazonses.com mx ~all"],
            ("amazonses.com", "TXT"): ["v=spf1 ip4:199.255.192.0/22 -all"],
            ("example.com", "MX"): ["10 mx.example.com"]}
    ev = spf.evaluate("example.com", FakeResolver(data))
    assert (ev.dns_terms, ev.void_lookups, ev.stopped) == (2, 0, False)
    assert "include:amazonses.com" in ev.authorized and ev.all_qualifier == "~"


def test_include_loop_is_a_problem_and_terminates():
    data = {("a.example", "TXT"): ["v=spf1 include:b.example -all"],
            ("b.example", "TXT"): ["v=spf1 include:a.example -all"]}
    ev = spf.evaluate("a.example", FakeResolver(data))
    assert any("loops back (a.example -> b.example -> a.example)" in p for p in ev.problems)


def test_include_of_a_name_without_spf_is_a_permanent_error_and_a_void_lookup():
    ev = spf.evaluate("a.example", FakeResolver({("a.example", "TXT"): ["v=spf1 include:gone.example -all"]}))
    assert ev.void_lookups == 1
    assert any("gone.example has no SPF record" in p for p in ev.problems)


def test_redirect_target_all_is_the_records_all():
    data = {("a.example", "TXT"): ["v=spf1 redirect=b.example"], ("b.example", "TXT"): ["v=spf1 +all"]}
    ev = spf.evaluate("a.example", FakeResolver(data))
    assert ev.all_qualifier == "+"


def test_timeout_on_the_domain_is_reported_not_raised():
    ev = spf.evaluate("a.example", FakeResolver({("a.example", "TXT"): "timeout"}))
    assert ev.lookup_error == "timeout" and ev.records == []


@given(st.lists(st.sampled_from(["mx", "a", "-all", "~all", "+all", "?all", "include:x.example",
                                 "ip4:192.0.2.1", "redirect=r.example", "exp=e.example"]), max_size=8),
       st.lists(st.sampled_from(["include:amazonses.com", "a:smtp.example.com"]), max_size=2))
def test_merge_always_gives_one_valid_record_with_the_needed_terms_and_all_last(existing, needed):
    merged = spf.merge("v=spf1 " + " ".join(existing), needed)
    parsed = spf.parse(merged)
    assert parsed.errors == [] and merged.startswith("v=spf1")
    for term in needed:
        assert term in merged.split()
    mechs = [t.name for t in parsed.mechanisms]
    assert "all" not in mechs[:-1]
    assert not {"all", "+all"} & set(merged.split())
