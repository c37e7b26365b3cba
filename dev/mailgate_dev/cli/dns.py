"""`mailgate dns records DOMAIN` and `mailgate dns check DOMAIN`: what to publish, and whether it is.

Exit status of `check`: 0 every record ok, 1 anything warn or error, 2 bad usage.
"""

from __future__ import annotations

import re
import sys

from . import common

_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.?$", re.I)


def register(subparsers) -> None:
    dns = subparsers.add_parser("dns", help="DNS records to publish (SPF, DKIM, DMARC, MX) and their check")
    sub = dns.add_subparsers(dest="dns_command", required=True)

    rec = sub.add_parser("records", help="the records the customer must publish for an alias domain")
    rec.add_argument("domain")
    _common_options(rec)
    rec.add_argument("--existing-spf", metavar="RECORD",
                     help="the SPF record published today (default: look it up) to merge our include into")
    rec.add_argument("--offline", action="store_true", help="do not look up the existing SPF record")
    rec.add_argument("--zone", action="store_true", help="print only the zone-file form")
    rec.set_defaults(func=cmd_records)

    chk = sub.add_parser("check", help="check the published records, record by record")
    chk.add_argument("domain")
    _common_options(chk)
    chk.set_defaults(func=cmd_check)


def _common_options(p) -> None:
    common.add_json_flag(p)
    p.add_argument("--region", help="SES region (default: the stack's)")
    p.add_argument("--inbound", choices=("mx", "redirect"), default=None,
                   help="mx: the domain's MX goes to SES; redirect: your mail server forwards the catchall")
    p.add_argument("--dmarc-rua", metavar="MAILTO", help="DMARC report address (default mailto:dmarc-reports@DOMAIN)")
    p.add_argument("--nameserver", metavar="HOST[:PORT]", help="ask this nameserver (default: the system's)")
    p.add_argument("--timeout", type=float, default=2.0, metavar="S", help="seconds per DNS query (default 2)")


class _Usage(Exception):
    pass


def _resolver(args):
    from mailgate.adapters.dnspython import DnspythonResolver
    from mailgate.dnsadvice import parse_nameserver

    if not _DOMAIN_RE.match(args.domain or ""):
        raise _Usage(f"{args.domain!r} is not a domain name")
    if not args.timeout or args.timeout <= 0:
        raise _Usage("--timeout must be a positive number of seconds")
    if args.nameserver:
        try:
            parse_nameserver(args.nameserver)
        except ValueError as exc:
            raise _Usage(str(exc)) from None
    return DnspythonResolver.for_nameserver(args.nameserver, timeout=args.timeout)


def _plan(args):
    from mailgate.dnsadvice import plan_for

    c = common.get_container(args)
    domain = c.config.get_domain(args.domain.rstrip("."))
    inbound = args.inbound or (domain.inbound if domain else "mx")
    return plan_for(c, args.domain.rstrip("."), region=args.region, inbound=inbound,
                    dmarc_rua=getattr(args, "dmarc_rua", None) or (domain.dmarc_rua if domain else None) or None,
                    **_ses_asks(args, c, args.domain.rstrip(".").lower()))


def _ses_asks(args, c, name: str) -> dict:
    """What SES asks to find in DNS for the domain, when it has an identity there: Easy DKIM's
    three CNAMEs (GetEmailIdentity's tokens) and its MAIL FROM domain's MX and TXT."""
    from mailgate.errors import MailgateError

    try:
        identity = common.get_admin(args, c).ses.identity(name)
    except MailgateError:
        return {}  # SES unreachable or not allowed: the records without its part
    if identity is None:
        return {}
    asks: dict = {"mail_from_domain": identity.mail_from_domain or None}
    if identity.dkim_origin != "EXTERNAL":
        asks["ses_dkim_tokens"] = identity.dkim_tokens
    return asks


def _usage(message: str) -> int:
    print(f"mailgate: {message}", file=sys.stderr)
    return common.EXIT_USAGE


def _resolver_and_plan(args):
    """(resolver, plan) for the command, or the exit code of a usage error or an unusable domain."""
    from mailgate.errors import MailgateError

    try:
        resolver = _resolver(args)
    except _Usage as exc:
        return _usage(str(exc))
    try:
        return resolver, _plan(args)
    except (MailgateError, ValueError) as exc:
        return common.fail(str(exc))


def cmd_records(args) -> int:
    from mailgate.dnsadvice import records_for_plan, zone_lines
    from mailgate.dnsadvice.spf import is_spf

    got = _resolver_and_plan(args)
    if isinstance(got, int):
        return got
    resolver, plan = got
    notes = []
    existing = None
    if args.existing_spf:
        existing = args.existing_spf
    elif not args.offline:
        ans = resolver.query(plan.name, "TXT")
        existing = [r for r in ans.records if is_spf(r)]
        if ans.error and not ans.void:
            notes.append(f"could not read the current SPF record ({ans.describe()}); "
                         "pass --existing-spf to merge into it")
        elif len(existing) > 1:
            notes.append(f"{plan.name} publishes {len(existing)} SPF records today; the record below replaces all of them")
    records = records_for_plan(plan, existing_spf=existing)
    zone = zone_lines(records)
    rows = [{"purpose": r.purpose, "name": r.name, "type": r.rtype, "value": r.value, "note": r.note} for r in records]
    text = "\n".join([f"Records to publish for {plan.name}:", "",
                      common.table(rows, ["purpose", "name", "type", "value"]), "",
                      "Zone-file form:", "", zone, *[f"note: {n}" for n in notes]])
    if args.zone and not args.json:
        text = zone + "".join(f"; note: {n}\n" for n in notes)
    common.emit(args, {"domain": plan.name, "records": [r.to_dict() for r in records], "zone": zone,
                       "existing_spf": existing or [], "notes": notes}, text)
    return common.EXIT_OK


def cmd_check(args) -> int:
    from mailgate.dnsadvice import check_domain

    got = _resolver_and_plan(args)
    if isinstance(got, int):
        return got
    resolver, plan = got
    report = check_domain(plan, resolver)
    common.emit(args, report.to_dict(), render(report))
    return common.EXIT_OK if report.ok else common.EXIT_FAILED


def render(report) -> str:
    lines = []
    for f in report.findings:
        lines.append(f"[{f.status.upper():5}] {f.record:5} {f.name}")
        lines.append(f"         found:    {f.found}")
        if f.status != "ok":
            lines.append(f"         expected: {f.expected}")
            lines.append(f"         fix:      {f.fix}")
    lines.append("")
    lines.append(f"{report.domain}: {report.status} ({report.queries} DNS queries, {report.seconds * 1000:.0f} ms)")
    return "\n".join(lines)
