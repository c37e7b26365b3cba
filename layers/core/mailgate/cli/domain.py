"""`mailgate domain add|list|show|remove`: alias domains (Odoo's mail.alias.domain)."""

from __future__ import annotations

import re
from dataclasses import asdict

from ..domain import AliasDomain
from ..validate import domain_name, local_part
from .common import EXIT_OK, UsageError, add_json_flag, emit, fail, get_container, table

#: a DKIM selector is a DNS label here (RFC 6376 3.1 allows dotted ones; one label is what we publish)
_SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def register(sub) -> None:
    p = sub.add_parser("domain", help="alias domains: catchall, bounce alias, default sender")
    s = p.add_subparsers(dest="domain_command", metavar="ACTION")

    add = s.add_parser("add", help="add or update an alias domain")
    add.add_argument("name", help="the domain, e.g. example.com")
    add.add_argument("--catchall", default="catchall", help="catchall alias (default: catchall)")
    add.add_argument("--bounce", default="bounce", help="bounce alias (default: bounce)")
    add.add_argument("--default-from", default="notifications", help="default sender (default: notifications)")
    add.add_argument("--loop-limit", type=int, default=20, help="mails per sender and alias before a loop (20)")
    add.add_argument("--loop-window", type=int, default=120, help="loop window in minutes (120)")
    add.add_argument("--allow", action="append", default=[], metavar="ADDR",
                     help="a sender exempt from loop protection (repeatable)")
    add.add_argument("--bounce-text", default="", help="text of the polite reply to unknown recipients")
    add.add_argument("--inbound", choices=["mx", "redirect"], default="mx",
                     help="mx: the domain's MX points at the gateway; redirect: catchall@ is forwarded to it")
    add.add_argument("--dmarc-rua", default="", help="address for DMARC aggregate reports")
    add.add_argument("--dkim-selector", metavar="SELECTOR",
                     help="the DKIM selector outbound mail is signed with (default: the domain's current one, "
                          "else mailgate); switch to a new one after `mailgate dkim keygen DOMAIN --selector NEW`")
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
    if args.loop_limit < 1 or args.loop_window < 1:
        raise UsageError("--loop-limit and --loop-window must be at least 1 (a limit of 0 would make every "
                         "message a loop; to exempt a sender, use --allow ADDR)")
    name = domain_name(args.name)
    selector = (args.dkim_selector or "").strip()
    if args.dkim_selector is not None and not _SELECTOR.match(selector):
        raise UsageError(f"--dkim-selector {args.dkim_selector!r}: use letters, digits and '-' (e.g. s2026)")
    c = get_container(args)
    if not selector:  # an update keeps the selector the domain signs with
        current = c.config.get_domain(name)
        selector = current.dkim_selector if current else "mailgate"
    d = AliasDomain(
        name=name, catchall=local_part(args.catchall), bounce=local_part(args.bounce),
        default_from=local_part(args.default_from), loop_limit=args.loop_limit,
        loop_window_minutes=args.loop_window, loop_allowlist=tuple(a.lower() for a in args.allow),
        bounce_text=args.bounce_text, inbound=args.inbound, dmarc_rua=args.dmarc_rua.strip().lower(),
        dkim_selector=selector,
    )
    c.config.put_domain(d)
    emit(args, asdict(d), f"alias domain {d.name}: catchall {d.catchall_address}, bounces to "
                          f"{d.bounce_address}, default sender {d.default_from_address}")
    return EXIT_OK


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
