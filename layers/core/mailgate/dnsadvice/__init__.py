"""DNS advice and checks for alias domains: which SPF, DKIM, DMARC and MX records to publish,
and whether they are published right (RFC 7208, RFC 6376, RFC 7489).

Named `dnsadvice` so it never shadows dnspython's `dns` package.

    plan = plan_for(c, "example.com")               # or make_plan(...) without a stack
    records = records_for_plan(plan, existing_spf=...)
    report = check_domain(plan, resolver)           # a ports.Resolver (adapters.dnspython)
"""

from __future__ import annotations

from ..errors import NotFound
from .check import ERROR, OK, WARN, Finding, Report, check_domain, parse_tags
from .records import (
    ED25519_SUFFIX, DkimKey, Plan, Record, dkim_key_from_pem, make_plan, records_for_plan, required_records,
    ses_feedback_host, ses_inbound_host, smtp_spf_term, transports_for, zone_lines,
)
from .resolver import Answer, Resolver, parse_nameserver
from .spf import evaluate as evaluate_spf
from .spf import merge as merge_spf

__all__ = [
    "Answer", "DkimKey", "ERROR", "Finding", "OK", "Plan", "Record", "Report",
    "Resolver", "WARN", "check_domain", "dkim_key_from_pem", "dkim_keys_for", "evaluate_spf",
    "make_plan", "merge_spf", "parse_nameserver", "parse_tags", "plan_for", "records_for_plan",
    "required_records", "ses_feedback_host", "ses_inbound_host", "smtp_spf_term", "transports_for",
    "zone_lines",
]


def dkim_keys_for(c, domain, selector: str | None = None) -> dict[str, str]:
    """The DKIM private keys (PEM) in the secret store for this domain's selector (or `selector`):
    the domain's own and the gateway's shared one (BRIEF contract: DKIM_PREFIX + domain/selector).
    Missing ones are left out; the plan then says the key must be created."""
    keys: dict[str, str] = {}
    prefix = c.settings.dkim_secret_prefix
    for owner in (domain.name, c.settings.gateway_domain):
        if not owner:
            continue
        try:
            keys[owner] = c.secrets.get(f"{prefix}{owner.lower()}/{selector or domain.dkim_selector}")
        except NotFound:
            continue
    return keys


def plan_for(c, domain_name: str, *, region: str | None = None, inbound: str = "mx",
             mail_from_domain: str | None = None, ses_dkim_tokens=(), dmarc_rua: str | None = None) -> Plan:
    """The plan for an alias domain configured in the container `c`. Raises NotFound when the
    domain is not configured."""
    domain = c.config.get_domain(domain_name)
    if domain is None:
        raise NotFound(f"no alias domain {domain_name!r} is configured: add it first (mailgate domain add)")
    transports = transports_for(domain.name, c.config.list_outgoing())
    return make_plan(domain, transports, region=region or c.settings.region,
                     gateway_domain=c.settings.gateway_domain or domain.name,
                     dkim_keys=dkim_keys_for(c, domain), inbound=inbound,
                     mail_from_domain=mail_from_domain, ses_dkim_tokens=ses_dkim_tokens, dmarc_rua=dmarc_rua,
                     ed25519_keys=dkim_keys_for(c, domain, domain.dkim_selector + ED25519_SUFFIX))
