"""`mailgate alias add|list|remove`: aliases (Odoo's mail.alias)."""

from __future__ import annotations

import json
from dataclasses import asdict

from mailgate.domain import Alias
from mailgate.validate import address_parts
from .common import EXIT_OK, UsageError, add_json_flag, emit, fail, get_container, table
from .target import check_target


def register(sub) -> None:
    p = sub.add_parser("alias", help="aliases: mail to name@domain opens a record or joins a thread")
    s = p.add_subparsers(dest="alias_command", metavar="ACTION")

    add = s.add_parser("add", help="add or update an alias")
    add.add_argument("address", help="the alias address, e.g. sales@example.com")
    add.add_argument("--model", required=True, help="the record model to create, e.g. crm.lead")
    add.add_argument("--defaults", default="{}", help="JSON object of default values for new records")
    add.add_argument("--thread", dest="force_thread_id", help="join this thread instead of creating records")
    add.add_argument("--contact-policy", choices=["everyone", "partners", "followers"], default="everyone",
                     help="who may write to it (default: everyone)")
    add.add_argument("--bounce-text", default="", help="text of the reply to senders the policy refuses")
    add.add_argument("--deliver-to", default="", metavar="TARGET",
                     help="a delivery target for this alias's mail (overrides the domain's; 'eventbridge': events only)")
    add_json_flag(add)
    add.set_defaults(func=cmd_add)

    ls = s.add_parser("list", help="list aliases")
    ls.add_argument("domain", nargs="?", help="only this alias domain")
    add_json_flag(ls)
    ls.set_defaults(func=cmd_list)

    rm = s.add_parser("remove", help="remove an alias")
    rm.add_argument("address")
    rm.set_defaults(func=cmd_remove)


def cmd_add(args) -> int:
    name, domain = address_parts(args.address)
    try:
        defaults = json.loads(args.defaults)
    except ValueError as exc:
        raise UsageError(f"--defaults is not JSON: {exc}") from None
    if not isinstance(defaults, dict):
        raise UsageError("--defaults must be a JSON object, e.g. '{\"team\": \"eu\"}'")
    c = get_container(args)
    if c.config.get_domain(domain) is None:
        return fail(f"no alias domain {domain!r}: add it first with `mailgate domain add {domain}`")
    check_target(c, args.deliver_to)
    alias = Alias(domain=domain, name=name, model=args.model, defaults=defaults,
                  force_thread_id=args.force_thread_id, contact_policy=args.contact_policy,
                  bounce_text=args.bounce_text, deliver_to=args.deliver_to)
    c.config.put_alias(alias)
    emit(args, asdict(alias), f"alias {alias.address} -> new {alias.model} records"
         + (f" (thread {alias.force_thread_id})" if alias.force_thread_id else "")
         + f", contact policy {alias.contact_policy}")
    return EXIT_OK


def cmd_list(args) -> int:
    rows = [dict(asdict(a), address=a.address) for a in get_container(args).config.list_aliases(args.domain)]
    emit(args, rows, table(rows, ["address", "model", "contact_policy", "force_thread_id"]))
    return EXIT_OK


def cmd_remove(args) -> int:
    name, domain = address_parts(args.address)
    if not get_container(args).config.delete_alias(domain, name):
        return fail(f"no alias {args.address!r}")
    print(f"removed alias {name}@{domain}")
    return EXIT_OK
