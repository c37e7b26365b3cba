"""`mailgate domain add|list|show|remove`: alias domains (Odoo's mail.alias.domain)."""

from __future__ import annotations

import re
from dataclasses import asdict, replace

from mailgate.domain import AliasDomain
from mailgate.validate import domain_name, local_part
from .common import EXIT_OK, UsageError, add_json_flag, emit, fail, get_container, table
from .target import check_target

#: a DKIM selector is a DNS label here (RFC 6376 3.1 allows dotted ones; one label is what we publish)
_SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def register(sub) -> None:
    p = sub.add_parser("domain", help="alias domains: catchall, bounce alias, default sender")
    s = p.add_subparsers(dest="domain_command", metavar="ACTION")

    # Every option defaults to None: on an existing domain, `add` changes only what it is given.
    add = s.add_parser("add", help="add an alias domain, or change the options given of an existing one")
    add.add_argument("name", help="the domain, e.g. example.com")
    add.add_argument("--catchall", help="catchall alias (default: catchall)")
    add.add_argument("--bounce", help="bounce alias (default: bounce)")
    add.add_argument("--default-from", help="default sender (default: notifications)")
    add.add_argument("--loop-limit", type=int, help="mails per sender and alias before a loop (default 20)")
    add.add_argument("--loop-window", type=int, help="loop window in minutes (default 120)")
    add.add_argument("--allow", action="append", metavar="ADDR",
                     help="a sender exempt from loop protection (repeatable; replaces the list)")
    add.add_argument("--bounce-text", help="text of the polite reply to unknown recipients")
    add.add_argument("--inbound", choices=["mx", "redirect"],
                     help="mx (default): the domain's MX points at the gateway; redirect: catchall@ is forwarded to it")
    add.add_argument("--dmarc-rua", help="address for DMARC aggregate reports")
    add.add_argument("--dkim-selector", metavar="SELECTOR",
                     help="the DKIM selector outbound mail is signed with (default: mailgate); switch to a "
                          "new one after `mailgate dkim keygen DOMAIN --selector NEW`")
    add.add_argument("--deliver-to", metavar="TARGET",
                     help="the delivery target (`mailgate target list`) routed mail goes to besides the events; "
                          "'eventbridge': events only (the default)")
    ses = add.add_argument_group("SES sending (SESv2; no console)")
    ses.add_argument("--ses", action="store_true",
                     help="also make SES send for the domain: identity with DKIM, custom MAIL FROM domain, the "
                          "configuration set's bounce and complaint destination")
    ses.add_argument("--dkim", choices=["byo", "easy"],
                     help="byo: SES signs with the gateway's key (`mailgate dkim keygen`; default when there is "
                          "one); easy: SES's own keys (three CNAMEs to publish)")
    ses.add_argument("--mail-from", metavar="DOMAIN", help="custom MAIL FROM domain (default: BOUNCE.DOMAIN)")
    add_json_flag(add)
    add.set_defaults(func=cmd_add)

    ls = s.add_parser("list", help="list alias domains")
    add_json_flag(ls)
    ls.set_defaults(func=cmd_list)

    show = s.add_parser("show", help="show one alias domain with its aliases")
    show.add_argument("name")
    add_json_flag(show)
    show.set_defaults(func=cmd_show)

    rm = s.add_parser("remove", help="remove an alias domain")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)


def cmd_add(args) -> int:
    name = domain_name(args.name)
    if (args.loop_limit is not None and args.loop_limit < 1) or (args.loop_window is not None and args.loop_window < 1):
        raise UsageError("--loop-limit and --loop-window must be at least 1 (a limit of 0 would make every "
                         "message a loop; to exempt a sender, use --allow ADDR)")
    if args.dkim_selector is not None and not _SELECTOR.match(args.dkim_selector.strip()):
        raise UsageError(f"--dkim-selector {args.dkim_selector!r}: use letters, digits and '-' (e.g. s2026)")
    given = {
        "catchall": args.catchall and local_part(args.catchall),
        "bounce": args.bounce and local_part(args.bounce),
        "default_from": args.default_from and local_part(args.default_from),
        "loop_limit": args.loop_limit, "loop_window_minutes": args.loop_window,
        "loop_allowlist": tuple(a.strip().lower() for a in args.allow) if args.allow is not None else None,
        "bounce_text": args.bounce_text, "inbound": args.inbound,
        "dmarc_rua": args.dmarc_rua.strip().lower() if args.dmarc_rua is not None else None,
        "dkim_selector": args.dkim_selector.strip() if args.dkim_selector is not None else None,
        "deliver_to": args.deliver_to.strip() if args.deliver_to is not None else None,
    }
    given = {k: v for k, v in given.items() if v is not None}
    c = get_container(args)
    check_target(c, given.get("deliver_to", ""))
    current = c.config.get_domain(name)
    d = replace(current, **given) if current else AliasDomain(name=name, **given)
    c.config.put_domain(d)
    text = (f"alias domain {d.name} {'updated' if current else 'added'}: catchall {d.catchall_address}, "
            f"bounces to {d.bounce_address}, default sender {d.default_from_address}, DKIM selector {d.dkim_selector}, "
            f"delivered to {d.deliver_to or 'eventbridge'}")
    if not args.ses:
        emit(args, asdict(d), text)
        return EXIT_OK
    steps = _ses(args, c, d)
    from .setup import render

    emit(args, dict(asdict(d), ses=[s.to_dict() for s in steps]), text + "\n" + render(steps).rsplit("\n", 2)[0]
         + f"\nnext: publish what `mailgate dns records {d.name}` prints, then `mailgate setup` says what SES found")
    return EXIT_OK


def _ses(args, c, d: AliasDomain):
    from ..admin import ses_setup
    from .common import get_admin

    if args.mail_from is not None:
        domain_name(args.mail_from)
    admin = get_admin(args, c)
    dkim = args.dkim or ("byo" if ses_setup.gateway_key(c, d) else "easy")
    return ses_setup.add_domain(admin.ses, c, d, dkim=dkim, configuration_set=admin.outputs.get("ConfigurationSetName", ""),
                                feedback_topic=admin.outputs.get("FeedbackTopicArn", ""), mail_from=args.mail_from)


def cmd_list(args) -> int:
    rows = [asdict(d) for d in get_container(args).config.list_domains()]
    emit(args, rows, table(rows, ["name", "catchall", "bounce", "default_from"]))
    return EXIT_OK


def cmd_show(args) -> int:
    c = get_container(args)
    d = c.config.get_domain(domain_name(args.name))
    if d is None:
        return fail(f"no alias domain {args.name!r}: add it with `mailgate domain add {args.name}`")
    aliases = [asdict(a) for a in c.config.list_aliases(d.name)]
    data = dict(asdict(d), aliases=aliases)
    text = "\n".join([f"{k}: {v}" for k, v in asdict(d).items()] + ["", "aliases:",
                     table(aliases, ["name", "model", "contact_policy", "force_thread_id"])])
    emit(args, data, text)
    return EXIT_OK


def cmd_remove(args) -> int:
    c = get_container(args)
    name = domain_name(args.name)
    if c.config.get_domain(name) is None:
        return fail(f"no alias domain {args.name!r}")
    c.config.delete_domain(name)
    print(f"removed alias domain {name}")
    return EXIT_OK
