"""Check, record by record, that an alias domain's DNS says what the `Plan` needs (pure apart
from the Resolver it is given). Every finding has a status, what was found, what was expected,
and the fix in one sentence."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import asdict, dataclass, field

from ..checks import Step
from . import spf
from .records import Plan, ses_feedback_host, ses_inbound_host, SES_SPF
from .resolver import Answer, Resolver, norm

OK, WARN, ERROR = "ok", "warn", "error"
_RANK = {OK: 0, WARN: 1, ERROR: 2}
MIN_RSA_BITS = 2048        # what we ask for
MIN_RSA_BITS_ACCEPTED = 1024  # RFC 8301 3.2: verifiers reject smaller keys


@dataclass(frozen=True)
class Finding:
    record: str     # spf / dkim / dmarc / mx
    status: str     # ok / warn / error
    found: str
    expected: str
    fix: str = ""
    name: str = ""  # the DNS name looked at

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Report:
    domain: str
    findings: list[Finding] = field(default_factory=list)
    queries: int = 0
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return max((f.status for f in self.findings), key=_RANK.__getitem__, default=OK)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def by_record(self, record: str) -> list[Finding]:
        return [f for f in self.findings if f.record == record]

    def to_dict(self) -> dict:
        return {"domain": self.domain, "status": self.status, "queries": self.queries,
                "seconds": round(self.seconds, 4), "checks": [f.to_dict() for f in self.findings]}

    def steps(self) -> list[Step]:
        """The same verdicts as check steps (Test Connection style)."""
        return [Step(f"{f.record} {f.name}".strip(), f.status == OK,
                     f"{f.status}: found {f.found}; expected {f.expected}" + (f"; fix: {f.fix}" if f.fix else ""))
                for f in self.findings]


def check_domain(plan: Plan, resolver: Resolver) -> Report:
    """Judge the published records of `plan.domain`. Never raises on DNS trouble: every
    NXDOMAIN, NODATA, SERVFAIL, timeout or loop becomes a finding."""
    started = time.perf_counter()
    before = resolver.queries
    report = Report(plan.name)
    add = report.findings.append
    spf_ok = _check_spf(plan, resolver, add)
    mail_from_ok = _check_mail_from(plan, resolver, add) if plan.ses and plan.mail_from_domain else False
    dkim_ok = _check_dkim(plan, resolver, add)
    for extra in plan.dkim_plans[1:]:  # the Ed25519 key: its signature must verify too
        _check_dkim(extra, resolver, add)
    _check_dmarc(plan, resolver, add, dkim_ok=dkim_ok, spf_ok=spf_ok, mail_from_ok=mail_from_ok)
    _check_mx(plan, resolver, add)
    report.queries = resolver.queries - before
    report.seconds = time.perf_counter() - started
    return report


# -- helpers --------------------------------------------------------------------------------------
def _lookup_fix(ans: Answer, what: str) -> str:
    if ans.error in ("timeout", "servfail", "error"):
        return (f"Make sure the nameservers of {ans.name} answer (they gave {ans.error}); "
                f"if this is temporary, run the check again later.")
    if ans.error == "loop":
        return f"Break the CNAME loop at {ans.name} so that it ends at {what}."
    return f"Publish {what}."


def _mx_hosts(records) -> list[str]:
    """Exchange names of "PREF HOST" strings; "" for the null MX "0 ." (RFC 7505)."""
    return [parts[1].rstrip(".") if len(parts) > 1 else "" for parts in (r.split() for r in records)]


def _lookup_failed(ans: Answer) -> bool:
    return ans.error in ("timeout", "servfail", "error", "loop")


# -- SPF ------------------------------------------------------------------------------------------
def _check_spf(plan: Plan, resolver: Resolver, add) -> bool:
    name = plan.name
    ev = spf.evaluate(name, resolver)
    suggestion = spf.merge(ev.records, plan.spf_terms)
    expected = f"one SPF record authorizing {', '.join(plan.spf_terms) or 'your senders'}: {suggestion}"
    missing = _spf_not_one_record(name, ev, resolver, expected, suggestion)
    if missing is not None:
        add(missing)
        return False
    findings = _spf_record_findings(name, ev, suggestion) + _spf_policy_findings(name, ev, plan, expected, suggestion)
    if findings:
        for f in findings:
            add(f)
        return not any(f.status == ERROR for f in findings)
    add(Finding("spf", OK, f"\"{ev.records[0]}\" ({ev.dns_terms} DNS-querying terms, {ev.void_lookups} void lookups)",
                expected, "", name))
    return True


def _spf_not_one_record(name: str, ev: spf.Evaluation, resolver: Resolver, expected: str,
                        suggestion: str) -> Finding | None:
    """The finding when there is not exactly one SPF record to judge, else None."""
    if ev.lookup_error and not ev.records:
        if ev.lookup_error == "nxdomain":
            return Finding("spf", ERROR, f"{name} does not exist in DNS (NXDOMAIN)", expected,
                           f"Check the domain's spelling and delegation, then publish TXT {name} \"{suggestion}\".", name)
        if ev.lookup_error == "nodata":
            return Finding("spf", ERROR, "no TXT record, so no SPF record", expected,
                           f"Publish TXT {name} \"{suggestion}\".", name)
        return Finding("spf", ERROR, ev.lookup_detail, expected,
                       _lookup_fix(resolver.query(name, "TXT"), "an SPF record"), name)
    if not ev.records:
        return Finding("spf", ERROR, "no SPF record (TXT records exist, none starts with v=spf1)", expected,
                       f"Publish TXT {name} \"{suggestion}\".", name)
    if len(ev.records) > 1:
        return Finding("spf", ERROR,
                       f"{len(ev.records)} SPF records: " + " | ".join(ev.records)
                       + " (two or more are a permanent error, RFC 7208 4.5: receivers ignore SPF)",
                       expected, f"Replace them with this single record: \"{suggestion}\".", name)
    return None


def _spf_record_findings(name: str, ev: spf.Evaluation, suggestion: str) -> list[Finding]:
    """What is wrong with the one record as written and as followed (syntax, includes, limits)."""
    record = ev.records[0]
    findings: list[Finding] = []
    for e in ev.syntax_errors:
        findings.append(Finding("spf", ERROR, f"syntax error in \"{record}\": {e}", "a valid SPF record (RFC 7208 12)",
                                f"Publish this corrected record: \"{suggestion}\".", name))
    for p in ev.problems:
        status = WARN if p.startswith("ptr ") else ERROR
        fix = ("Replace ptr by ip4:/ip6: or include: terms." if status == WARN
               else "Fix or remove that include:/redirect= so every target has exactly one SPF record and none loops back.")
        findings.append(Finding("spf", status, p, "every include:/redirect= target has exactly one SPF record", fix, name))
    for p in ev.temp_problems:
        findings.append(Finding("spf", ERROR, f"a lookup while following the record failed: {p}",
                                "every lookup answers", "Make sure the nameservers of that name answer; receivers give a temperror meanwhile.", name))
    if ev.stopped:
        findings.append(Finding("spf", ERROR,
                                f"more than {spf.MAX_DNS_TERMS} DNS-querying terms (include, a, mx, ptr, exists, redirect) "
                                f"counting nested includes; receivers stop at the 11th with a permerror",
                                f"at most {spf.MAX_DNS_TERMS} (RFC 7208 4.6.4)",
                                "Remove includes you no longer use, or replace a: and mx: by ip4:/ip6: ranges.", name))
    if ev.void_lookups > spf.MAX_VOID_LOOKUPS:
        findings.append(Finding("spf", ERROR, f"{ev.void_lookups} void lookups (names with no answer)",
                                f"at most {spf.MAX_VOID_LOOKUPS} (RFC 7208 4.6.4)",
                                "Remove the terms that point to names which do not exist.", name))
    return findings


def _spf_policy_findings(name: str, ev: spf.Evaluation, plan: Plan, expected: str, suggestion: str) -> list[Finding]:
    """Whether the record says the right thing: its all term, permissive includes, our senders."""
    findings: list[Finding] = []
    if ev.all_qualifier == "+":
        findings.append(Finding("spf", ERROR, "+all: every host on the Internet may send as this domain",
                                "~all or -all", f"Replace +all by ~all: \"{suggestion}\".", name))
    elif ev.all_qualifier == "?":
        findings.append(Finding("spf", WARN, "?all: hosts not listed get a neutral result", "~all or -all",
                                "End the record with ~all (or -all once all senders are listed).", name))
    elif ev.all_qualifier is None and not ev.syntax_errors:
        findings.append(Finding("spf", WARN, "no all term: unlisted hosts get a neutral result",
                                "~all or -all at the end", f"Publish \"{suggestion}\".", name))
    for inc in ev.permissive_includes:
        findings.append(Finding("spf", ERROR, f"included record of {inc} ends in +all: it authorizes every host",
                                "included records that end in ~all or -all", f"Remove include:{inc}.", name))
    missing = [t for t in plan.spf_terms if not _authorized(t, ev)]
    if missing and not ev.syntax_errors:
        findings.append(Finding("spf", ERROR, f"\"{ev.records[0]}\" does not authorize {', '.join(missing)}",
                                expected, f"Publish this record instead (mechanisms kept): \"{suggestion}\".", name))
    return findings


def _authorized(term: str, ev: spf.Evaluation) -> bool:
    term = term.lower()
    if term in ev.authorized:
        return True
    kind, _, target = term.partition(":")
    # include:x is also satisfied through redirect=x
    return kind == "include" and f"redirect:{target}" in ev.authorized


def _check_mail_from(plan: Plan, resolver: Resolver, add) -> bool:
    mf = plan.mail_from_domain
    feedback = ses_feedback_host(plan.region)
    ok = True
    mx = resolver.query(mf, "MX")
    hosts = _mx_hosts(mx.records)
    if feedback in hosts:
        add(Finding("mx", OK, mx.describe(), f"MX {mf} 10 {feedback}", "", mf))
    else:
        ok = False
        add(Finding("mx", WARN, mx.describe(), f"MX {mf} 10 {feedback} (custom MAIL FROM for SES)",
                    _lookup_fix(mx, f"MX {mf} 10 {feedback}") if _lookup_failed(mx)
                    else f"Publish MX {mf} 10 {feedback} so SPF can align with the From domain (DMARC).", mf))
    ev = spf.evaluate(mf, resolver)
    want = f"v=spf1 {SES_SPF} ~all"
    if len(ev.records) == 1 and "include:amazonses.com" in ev.authorized and not ev.syntax_errors and ev.all_qualifier != "+":
        add(Finding("spf", OK, f"\"{ev.records[0]}\"", want, "", mf))
    else:
        ok = False
        found = ev.lookup_detail if not ev.records else " | ".join(ev.records)
        add(Finding("spf", WARN, found or "no SPF record", want,
                    f"Publish exactly one TXT {mf} \"{want}\" (the MAIL FROM domain SES sends with).", mf))
    return ok


# -- DKIM -----------------------------------------------------------------------------------------
def parse_tags(text: str) -> dict[str, str]:
    """A DKIM/DMARC tag list (RFC 6376 3.2): "tag=value; ..."; whitespace around is ignored.
    Raises ValueError on a malformed list."""
    tags: dict[str, str] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise ValueError(f"{part.strip()!r} is not tag=value")
        if key in tags:
            raise ValueError(f"tag {key}= appears twice")
        tags[key] = value.strip()
    return tags


def _public_key(k: str, p: str):
    """(key type, bits, comparable bytes) of a p= value; raises ValueError when it does not parse."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        raw = base64.b64decode("".join(p.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"p= is not base64 ({exc})") from None
    if k == "ed25519":
        if len(raw) != 32:
            raise ValueError(f"an Ed25519 key has 32 bytes, this one {len(raw)}")
        return "ed25519", 256, raw
    if k != "rsa":
        raise ValueError(f"k={k} is not a key type receivers know (rsa, ed25519)")
    try:
        key = serialization.load_der_public_key(raw)
    except ValueError:
        try:  # some publish the bare RSAPublicKey (PKCS#1)
            key = serialization.load_der_public_key(_pkcs1_to_spki(raw))
        except ValueError:
            raise ValueError("p= does not hold an RSA public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("k=rsa but p= holds another kind of key")
    n = key.public_numbers()
    return "rsa", key.key_size, n.n.to_bytes((n.n.bit_length() + 7) // 8, "big") + b"|" + str(n.e).encode()


def _pkcs1_to_spki(raw: bytes) -> bytes:
    """Wrap a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo (DER)."""
    def der_len(n: int) -> bytes:
        if n < 128:
            return bytes([n])
        b = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return bytes([0x80 | len(b)]) + b

    algo = bytes.fromhex("300d06092a864886f70d0101010500")
    bitstring = b"\x03" + der_len(len(raw) + 1) + b"\x00" + raw
    body = algo + bitstring
    return b"\x30" + der_len(len(body)) + body


def _check_dkim(plan: Plan, resolver: Resolver, add) -> bool:
    name = plan.dkim_name
    if plan.dkim_mode == "cname":
        expected = f"CNAME {name} -> {plan.dkim_target}, whose TXT holds the gateway's key"
        publish = f"Publish CNAME {name} {plan.dkim_target}."
    else:
        expected = f"TXT {name} \"{plan.dkim_key.record if plan.dkim_key else 'v=DKIM1; k=rsa; p=...'}\""
        publish = f"Publish TXT {name} with our public key (see `mailgate dns records {plan.name}`)."
    ans = resolver.query(name, "TXT")
    ok = _judge_key(plan, ans, name, expected, publish, add)
    for token in plan.ses_dkim_tokens:
        tname = f"{token}._domainkey.{plan.name}"
        target = f"{token}.dkim.amazonses.com"
        c = resolver.query(tname, "CNAME")
        if c.ok and norm(c.records[0]) == target:
            add(Finding("dkim", OK, c.describe(), f"CNAME {tname} {target}", "", tname))
        else:
            ok = False
            add(Finding("dkim", ERROR, c.describe(), f"CNAME {tname} {target}",
                        f"Publish CNAME {tname} {target} (SES Easy DKIM).", tname))
    return ok


def _judge_key(plan: Plan, ans: Answer, name: str, expected: str, publish: str, add) -> bool:
    if ans.error:
        if ans.error in ("nxdomain", "nodata") and ans.chain:
            found = f"{ans.describe()}: the CNAME points to a name without a key"
            fix = publish if plan.dkim_mode == "txt" else f"Point {name} to {plan.dkim_target} instead."
        else:
            found, fix = ans.describe(), (_lookup_fix(ans, expected) if _lookup_failed(ans) else publish)
        add(Finding("dkim", ERROR, found, expected, fix, name))
        return False
    via = f" (CNAME {' -> '.join([name, *ans.chain])})" if ans.chain else ""
    keys = [r for r in ans.records if "p=" in r.replace(" ", "").lower() or r.lower().lstrip().startswith("v=dkim1")]
    if len(keys) != 1:
        what = "no DKIM key record" if not keys else f"{len(keys)} DKIM key records (verifiers need exactly one)"
        add(Finding("dkim", ERROR, f"{what} at {ans.final_name}{via}: {'; '.join(ans.records)}", expected, publish, name))
        return False
    text = keys[0]
    try:
        tags = parse_tags(text)
    except ValueError as exc:
        add(Finding("dkim", ERROR, f"\"{text}\"{via} does not parse: {exc}", expected, publish, name))
        return False
    if "v" in tags and tags["v"] != "DKIM1":  # RFC 6376 3.6.1: v= must be DKIM1 when present
        add(Finding("dkim", ERROR, f"v={tags['v']}{via}", "v=DKIM1", publish, name))
        return False
    p = "".join(tags.get("p", "").split())
    if "p" not in tags:
        add(Finding("dkim", ERROR, f"\"{text}\"{via} has no p= tag", expected, publish, name))
        return False
    if not p:
        # RFC 6376 3.6.1: an empty p= means the key was revoked
        add(Finding("dkim", ERROR, f"the key at {ans.final_name}{via} is revoked (empty p=)", expected,
                    (f"Point {name} to {plan.dkim_target}, which holds the current key."
                     if plan.dkim_mode == "cname" and ans.final_name != plan.dkim_target else publish), name))
        return False
    k = tags.get("k", "rsa").lower()
    try:
        ktype, bits, comparable = _public_key(k, p)
    except ValueError as exc:
        add(Finding("dkim", ERROR, f"the key at {ans.final_name}{via} does not parse: {exc}", expected, publish, name))
        return False
    ok = True
    if plan.dkim_key is None:
        add(Finding("dkim", WARN, f"{ktype} key at {ans.final_name}{via}; our private key is not in Secrets Manager, "
                    "so it cannot be compared", "the public half of our signing key",
                    "Create the DKIM key (secret DKIM_PREFIX + domain/selector) and run the check again.", name))
        ok = False
    else:
        ours = _public_key(plan.dkim_key.k, plan.dkim_key.p)
        if (ktype, comparable) != (ours[0], ours[2]):
            add(Finding("dkim", ERROR, f"the key at {ans.final_name}{via} is not the public half of our private key "
                        f"(selector {plan.dkim_selector})", expected,
                        (f"Point {name} to {plan.dkim_target}." if plan.dkim_mode == "cname"
                         else f"Replace the TXT at {name} by our current key (`mailgate dns records {plan.name}`)."), name))
            return False
    if ktype == "rsa" and bits < MIN_RSA_BITS:
        status = ERROR if bits < MIN_RSA_BITS_ACCEPTED else WARN
        add(Finding("dkim", status, f"RSA key of {bits} bits", f"RSA of at least {MIN_RSA_BITS} bits (RFC 8301 3.2)",
                    "Create a 2048-bit key under a new selector, publish it, then switch signing to it.", name))
        return False
    if ok:
        add(Finding("dkim", OK, f"{ktype} key ({bits} bits) at {ans.final_name}{via} matches our private key",
                    expected, "", name))
    return ok


# -- DMARC ----------------------------------------------------------------------------------------
def _check_dmarc(plan: Plan, resolver: Resolver, add, *, dkim_ok: bool, spf_ok: bool, mail_from_ok: bool) -> None:
    name = f"_dmarc.{plan.name}"
    want = plan.dmarc_record
    ans = resolver.query(name, "TXT")
    publish = f"Publish TXT {name} \"{want}\"."
    if ans.error:
        status = ERROR if _lookup_failed(ans) else WARN
        add(Finding("dmarc", status, ans.describe(), f"TXT {name} \"{want}\"",
                    _lookup_fix(ans, "a DMARC record") if _lookup_failed(ans) else publish, name))
        return
    records = [r for r in ans.records if r.strip().lower().replace(" ", "").startswith("v=dmarc1")]
    if not records:
        add(Finding("dmarc", WARN, f"no DMARC record at {name}: {'; '.join(ans.records)}", f"TXT {name} \"{want}\"", publish, name))
        return
    if len(records) > 1:
        # RFC 7489 6.6.3: more than one record means no DMARC policy applies
        add(Finding("dmarc", ERROR, f"{len(records)} DMARC records: {' | '.join(records)}", "exactly one",
                    f"Keep one DMARC record at {name}, for example \"{want}\".", name))
        return
    try:
        tags = parse_tags(records[0])
    except ValueError as exc:
        add(Finding("dmarc", ERROR, f"\"{records[0]}\" does not parse: {exc}", want, publish, name))
        return
    policy = tags.get("p", "").lower()
    if tags.get("v", "").upper() != "DMARC1" or policy not in ("none", "quarantine", "reject"):
        add(Finding("dmarc", ERROR, f"\"{records[0]}\": v=DMARC1 must come first and p= be none, quarantine or reject",
                    want, publish, name))
        return
    # alignment (RFC 7489 3.1): each transport must pass with DKIM or with SPF on an aligned domain
    strict_spf = tags.get("aspf", "r").lower() == "s"
    unaligned = []
    if plan.ses and not dkim_ok:
        spf_aligned = mail_from_ok and not strict_spf
        if not spf_aligned:
            unaligned.append("SES (its MAIL FROM is amazonses.com unless the custom MAIL FROM domain is set up)")
    if plan.smtp_hosts and not dkim_ok and not spf_ok:
        unaligned.append(f"{', '.join(plan.smtp_hosts)} (SPF of {plan.name} does not pass)")
    found = f"\"{records[0]}\" (policy {policy})"
    if unaligned:
        status = ERROR if policy in ("quarantine", "reject") else WARN
        act = "reject or quarantine" if status == ERROR else "would fail once the policy is tightened:"
        add(Finding("dmarc", status, f"{found}; DKIM does not pass and SPF does not align for: {'; '.join(unaligned)}",
                    "our From domain aligned through DKIM (d=" + plan.name + ") or SPF",
                    "Fix the DKIM record first (it aligns for every transport); "
                    + ("until then receivers " + act + " our mail." if status == ERROR else "until then keep p=none."), name))
        return
    rua = tags.get("rua", "")
    if not rua:
        add(Finding("dmarc", WARN, f"{found}, no rua= report address", "a rua=mailto: report address",
                    f"Add rua={plan.dmarc_rua} to read who sends as {plan.name}.", name))
        return
    add(Finding("dmarc", OK, f"{found}; our mail aligns through " + ("DKIM" if dkim_ok else "SPF"),
                "a DMARC record that our mail passes", "", name))


# -- where mail arrives ---------------------------------------------------------------------------
def _check_mx(plan: Plan, resolver: Resolver, add) -> None:
    inbound = ses_inbound_host(plan.region)
    if plan.inbound == "mx" or plan.name == plan.gateway_domain:
        _expect_mx(plan.name, inbound, resolver, add, exclusive=True)
        return
    _expect_mx(plan.gateway_domain, inbound, resolver, add, exclusive=True)
    ans = resolver.query(plan.name, "MX")
    if ans.ok and any(_mx_hosts(ans.records)):
        add(Finding("mx", OK, ans.describe(), f"MX of {plan.name} to your mail server, which forwards "
                    f"{plan.domain.catchall_address} to {plan.domain.catchall}@{plan.gateway_domain}",
                    "", plan.name))
    else:
        add(Finding("mx", ERROR, ans.describe(), f"an MX for {plan.name} (your mail server)",
                    _lookup_fix(ans, "an MX record") if _lookup_failed(ans)
                    else f"Publish an MX for {plan.name} to the server that forwards the catchall to the gateway.", plan.name))


def _expect_mx(name: str, host: str, resolver: Resolver, add, *, exclusive: bool) -> None:
    ans = resolver.query(name, "MX")
    expected = f"MX {name} 10 {host}"
    if ans.error:
        add(Finding("mx", ERROR, ans.describe(), expected,
                    _lookup_fix(ans, expected) if _lookup_failed(ans) else f"Publish {expected}.", name))
        return
    hosts = _mx_hosts(ans.records)
    if not any(hosts):
        add(Finding("mx", ERROR, f"null MX at {name}: it accepts no mail (RFC 7505)", expected,
                    f"Replace the null MX by {expected}.", name))
    elif host not in hosts:
        add(Finding("mx", ERROR, ans.describe(), expected, f"Publish {expected} and remove the other MX records.", name))
    elif exclusive and len(set(hosts)) > 1:
        others = sorted(set(hosts) - {host})
        add(Finding("mx", WARN, ans.describe(), expected,
                    f"Remove MX {', '.join(others)}: mail that goes there does not reach the gateway.", name))
    else:
        add(Finding("mx", OK, ans.describe(), expected, "", name))
