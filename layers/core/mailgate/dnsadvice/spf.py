"""SPF records (RFC 7208): parse, merge the includes we need into one record, and evaluate the
record structurally through a Resolver (include:/redirect= followed, DNS-querying terms and void
lookups counted). Pure apart from the resolver it is given."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .resolver import Resolver, norm

MAX_DNS_TERMS = 10   # RFC 7208 4.6.4
MAX_VOID_LOOKUPS = 2  # RFC 7208 4.6.4
DNS_MECHANISMS = ("include", "a", "mx", "ptr", "exists")
MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
QUALIFIERS = "+-~?"
_ALL_RANK = {"~": 0, "-": 1, "?": 2}
_DOMAIN_RE = re.compile(r"^(%\{[a-z][0-9]*r?[-.+,/_=]*\}|%%|%_|%-|[\x21-\x7e])+$", re.I)


def is_spf(txt: str) -> bool:
    """A TXT string is an SPF record when it starts with "v=spf1" then a space or ends (RFC 7208 4.5)."""
    t = txt.strip().lower()
    return t == "v=spf1" or t.startswith("v=spf1 ")


@dataclass(frozen=True)
class Term:
    text: str            # as written (original case)
    qualifier: str       # "+", "-", "~", "?" ("+" when none written); "" for modifiers
    name: str            # mechanism or modifier name, lower case
    value: str           # after ":" or "=", original case
    modifier: bool = False

    @property
    def target(self) -> str:
        """The domain a DNS mechanism/modifier queries (without any /cidr)."""
        return norm(self.value.split("/", 1)[0]) if self.value else ""


@dataclass
class ParsedSpf:
    terms: list[Term] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def mechanisms(self) -> list[Term]:
        return [t for t in self.terms if not t.modifier]

    def modifier(self, name: str) -> Term | None:
        return next((t for t in self.terms if t.modifier and t.name == name), None)

    @property
    def all(self) -> Term | None:
        return next((t for t in self.mechanisms if t.name == "all"), None)


def parse(record: str) -> ParsedSpf:
    """Parse one SPF record; syntax problems are collected in `.errors`, never raised."""
    out = ParsedSpf()
    words = record.split()  # any run of whitespace separates terms (be lenient on odd spacing)
    if not words or words[0].lower() != "v=spf1":
        out.errors.append("the record must start with v=spf1")
        return out
    seen_modifiers: set[str] = set()
    for word in words[1:]:
        m = re.match(r"^([a-z][a-z0-9_.-]*)=(.*)$", word, re.I)
        if m and m.group(1).lower() not in MECHANISMS:
            name = m.group(1).lower()
            if name in ("redirect", "exp") and name in seen_modifiers:
                out.errors.append(f"{name}= appears more than once (RFC 7208 6)")
            seen_modifiers.add(name)
            if name in ("redirect", "exp") and not _DOMAIN_RE.match(m.group(2) or ""):
                out.errors.append(f"{word!r}: {name}= needs a domain")
            out.terms.append(Term(word, "", name, m.group(2), modifier=True))
            continue
        qualifier = "+"
        body = word
        if body[:1] in QUALIFIERS:
            qualifier, body = body[0], body[1:]
        name, sep, value = _split_mechanism(body)
        lname = name.lower()
        if lname not in MECHANISMS:
            out.errors.append(f"{word!r} is not an SPF mechanism")
            continue
        problem = _check_mechanism(lname, sep, value)
        if problem:
            out.errors.append(f"{word!r}: {problem}")
            continue
        out.terms.append(Term(word, qualifier, lname, value))
    return out


def _split_mechanism(body: str) -> tuple[str, str, str]:
    for i, ch in enumerate(body):
        if ch in ":/":
            return body[:i], ch, body[i + 1:] if ch == ":" else body[i:]
    return body, "", ""


def _check_mechanism(name: str, sep: str, value: str) -> str:
    if name == "all":
        return "all takes no argument" if sep else ""
    if name in ("include", "exists"):
        if sep != ":" or not value or not _DOMAIN_RE.match(value):
            return f"{name} needs a domain ({name}:example.com)"
        return ""
    if name in ("ip4", "ip6"):
        if sep != ":":
            return f"{name} needs an address"
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            return f"{value!r} is not an IP{name[-1]} address or network"
        if net.version != int(name[-1]):
            return f"{value!r} is not an IPv{name[-1]} address"
        return ""
    # a, mx, ptr: optional :domain, optional /cidr
    domain, _, cidr = value.partition("/") if sep == ":" else ("", "", value.lstrip("/"))
    if sep == ":" and (not domain or not _DOMAIN_RE.match(domain)):
        return f"{name}: needs a domain after the colon"
    if cidr and not re.match(r"^\d{1,3}(//\d{1,3})?$|^/\d{1,3}$", cidr):
        return f"bad prefix length {cidr!r}"
    return ""


def merge(existing: str | list[str] | None, includes: list[str], *, default_all: str = "~all") -> str:
    """One SPF record holding the existing mechanisms and the `includes` we need (each a term such
    as "include:amazonses.com" or "a:smtp.example.com"). Several existing records are folded into
    one, because two SPF records are a permanent error (RFC 7208 4.5). The `all` stays last (an
    include after it would never be evaluated, RFC 7208 4.6.2); `+all` becomes `~all`, since a
    record that authorizes every host on the Internet is what the check reports as an error."""
    records = [existing] if isinstance(existing, str) else list(existing or [])
    records = [r for r in records if r and is_spf(r)]
    terms: list[str] = []
    modifiers: list[str] = []
    all_term: str | None = None
    for record in records:
        for word in record.split()[1:]:
            lower = word.lower()
            if lower.lstrip("+-~?") == "all":
                # several records: keep ~all over -all over ?all, so the merge neither blocks a
                # sender one record allowed nor leaves the result neutral
                if all_term is None or _ALL_RANK.get(word[0], 3) < _ALL_RANK.get(all_term[0], 3):
                    all_term = word
                continue
            if "=" in lower and lower.split("=", 1)[0] not in MECHANISMS:
                if not any(m.split("=", 1)[0].lower() == lower.split("=", 1)[0] for m in modifiers):
                    modifiers.append(word)
                continue
            if lower not in (t.lower() for t in terms):
                terms.append(word)
    present = {t.lower().lstrip("+") for t in terms}
    for inc in includes:
        if inc.lower() not in present:
            terms.append(inc)
            present.add(inc.lower())
    if all_term is None or all_term.lower() in ("all", "+all"):
        has_redirect = any(m.lower().startswith("redirect=") for m in modifiers)
        # with a redirect= and no all, the redirect's record decides (RFC 7208 6.1): leave it so
        all_term = None if (all_term is None and has_redirect) else default_all
    if all_term is not None:
        # a redirect= is ignored when the record has an all (RFC 7208 6.1): drop it
        modifiers = [m for m in modifiers if not m.lower().startswith("redirect=")]
    return " ".join(["v=spf1", *terms, *([all_term] if all_term else []), *modifiers])


@dataclass
class Evaluation:
    """What following one domain's SPF record found."""

    domain: str
    records: list[str] = field(default_factory=list)   # the SPF records at the domain itself
    lookup_error: str | None = None                     # the lookup of the domain's TXT failed
    lookup_detail: str = ""
    syntax_errors: list[str] = field(default_factory=list)
    dns_terms: int = 0
    void_lookups: int = 0
    authorized: set[str] = field(default_factory=set)   # "include:x", "a:host", "ip4:..." seen anywhere
    problems: list[str] = field(default_factory=list)   # permerror causes found while following
    temp_problems: list[str] = field(default_factory=list)
    all_qualifier: str | None = None                    # of the top record (or its redirect target)
    permissive_includes: list[str] = field(default_factory=list)  # included records ending in +all
    stopped: bool = False                               # evaluation stopped at the 11th DNS term


def evaluate(domain: str, resolver: Resolver) -> Evaluation:
    """Follow `domain`'s SPF record like a receiver would, counting DNS-querying terms and void
    lookups (RFC 7208 4.6.4), without a sender IP: every branch is followed, so the counts are the
    worst case a receiver can meet."""
    ev = Evaluation(norm(domain))
    answer = resolver.query(ev.domain, "TXT")
    if answer.error and not answer.void:
        ev.lookup_error, ev.lookup_detail = answer.error, answer.describe()
        return ev
    if answer.error:
        ev.lookup_error, ev.lookup_detail = answer.error, answer.describe()
    ev.records = [r for r in answer.records if is_spf(r)]
    if len(ev.records) != 1:
        return ev
    _walk(ev, ev.records[0], [ev.domain], resolver, top=True)
    return ev


def _walk(ev: Evaluation, record: str, stack: list[str], resolver: Resolver, *, top: bool,
          redirected: bool = False) -> None:
    parsed = parse(record)
    where = stack[-1]
    if parsed.errors:
        if top:
            ev.syntax_errors.extend(parsed.errors)
        else:
            ev.problems.extend(f"the record of {where} has an error: {e}" for e in parsed.errors)
        return
    for term in parsed.mechanisms:
        if term.name in ("include", "a", "mx", "ptr", "exists"):
            if not _count(ev):
                return
        if term.name == "include":
            ev.authorized.add(f"include:{term.target}")
            _include(ev, term.target, stack, resolver, how="include:")
        elif term.name in ("a", "mx", "exists"):
            target = term.target or where
            ev.authorized.add(f"{term.name}:{target}")
            rtype = "MX" if term.name == "mx" else "A"
            ans = resolver.query(target, rtype)
            if ans.void:
                ev.void_lookups += 1
            elif ans.error:
                ev.temp_problems.append(ans.describe())
        elif term.name == "ptr":
            ev.problems.append("ptr is slow and unreliable; RFC 7208 5.5 says do not use it")
        elif term.name in ("ip4", "ip6"):
            ev.authorized.add(f"{term.name}:{term.value}")
        elif term.name == "all" and term.qualifier == "+" and not top and not redirected:
            ev.permissive_includes.append(where)
    all_term = parsed.all
    if top and all_term is not None:
        ev.all_qualifier = all_term.qualifier
    redirect = parsed.modifier("redirect")
    if redirect is not None and all_term is None:  # RFC 7208 6.1: ignored when there is an all
        if not _count(ev):
            return
        target = norm(redirect.value)
        ev.authorized.add(f"redirect:{target}")
        sub = _include(ev, target, stack, resolver, how="redirect=")
        if top and sub is not None:
            ev.all_qualifier = sub


def _count(ev: Evaluation) -> bool:
    ev.dns_terms += 1
    if ev.dns_terms > MAX_DNS_TERMS:
        ev.stopped = True
        return False
    return True


def _include(ev: Evaluation, target: str, stack: list[str], resolver: Resolver, *, how: str) -> str | None:
    """Follow include:/redirect=; returns the qualifier of the target's all (for redirect)."""
    if target in stack:
        ev.problems.append(f"{how}{target} loops back ({' -> '.join([*stack, target])})")
        return None
    ans = resolver.query(target, "TXT")
    if ans.void:
        ev.void_lookups += 1
    if ans.error and not ans.void:
        ev.temp_problems.append(ans.describe())
        return None
    records = [r for r in ans.records if is_spf(r)]
    if len(records) != 1:
        # RFC 7208 5.2 / 6.1: a target without exactly one SPF record is a permanent error
        what = "has no SPF record" if not records else f"has {len(records)} SPF records"
        ev.problems.append(f"{how}{target}: {target} {what}")
        return None
    _walk(ev, records[0], [*stack, target], resolver, top=False, redirected=how == "redirect=")
    parsed_all = parse(records[0]).all
    return parsed_all.qualifier if parsed_all else None
