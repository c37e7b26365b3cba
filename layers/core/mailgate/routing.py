"""The routing decision for one inbound message: pure, over a small read-only view.

`decide(parsed, envelope_recipients, view, token_key=...)` follows Odoo's order (DESIGN.md
"Routing an inbound message"), improved; each step is a small rule that returns a Route or None:

0. SES verdicts under the alias domain's policy (virus, DMARC failure: quarantine; spam: mark)
1. (dedup happens in the service: a conditional write on the message key)
2. bounce alias / DSN / mailer-daemon            -> "bounce"
3. auto-reply headers, our own mail, loop counter -> "auto-reply" / "loop"
4. signed reply token catchall+TOKEN@domain       -> "thread"
5. In-Reply-To / References (newest known of 32)  -> "thread"
5b. list or bulk mail that answers no thread      -> "bulk" (recorded, never a new record)
6. an alias: new record or its forced thread, under its contact policy -> "new-record" /
   "thread" / "rejected"
7a. fetched mail no alias takes, from a server with a fallback model -> "new-record"
7. the catchall or an unknown alias               -> "unknown-recipient" (polite answer)

The view answers lookups only; `lookup_keys` lists every key the decision may read so that a
store can fetch them all in one batch (`ports.InboundStore.load`, answered as an
`inbound_model.Snapshot`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterable, Protocol

from . import loops, tokens
from .domain import Alias, AliasDomain, IncomingServer, Thread
from .inbound_model import LookupKeys, loop_counter_key
from .message import ParsedMessage

#: At most this many recipient addresses are looked at (a message with 2,000 recipients is
#: routed on the first ones, in envelope-then-header order; the rest are recorded as a count).
MAX_ROUTING_RECIPIENTS = 100

#: Addresses read from the envelope and headers (only those in our alias domains become targets).
MAX_CANDIDATES = 10_000

KINDS = ("thread", "new-record", "bounce", "auto-reply", "bulk", "loop", "quarantined",
         "unknown-recipient", "rejected")

DEFAULT_POLICY = AliasDomain(name="")


class RoutingView(Protocol):
    """Read-only facts the decision needs (config, threads, counters); `inbound_model.Snapshot`."""

    def domain(self, name: str) -> AliasDomain | None: ...
    def own_domains(self) -> frozenset[str]: ...
    def alias(self, domain: str, name: str) -> Alias | None: ...
    def thread(self, thread_id: str) -> Thread | None: ...
    def threads_for_message_ids(self, message_ids: list[str]) -> dict[str, str]: ...
    def is_known_sender(self, address: str) -> bool: ...
    def count(self, key: str) -> int: ...


@dataclass(frozen=True)
class Target:
    """A recipient in one of our alias domains, and what it is there."""

    address: str
    domain: AliasDomain
    base: str
    tag: str
    role: str  # "bounce" | "catchall" | "alias" | "unknown"
    alias: Alias | None = None

    @property
    def plain_address(self) -> str:
        return f"{self.base}@{self.domain.name}"


@dataclass
class Route:
    kind: str
    reason: str
    thread_id: str = ""
    alias: Alias | None = None
    domain: AliasDomain | None = None
    recipient: str = ""
    #: send a polite answer (bounce reply) to `answer_to` with `answer_text`
    answer: bool = False
    answer_to: str = ""
    answer_text: str = ""
    #: loop counter to increment when the message is committed
    counter_key: str = ""
    counter_window_seconds: int = 0
    spam: bool = False
    notes: list[str] = field(default_factory=list)
    signals: dict[str, Any] = field(default_factory=dict)
    recipients: list[str] = field(default_factory=list)
    #: the thread read while deciding (so that nobody reads it again)
    thread: Thread | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "reason": self.reason, "thread_id": self.thread_id,
            "alias": self.alias.address if self.alias else "",
            "model": self.alias.model if self.alias else "",
            "domain": self.domain.name if self.domain else "", "recipient": self.recipient,
            "answer": self.answer, "answer_to": self.answer_to, "spam": self.spam,
            "notes": self.notes, "signals": self.signals, "counter_key": self.counter_key,
        }


def candidate_recipients(parsed: ParsedMessage, envelope_recipients: Iterable[str]) -> list[str]:
    """Envelope recipients first (SES receipt.recipients), then the headers a redirection keeps."""
    envelope = tuple(envelope_recipients or ())
    memo = parsed.__dict__.setdefault("_candidates", {})  # lookup_keys and decide both ask
    if envelope in memo:
        return memo[envelope]
    seen: dict[str, None] = {}
    for addr in envelope + tuple(parsed.header_recipients):
        addr = (addr or "").strip().strip("<>").lower()
        if "@" in addr and len(seen) < MAX_CANDIDATES:
            seen.setdefault(addr, None)
    memo.clear()
    memo[envelope] = result = list(seen)
    return result


def _targets(recipients: list[str], view: RoutingView) -> list[Target]:
    targets: list[Target] = []
    for addr in recipients:
        base, tag, dom = tokens.split_local(addr)
        domain = view.domain(dom) if dom else None
        if domain is None:
            continue
        if base == domain.bounce.lower():
            role, alias = "bounce", None
        elif base == domain.catchall.lower():
            role, alias = "catchall", None
        else:
            alias = view.alias(domain.name, base)
            role = "alias" if alias else "unknown"
        targets.append(Target(addr, domain, base, tag, role, alias))
        if len(targets) >= MAX_ROUTING_RECIPIENTS:
            break
    return targets


def _token_thread(token_key: tokens.TokenKeys | bytes, address: str) -> str | None:
    """The thread id of a genuine reply address (memoised: `lookup_keys` and `decide` both ask;
    on the keys in force now, so that a key past its grace period is not remembered as valid)."""
    return _checked_reply(tokens.as_keys(token_key).in_force(), address)


@lru_cache(maxsize=4096)
def _checked_reply(keys: tokens.TokenKeys, address: str) -> str | None:
    return tokens.parse_reply_address(keys, address)


def lookup_keys(parsed: ParsedMessage, envelope_recipients: Iterable[str],
                domains: dict[str, AliasDomain], token_key: tokens.TokenKeys | bytes,
                ledger_keys: Iterable[str] = ()) -> LookupKeys:
    """The keys `decide` will read, given the (small, cacheable) list of alias domains; and the
    ledger records the caller wants in the same read (`ledger_keys`)."""
    aliases, thread_ids, counters = [], [], []
    for addr in candidate_recipients(parsed, envelope_recipients):
        base, tag, dom = tokens.split_local(addr)
        domain = domains.get(dom)
        if domain is None:
            continue
        if base not in (domain.bounce.lower(), domain.catchall.lower()):
            aliases.append((domain.name, base))
        if tag and base == domain.catchall.lower():
            tid = _token_thread(token_key, addr)
            if tid:
                thread_ids.append(tid)
        if parsed.sender:
            counters.append(loop_counter_key(parsed.sender, f"{base}@{domain.name}"))
        if len(aliases) >= MAX_ROUTING_RECIPIENTS:
            break
    return LookupKeys(domains=sorted(domains), aliases=list(dict.fromkeys(aliases)),
                      thread_ids=list(dict.fromkeys(thread_ids)), message_ids=list(parsed.references),
                      counter_keys=list(dict.fromkeys(counters)),
                      contacts=[parsed.sender] if parsed.sender else [], ledger_keys=list(ledger_keys))


def _verdict(verdicts: dict[str, Any] | None, name: str) -> str:
    return str((verdicts or {}).get(name) or "").upper()


def _apply_verdicts(verdicts: dict[str, Any] | None, policy: AliasDomain) -> tuple[str | None, bool, list[str]]:
    """(quarantine reason or None, spam mark, notes) under the alias domain's policy."""
    if not verdicts:
        return None, False, []
    notes = [f"{n} {_verdict(verdicts, n)}" for n in ("spam", "virus", "spf", "dkim", "dmarc")
             if _verdict(verdicts, n) and _verdict(verdicts, n) != "PASS"]
    spam = _verdict(verdicts, "spam") == "FAIL"
    if _verdict(verdicts, "virus") == "FAIL" and policy.quarantine_virus:
        return "SES virus verdict FAIL", spam, notes
    dmarc_policy = str((verdicts or {}).get("dmarc_policy") or "").lower()
    # RFC 7489 §6.3: p=none asks receivers only to report, so a failure under it is only marked
    if _verdict(verdicts, "dmarc") == "FAIL" and policy.quarantine_dmarc_fail and dmarc_policy != "none":
        return f"SES DMARC verdict FAIL (sender domain policy {dmarc_policy or 'unknown'})", spam, notes
    if spam and policy.quarantine_spam:
        return "SES spam verdict FAIL", spam, notes
    return None, spam, notes


@dataclass(frozen=True)
class Authenticity:
    """What SES's verdicts say about the two sender addresses (mail without verdicts, fetched
    mail, is judged by its mailbox's provider: both count as not forged).

    SPF FAIL: the envelope sender's domain says this host may not use it (RFC 7208 §2.6.4), so
    the Return-Path is forged. DMARC FAIL: the From domain's own policy says the message is not
    its (RFC 7489 §6.6.2), so the From address is forged, whatever SPF said of another domain. A
    forged From counts toward no one's loop limit (the counter is the From address's); a forged
    answer address gets no automatic answer (RFC 3834 §4; backscatter). DKIM FAIL alone changes
    nothing: forwarding breaks signatures, and DMARC already weighs an aligned one."""

    forged_envelope: bool = False
    forged_from: bool = False

    @classmethod
    def of(cls, verdicts: dict[str, Any] | None) -> "Authenticity":
        return cls(_verdict(verdicts, "spf") == "FAIL", _verdict(verdicts, "dmarc") == "FAIL")

    def refuses_answer(self, to_envelope: bool) -> str | None:
        if to_envelope and self.forged_envelope:
            return "SPF FAIL: the envelope sender is forged (RFC 3834 §4: no answer to a forged address)"
        if not to_envelope and self.forged_from:
            return "DMARC FAIL: the From address is forged (RFC 3834 §4: no answer to a forged address)"
        return None


def _allowlisted(sender: str, domain: AliasDomain) -> bool:
    allow = {a.lower() for a in domain.loop_allowlist}
    return sender in allow or ("@" + sender.rpartition("@")[2]) in allow


DEFAULT_UNKNOWN_TEXT = (
    "Your message to {recipient} was not delivered: this address does not accept new messages.\n\n"
    "If you meant to answer a conversation, reply to the last message you received from us, so that "
    "your reply carries its reply address. Otherwise write to one of the addresses published by {domain}.\n"
)
DEFAULT_REJECTED_TEXT = (
    "Your message to {recipient} was not accepted: this address takes mail only from {who}.\n\n"
    "If you should be able to write here, ask your contact at {domain} to add you.\n"
)


@dataclass
class _Message:
    """What every rule reads: the message, its recipients in our domains, its signals; and the
    notes and loop counter that earlier rules leave for later ones."""

    parsed: ParsedMessage
    recipients: list[str]
    targets: list[Target]
    view: RoutingView
    token_key: tokens.TokenKeys | bytes
    own: frozenset[str]
    sig: loops.Signals
    spam: bool
    verdict_notes: list[str]
    domain: AliasDomain | None
    auth: Authenticity = Authenticity()
    #: why a reply token or a forced thread was not followed (said on the route finally taken)
    notes: list[str] = field(default_factory=list)
    #: the loop counter the route increments when committed (rule 3, continued)
    counted: dict[str, Any] = field(default_factory=dict)

    @property
    def sender(self) -> str:
        return self.parsed.sender

    def route(self, kind: str, reason: str, **kw: Any) -> Route:
        r = Route(kind=kind, reason=reason, domain=kw.pop("domain", self.domain),
                  recipients=self.recipients[:200], **kw)
        r.spam, r.signals = self.spam, self.sig.to_dict()
        r.notes = self.verdict_notes + r.notes
        return r

    def noted(self, r: Route) -> Route:
        r.notes += self.notes
        return r


def decide(parsed: ParsedMessage, envelope_recipients: Iterable[str], view: RoutingView, *,
           token_key: tokens.TokenKeys | bytes, verdicts: dict[str, Any] | None = None,
           fetched_from: IncomingServer | None = None) -> Route:
    """The route of one message: the first rule that applies, in Odoo's order (module docstring).

    `fetched_from` is the incoming server a fetched message came from: its fallback model opens a
    record for mail that no alias takes (Odoo's fetchmail.server `object_id`)."""
    recipients = candidate_recipients(parsed, envelope_recipients)
    targets = _targets(recipients, view)
    domain = targets[0].domain if targets else None
    quarantine, spam, notes = _apply_verdicts(verdicts, domain or DEFAULT_POLICY)
    own = view.own_domains()
    m = _Message(parsed, recipients, targets, view, token_key, own, loops.signals(parsed, own), spam, notes, domain,
                 Authenticity.of(verdicts))
    if quarantine:
        return m.route("quarantined", quarantine)
    for rule in (_bounce, _automatic, _reply_token, _references, _bulk, _loop_limit, _alias):
        route = rule(m)
        if route is not None:
            return route
    return _fallback_model(m, fetched_from) or _unknown_recipient(m)


def _bounce(m: _Message) -> Route | None:
    """2. bounces: never routed as replies (classification: the feedback capability)."""
    target = next((t for t in m.targets if t.role == "bounce"), None)
    if target:
        return m.route("bounce", f"sent to the bounce address {target.address}", recipient=target.address)
    if m.sig.bounce:
        return m.route("bounce", "delivery notification: " + "; ".join(m.sig.bounce))
    return None


def _automatic(m: _Message) -> Route | None:
    """3. auto-replies and loops: recorded, never answered, never a new record."""
    if m.sig.auto_reply:
        return m.route("auto-reply", "automatic message: " + "; ".join(m.sig.auto_reply))
    if m.sig.own:
        return m.route("loop", "our own mail came back: " + "; ".join(m.sig.own))
    return None


def _reply_token(m: _Message) -> Route | None:
    """4. a signed reply token in a catchall+TOKEN@ recipient names the thread."""
    for t in m.targets:
        if t.role == "catchall" and t.tag:
            tid = _token_thread(m.token_key, t.address)
            if tid and m.view.thread(tid) is not None:
                return m.route("thread", f"reply token in {t.address}", thread_id=tid, recipient=t.address,
                               domain=t.domain, thread=m.view.thread(tid))
            m.notes.append(f"reply token in {t.address} is {'for an unknown thread' if tid else 'not genuine'}; ignored")
    return None


def _references(m: _Message) -> Route | None:
    """5. In-Reply-To / References: the newest id we know."""
    references = m.parsed.references
    if not references:
        return None
    known = m.view.threads_for_message_ids(references)
    for mid in reversed(references):
        tid = known.get(mid)
        if tid and m.view.thread(tid) is not None:
            return m.noted(m.route("thread", f"answers message <{mid}>", thread_id=tid, thread=m.view.thread(tid)))
    return None


def _bulk(m: _Message) -> Route | None:
    """5b. list and bulk mail (Precedence: bulk/junk/list, RFC 2369 / RFC 2919 list headers) that
    answers no thread: recorded, never a new record (a newsletter to sales@ is not a lead) and
    never answered (RFC 3834 §2). It is not an auto-reply, and not counted toward the sender's
    loop limit: a list sends what its members write. A reply that comes through a list reached
    its thread by rules 4-5 already."""
    if not m.sig.bulk:
        return None
    return m.noted(m.route("bulk", "list or bulk mail: recorded, not opened as a new record and never answered ("
                                   + "; ".join(m.sig.bulk) + ")"))


def _loop_limit(m: _Message) -> Route | None:
    """3 (continued). Mail to an alias or the catchall that does not answer a thread: more than
    loop_limit per sender and address in the window is a loop (Odoo: 20 in 120 minutes). Replies
    to threads (rules 4-5) are not counted: a busy conversation is not a loop."""
    counter_key, window = "", 0
    first = next((t for t in m.targets if t.role != "bounce"), None)
    sender = m.sender
    if sender and first is not None:
        counter_key = loop_counter_key(sender, first.plain_address)
        window = first.domain.loop_window_minutes * 60
        if not _allowlisted(sender, first.domain):
            seen = m.view.count(counter_key)
            if seen >= first.domain.loop_limit:
                return m.route("loop", f"{sender} sent {seen} messages to {first.plain_address} within "
                                       f"{first.domain.loop_window_minutes} minutes (limit {first.domain.loop_limit})")
    if counter_key and m.auth.forged_from:
        # a forged From must not use up the real sender's allowance (20 spoofed mails made the
        # victim's own mail a "loop"); the limit is still applied to it
        m.notes.append(f"not counted toward the loop limit of {sender}: DMARC FAIL (the From address is forged)")
        counter_key, window = "", 0
    m.counted = {"counter_key": counter_key, "counter_window_seconds": window}
    return None


def _alias(m: _Message) -> Route | None:
    """6. an alias: a new record of its model, or a post in its forced thread, under its contact
    policy; refused by every alias -> "rejected", with a polite answer."""
    rejected: tuple[Target, str] | None = None
    for t in m.targets:
        if t.role != "alias" or t.alias is None:
            continue
        alias = t.alias
        refusal = _contact_refusal(alias, m.sender, m.view)
        if refusal:
            rejected = rejected or (t, refusal)
            continue
        if alias.force_thread_id:
            if m.view.thread(alias.force_thread_id) is not None:
                return m.noted(m.route("thread", f"alias {alias.address} posts into its thread",
                                       thread_id=alias.force_thread_id, alias=alias, recipient=t.address,
                                       domain=t.domain, thread=m.view.thread(alias.force_thread_id), **m.counted))
            m.notes.append(f"forced thread {alias.force_thread_id} of {alias.address} does not exist")
        return m.noted(m.route("new-record", f"alias {alias.address} creates a {alias.model}", alias=alias,
                               recipient=t.address, domain=t.domain, **m.counted))
    if rejected:
        t, refusal = rejected
        text = t.alias.bounce_text or t.domain.bounce_text or DEFAULT_REJECTED_TEXT
        return _answered(m.route("rejected", f"{t.alias.address}: {refusal}", alias=t.alias, recipient=t.address,
                                 domain=t.domain, **m.counted), m, text, t)
    return None


def _local_target(m: _Message) -> Target | None:
    return next((t for t in m.targets if t.role in ("catchall", "unknown")), None)


def _fallback_model(m: _Message, server: IncomingServer | None) -> Route | None:
    """7a. fetched mail that no alias takes opens a record of its server's fallback model instead
    of going unanswered, as if the mailbox were an alias of that model."""
    if server is None or not server.fallback_model:
        return None
    mailbox = server.user if "@" in server.user else f"{server.name}@{server.host}"
    local_part, _, domain = mailbox.rpartition("@")
    target = _local_target(m)
    where = {"recipient": target.address, "domain": target.domain, **m.counted} if target is not None else {}
    return m.noted(m.route(
        "new-record", f"fetched from {server.name} ({mailbox}) and matching no alias: a new "
                      f"{server.fallback_model} record (the server's fallback model)",
        alias=Alias(domain=domain, name=local_part, model=server.fallback_model), **where))


def _unknown_recipient(m: _Message) -> Route:
    """7. only the catchall or an unknown alias: a polite answer."""
    local = _local_target(m)
    if local is not None:
        what = "the catchall address" if local.role == "catchall" else "an unknown alias"
        r = m.noted(m.route("unknown-recipient", f"{local.plain_address} is {what}", recipient=local.address,
                            domain=local.domain, **m.counted))
        return _answered(r, m, local.domain.bounce_text or DEFAULT_UNKNOWN_TEXT, local)
    recipients = m.recipients
    return m.noted(m.route("unknown-recipient", "no recipient in a configured alias domain"
                           + (f" (looked at {len(recipients)} addresses)" if recipients else " (no recipients)")))


def _contact_refusal(alias: Alias, sender: str, view: RoutingView) -> str | None:
    """Odoo's alias_contact: everyone / partners (known senders) / followers of the record."""
    if alias.contact_policy == "everyone":
        return None
    if not sender:
        return "the message has no sender address"
    if alias.contact_policy == "partners":
        return None if view.is_known_sender(sender) else f"{sender} is not a known contact"
    if alias.contact_policy == "followers":
        thread = view.thread(alias.force_thread_id) if alias.force_thread_id else None
        if thread and sender in (f.lower() for f in thread.followers):
            return None
        return f"{sender} does not follow the alias's thread"
    return f"unknown contact policy {alias.contact_policy!r}"


def _answered(r: Route, m: _Message, text: str, t: Target) -> Route:
    """Fill in the polite answer unless RFC 3834 forbids one (§2: null sender, automatic, ours;
    §4: a forged address)."""
    # RFC 3834 §4: responses go to the Return-Path (the envelope sender), else to From
    to_envelope = m.parsed.return_path is not None
    to = m.parsed.return_path if to_envelope else m.parsed.sender
    refusal = loops.may_answer(to, m.sig, m.own) or m.auth.refuses_answer(to_envelope)
    if refusal:
        r.notes.append(f"not answered: {refusal}")
        return r
    who = {"partners": "known contacts", "followers": "followers of its conversation"}.get(
        t.alias.contact_policy if t.alias else "", "known senders")
    r.answer, r.answer_to = True, to
    r.answer_text = _fill(text, recipient=t.plain_address, domain=t.domain.name, who=who)
    return r


def _fill(text: str, **values: str) -> str:
    try:
        return text.format(**values)
    except (KeyError, IndexError, ValueError):  # an admin's text with stray braces is sent as written
        return text
