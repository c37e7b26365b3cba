"""Which DNS records a customer must publish for an alias domain, and in what form (pure).

The same `Plan` drives `required_records` (what to publish) and `check.check_domain` (whether it
is published), so the advice and the verdict cannot disagree.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import asdict, dataclass, replace
from typing import Literal, Mapping

from ..domain import AliasDomain, OutgoingServer
from . import spf
from .resolver import norm

#: where an Ed25519 key lives: `<selector>-ed25519` (as mailgate.dkim.ED25519_SUFFIX)
ED25519_SUFFIX = "-ed25519"

Inbound = Literal["mx", "redirect"]

#: SPF terms of well-known SMTP services; any other host is authorized by its address records
KNOWN_SMTP_SPF = {
    "smtp.gmail.com": "include:_spf.google.com",
    "smtp-relay.gmail.com": "include:_spf.google.com",
    "smtp.office365.com": "include:spf.protection.outlook.com",
    "smtp-mail.outlook.com": "include:spf.protection.outlook.com",
    "smtp.sendgrid.net": "include:sendgrid.net",
    "smtp.mailgun.org": "include:mailgun.org",
    "smtp.eu.mailgun.org": "include:mailgun.org",
    "smtp.postmarkapp.com": "include:spf.mtasv.net",
    "smtp.zoho.com": "include:zoho.com",
    "smtp.zoho.eu": "include:zoho.eu",
}
SES_SPF = "include:amazonses.com"


def ses_inbound_host(region: str) -> str:
    return f"inbound-smtp.{region}.amazonaws.com"


def ses_feedback_host(region: str) -> str:
    """The MX a custom MAIL FROM domain points to, so SES receives its bounces."""
    return f"feedback-smtp.{region}.amazonses.com"


def smtp_spf_term(host: str) -> str:
    host = norm(host)
    if host.startswith("email-smtp.") and host.endswith(".amazonaws.com"):
        return SES_SPF  # the SES SMTP interface sends from SES's addresses
    if host in KNOWN_SMTP_SPF:
        return KNOWN_SMTP_SPF[host]
    # An address literal is authorized with ip4:/ip6: (RFC 7208 §5.6); `a:` takes a domain name.
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return f"a:{host}"
    return f"ip{ip.version}:{ip}"


def transports_for(domain: str, servers: list[OutgoingServer]) -> list[OutgoingServer]:
    """The outgoing servers that may send for `domain` (Odoo's from_filter: empty = any sender;
    else comma-separated domains or addresses)."""
    domain = norm(domain)
    chosen = []
    for s in servers:
        entries = [norm(e) for e in s.from_filter.split(",") if e.strip()]
        if not entries or any(e == domain or e.endswith("@" + domain) for e in entries):
            chosen.append(s)
    return chosen


@dataclass(frozen=True)
class DkimKey:
    """A public key as published in a DKIM key record (RFC 6376 3.6.1; Ed25519: RFC 8463)."""

    k: str          # "rsa" or "ed25519"
    p: str          # base64
    bits: int = 0   # RSA modulus size

    @property
    def record(self) -> str:
        return f"v=DKIM1; k={self.k}; p={self.p}"


def dkim_key_from_pem(pem: str) -> DkimKey:
    """The public half of a PEM key (private PKCS#8/PKCS#1 or public), as DKIM publishes it.
    Raises ValueError when the PEM is not an RSA or Ed25519 key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    except (ValueError, TypeError):
        key = serialization.load_pem_public_key(data)
    if isinstance(key, rsa.RSAPublicKey):
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return DkimKey("rsa", base64.b64encode(der).decode(), key.key_size)
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return DkimKey("ed25519", base64.b64encode(raw).decode())
    raise ValueError(f"unsupported DKIM key type {type(key).__name__}: use RSA (2048 bits) or Ed25519")


@dataclass(frozen=True)
class Plan:
    """Everything the advice and the check need to know about one alias domain."""

    domain: AliasDomain
    gateway_domain: str
    region: str
    inbound: Inbound = "mx"
    ses: bool = True
    smtp_hosts: tuple[str, ...] = ()
    mail_from_domain: str = ""              # custom MAIL FROM for SES ("" = none)
    dkim_selector: str = "mailgate"
    dkim_mode: Literal["txt", "cname"] = "cname"
    dkim_key: DkimKey | None = None         # the key we sign with (None: not in Secrets Manager)
    ses_dkim_tokens: tuple[str, ...] = ()
    dmarc_rua: str = ""
    #: the Ed25519 key that adds a second signature where one is stored (dkim.signing_keys):
    #: (selector, mode, key) of `<selector>-ed25519`, published like the main key
    ed25519: tuple[str, str, DkimKey] | None = None

    @property
    def dkim_plans(self) -> list["Plan"]:
        """One plan per DKIM key we sign with: the main one, then the Ed25519 one if any."""
        plans = [self]
        if self.ed25519:
            selector, mode, key = self.ed25519
            plans.append(replace(self, dkim_selector=selector, dkim_mode=mode, dkim_key=key, ed25519=None,
                                 ses_dkim_tokens=()))  # SES's own CNAMEs belong to the first plan only
        return plans

    @property
    def name(self) -> str:
        return norm(self.domain.name)

    @property
    def spf_terms(self) -> list[str]:
        terms = [SES_SPF] if self.ses else []
        for host in self.smtp_hosts:
            t = smtp_spf_term(host)
            if t not in terms:
                terms.append(t)
        return terms

    @property
    def dkim_name(self) -> str:
        return f"{self.dkim_selector}._domainkey.{self.name}"

    @property
    def dkim_target(self) -> str:
        """Where the key record lives: ours for CNAME mode, the domain's own name for TXT mode."""
        if self.dkim_mode == "cname":
            return f"{self.dkim_selector}._domainkey.{norm(self.gateway_domain)}"
        return self.dkim_name

    @property
    def dmarc_record(self) -> str:
        return f"v=DMARC1; p=none; rua={self.dmarc_rua}; adkim=r; aspf=r"


def _pick_key(name: str, gateway: str, keys: Mapping[str, str], selector: str) -> tuple[str, DkimKey | None]:
    """(mode, key): the domain's own key as TXT, else the gateway's through a CNAME (as signing picks)."""
    keys = {norm(k): v for k, v in keys.items()}
    own_pem = keys.get(name)
    if own_pem or name == gateway:
        mode, pem = "txt", own_pem or keys.get(gateway)
    else:
        mode, pem = "cname", keys.get(gateway)
    try:
        return mode, (dkim_key_from_pem(pem) if pem else None)
    except ValueError as exc:
        owner = name if own_pem else gateway
        raise ValueError(f"the DKIM key of {owner} (selector {selector}) does not load: {exc}; "
                         "store a PEM (PKCS#8) RSA 2048 or Ed25519 private key") from None


def make_plan(domain: AliasDomain, transports: list[OutgoingServer], *, region: str, gateway_domain: str,
              dkim_keys: Mapping[str, str] | None = None, inbound: Inbound = "mx", ses: bool = True,
              mail_from_domain: str | None = None, ses_dkim_tokens: tuple[str, ...] | list[str] = (),
              dmarc_rua: str | None = None, ed25519_keys: Mapping[str, str] | None = None) -> Plan:
    """`dkim_keys` maps a domain (the alias domain's own, or the gateway domain) to a PEM key.
    The alias domain's own key is published as a TXT record; else the domain CNAMEs to the
    gateway's key, as Odoo's odoo._domainkey CNAME does. `ed25519_keys` is the same for the
    selector `<selector>-ed25519` (a second signature, RFC 8463). `mail_from_domain` defaults to
    BOUNCE.DOMAIN when SES sends (SES's own MAIL FROM never aligns with the From domain)."""
    name = norm(domain.name)
    gateway = norm(gateway_domain or name)
    mode, key = _pick_key(name, gateway, dkim_keys or {}, domain.dkim_selector)
    ed25519 = None
    if ed25519_keys:
        ed_selector = domain.dkim_selector + ED25519_SUFFIX
        ed_mode, ed_key = _pick_key(name, gateway, ed25519_keys, ed_selector)
        if ed_key is not None:
            ed25519 = (ed_selector, ed_mode, ed_key)
    if mail_from_domain is None:
        mail_from_domain = f"{domain.bounce}.{name}" if ses else ""
    return Plan(
        domain=domain, gateway_domain=gateway, region=region, inbound=inbound, ses=ses,
        smtp_hosts=tuple(norm(t.host) for t in transports),
        mail_from_domain=norm(mail_from_domain) if mail_from_domain else "",
        dkim_selector=domain.dkim_selector, dkim_mode=mode, dkim_key=key,
        ses_dkim_tokens=tuple(ses_dkim_tokens) if ses else (),
        dmarc_rua=dmarc_rua or f"mailto:dmarc-reports@{name}", ed25519=ed25519,
    )


@dataclass(frozen=True)
class Record:
    """One record to publish. `zone` says whose DNS it goes in (the customer's or the gateway's);
    rtype "REDIRECT" is not DNS: it is the catchall forwarding the customer sets up in its mail server."""

    purpose: str    # mx / spf / dkim / dmarc
    name: str
    rtype: str
    value: str
    zone: str
    ttl: int = 3600
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def required_records(domain: AliasDomain, transports: list[OutgoingServer], *, region: str,
                     gateway_domain: str, dkim_keys: Mapping[str, str] | None = None,
                     existing_spf: str | list[str] | None = None, inbound: Inbound = "mx",
                     ses: bool = True, mail_from_domain: str | None = None,
                     ses_dkim_tokens: tuple[str, ...] | list[str] = (), dmarc_rua: str | None = None,
                     plan: Plan | None = None) -> list[Record]:
    """The records the customer must publish for `domain` and the transports it uses."""
    plan = plan or make_plan(domain, transports, region=region, gateway_domain=gateway_domain,
                             dkim_keys=dkim_keys, inbound=inbound, ses=ses, mail_from_domain=mail_from_domain,
                             ses_dkim_tokens=ses_dkim_tokens, dmarc_rua=dmarc_rua)
    return records_for_plan(plan, existing_spf=existing_spf)


def records_for_plan(plan: Plan, *, existing_spf: str | list[str] | None = None) -> list[Record]:
    name, gw = plan.name, plan.gateway_domain
    out: list[Record] = []
    inbound = ses_inbound_host(plan.region)
    # where mail arrives
    if plan.inbound == "mx" or name == gw:
        out.append(Record("mx", name, "MX", f"10 {inbound}", name,
                          note="SES receiving takes the domain's mail (replace other MX records)"))
    else:
        out.append(Record("mx", gw, "MX", f"10 {inbound}", gw, note="the gateway domain receives through SES"))
        out.append(Record("mx", plan.domain.catchall_address, "REDIRECT", f"{plan.domain.catchall}@{gw}", name,
                          note="in your mail server: forward the catchall (and aliases) to the gateway"))
    # SPF: one record, existing mechanisms kept (RFC 7208 4.5)
    merged = spf.merge(existing_spf, plan.spf_terms)
    kept = " (your existing mechanisms kept)" if existing_spf else ""
    out.append(Record("spf", name, "TXT", merged, name,
                      note=f"the only SPF record of {name}{kept}: delete any other v=spf1 record"))
    if plan.ses and plan.mail_from_domain:
        mf = plan.mail_from_domain
        out.append(Record("spf", mf, "MX", f"10 {ses_feedback_host(plan.region)}", name,
                          note="custom MAIL FROM for SES, so SPF aligns with the From domain (DMARC)"))
        out.append(Record("spf", mf, "TXT", f"v=spf1 {SES_SPF} ~all", name, note="SPF of the MAIL FROM domain"))
    # DKIM: one record per key we sign with (RSA, and Ed25519 where a key is stored)
    for p in plan.dkim_plans:
        key_txt = p.dkim_key.record if p.dkim_key else "v=DKIM1; k=rsa; p=<public key: create the DKIM key first>"
        if p.dkim_mode == "cname":
            out.append(Record("dkim", p.dkim_name, "CNAME", p.dkim_target, name,
                              note="points to the gateway's published key; key rotation needs no change here"))
            out.append(Record("dkim", p.dkim_target, "TXT", key_txt, gw, note="the gateway's key (published by the gateway)"))
        else:
            out.append(Record("dkim", p.dkim_name, "TXT", key_txt, name, note="our public key for this domain"))
    for token in plan.ses_dkim_tokens:
        out.append(Record("dkim", f"{token}._domainkey.{name}", "CNAME", f"{token}.dkim.amazonses.com", name,
                          note="SES Easy DKIM"))
    out.append(Record("dmarc", f"_dmarc.{name}", "TXT", plan.dmarc_record, name,
                      note="start with p=none, read the reports, then move to quarantine or reject"))
    return out


def _quote_txt(value: str) -> str:
    """TXT character-strings hold at most 255 octets (RFC 1035 3.3.14): split long values."""
    raw = value.encode()
    chunks = [raw[i:i + 255] for i in range(0, len(raw), 255)] or [b""]
    return " ".join('"' + c.decode().replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)


def zone_lines(records: list[Record]) -> str:
    """The records in zone-file form, grouped by the zone they belong to."""
    zones: dict[str, list[Record]] = {}
    for r in records:
        zones.setdefault(r.zone, []).append(r)
    lines: list[str] = []
    for zone, recs in zones.items():
        lines.append(f"; zone {zone}")
        for r in recs:
            if r.rtype == "REDIRECT":
                lines.append(f"; not DNS - {r.note}: {r.name} -> {r.value}")
                continue
            value = _quote_txt(r.value) if r.rtype == "TXT" else _absolute(r.value, r.rtype)
            lines.append(f"{r.name}. {r.ttl} IN {r.rtype} {value}")
        lines.append("")
    return "\n".join(lines)


def _absolute(value: str, rtype: str) -> str:
    if rtype == "MX":
        pref, _, host = value.partition(" ")
        return f"{pref} {host.rstrip('.')}."
    if rtype == "CNAME":
        return value.rstrip(".") + "."
    return value
