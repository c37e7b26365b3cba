"""`mailgate target add-odoo|add-webhook|list|test|remove|rotate-secret`: where routed mail is delivered.

The Odoo API key (read from standard input, never from an argument) and the webhook signing
secrets go to Secrets Manager under the stack's target prefix; a webhook's secret is printed once,
when it is made, and never again.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import sys
import time
from urllib.parse import urlsplit

from mailgate.checks import all_ok
from mailgate.domain import EVENTBRIDGE, DeliveryTarget
from mailgate.services import delivery
from .common import EXIT_FAILED, EXIT_OK, UsageError, add_json_flag, emit, fail, get_container, safe, table

#: the name is part of the secret's name (Secrets Manager: letters, digits, /_+=.@-) and of keys
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: how long the previous webhook secret still signs after a rotation (receivers switch meanwhile)
DEFAULT_OVERLAP_HOURS = 24


def register(sub) -> None:
    p = sub.add_parser("target", help="delivery targets: an Odoo database or a signed webhook")
    s = p.add_subparsers(dest="target_command", metavar="ACTION")

    odoo = s.add_parser("add-odoo", help="deliver to an Odoo database (mail.thread.message_process)")
    odoo.add_argument("name", help="a name for this target, e.g. crm")
    odoo.add_argument("--url", required=True, help="Odoo's address, e.g. https://mycompany.odoo.com")
    odoo.add_argument("--database", required=True, help="the database name")
    odoo.add_argument("--user", required=True, help="the login the API key belongs to (a dedicated bot user)")
    odoo.add_argument("--api-key-stdin", action="store_true", required=True,
                      help="read the API key (Preferences > Account Security > New API Key) from standard input")
    odoo.add_argument("--api", choices=["xmlrpc", "json2"], default="xmlrpc",
                      help="xmlrpc (Odoo up to 19, carries any bytes) or json2 (Odoo 19 and later)")
    odoo.add_argument("--keep-automatic", action="store_true",
                      help="keep bounces and auto-replies out of Odoo (default: pass them on; Odoo counts bounces)")
    _common(odoo)
    odoo.set_defaults(func=cmd_add_odoo)

    hook = s.add_parser("add-webhook", help="deliver to an HTTPS endpoint, signed per Standard Webhooks")
    hook.add_argument("name")
    hook.add_argument("--url", required=True, help="the endpoint, e.g. https://app.example.com/hooks/mail")
    _common(hook)
    hook.set_defaults(func=cmd_add_webhook)

    ls = s.add_parser("list", help="list delivery targets")
    add_json_flag(ls)
    ls.set_defaults(func=cmd_list)

    test = s.add_parser("test", help="Odoo's Test Connection: reach, authenticate, message_process callable")
    test.add_argument("name")
    add_json_flag(test)
    test.set_defaults(func=cmd_test)

    rot = s.add_parser("rotate-secret", help="a new webhook signing secret; the old one signs too for a while")
    rot.add_argument("name")
    rot.add_argument("--overlap-hours", type=float, default=DEFAULT_OVERLAP_HOURS,
                     help=f"how long the old secret stays valid (default {DEFAULT_OVERLAP_HOURS})")
    add_json_flag(rot)
    rot.set_defaults(func=cmd_rotate)

    rm = s.add_parser("remove", help="remove a target and its secret")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)


def _common(p) -> None:
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    p.add_argument("--no-verify-tls", dest="verify_tls", action="store_false",
                   help="accept any certificate (not recommended)")
    p.add_argument("--allow-http", action="store_true", help="allow a plain http:// URL (the key or body in clear)")
    add_json_flag(p)


def check_target(c, name: str | None) -> None:
    """A --deliver-to value names an existing target (or the event bus)."""
    if name and name != EVENTBRIDGE and c.config.get_target(name) is None:
        raise UsageError(f"no delivery target {name!r}: add it with `mailgate target add-odoo` or "
                         "`mailgate target add-webhook` (or use 'eventbridge')")


def _checked(args) -> tuple[str, str]:
    if not _NAME.match(args.name) or args.name == EVENTBRIDGE:
        raise UsageError(f"{args.name!r} is not a usable target name: use up to 64 letters, digits, '.', '_' or '-'")
    u = urlsplit(args.url)
    if u.scheme not in ("https", "http") or not u.hostname:
        raise UsageError(f"--url {args.url!r}: give an http(s) URL, e.g. https://mycompany.odoo.com")
    if u.scheme == "http" and not args.allow_http:
        raise UsageError("--url is plain http: the API key or the messages would cross the network in clear; "
                         "use https, or add --allow-http to mean it")
    if args.timeout <= 0:
        raise UsageError("--timeout must be positive")
    return args.name, args.url.rstrip("/")


def cmd_add_odoo(args) -> int:
    name, url = _checked(args)
    key = sys.stdin.readline().strip()
    if not key:
        raise UsageError("the API key on standard input is empty")
    c = get_container(args)
    target = DeliveryTarget(name=name, kind="odoo", url=url, secret_id=c.settings.target_secret_prefix + name,
                            database=args.database, user=args.user, api=args.api,
                            pass_automatic=not args.keep_automatic, timeout_seconds=args.timeout,
                            verify_tls=args.verify_tls)
    c.secrets.put(target.secret_id, key)
    c.config.put_target(target)
    emit(args, delivery.describe(target), f"target {name}: Odoo {url} database {args.database} as {args.user} "
         f"over {args.api}; check it with `mailgate target test {name}`")
    return EXIT_OK


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: whsec_ and 24 random bytes in base64 (192 bits)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def cmd_add_webhook(args) -> int:
    name, url = _checked(args)
    c = get_container(args)
    target = DeliveryTarget(name=name, kind="webhook", url=url, secret_id=c.settings.target_secret_prefix + name,
                            timeout_seconds=args.timeout, verify_tls=args.verify_tls)
    secret = new_webhook_secret()
    c.secrets.put(target.secret_id, json.dumps({"secrets": [{"secret": secret, "until": None}]}))
    c.config.put_target(target)
    emit(args, dict(delivery.describe(target), signing_secret=secret),
         f"target {name}: webhook {url}\nsigning secret (shown once, keep it in your receiver): {secret}")
    return EXIT_OK


def cmd_rotate(args) -> int:
    c = get_container(args)
    target = c.config.get_target(args.name)
    if target is None or target.kind != "webhook":
        return fail(f"no webhook target {args.name!r}")
    current = json.loads(c.secrets.get(target.secret_id))["secrets"]
    until = time.time() + args.overlap_hours * 3600
    kept = [dict(e, until=min(e.get("until") or until, until)) for e in current if not e.get("until") or
            e["until"] > time.time()][:1]
    secret = new_webhook_secret()
    c.secrets.put(target.secret_id, json.dumps({"secrets": [{"secret": secret, "until": None}] + kept}))
    emit(args, {"target": target.name, "signing_secret": secret, "previous_valid_until": until},
         f"new signing secret for {target.name} (shown once): {secret}\nthe previous one signs too until "
         f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(until))}")
    return EXIT_OK


def cmd_list(args) -> int:
    rows = [delivery.describe(t) for t in get_container(args).config.list_targets()]
    emit(args, rows, table(rows, ["name", "kind", "url", "database", "user", "api"]))
    return EXIT_OK


def cmd_test(args) -> int:
    c = get_container(args)
    target = c.config.get_target(args.name)
    if target is None:
        return fail(f"no delivery target {args.name!r} (see `mailgate target list`)")
    steps = delivery.test_target(c, target)
    emit(args, {"target": target.name, "ok": all_ok(steps), "steps": [s.to_dict() for s in steps]},
         "\n".join(f"{'ok  ' if s.ok else 'FAIL'} {s.name}: {s.detail}" for s in steps))
    return EXIT_OK if all_ok(steps) else EXIT_FAILED


def cmd_remove(args) -> int:
    c = get_container(args)
    target = c.config.get_target(args.name)
    if target is None:
        return fail(f"no delivery target {args.name!r}")
    users = [d.name for d in c.config.list_domains() if d.deliver_to == target.name]
    users += [a.address for a in c.config.list_aliases() if a.deliver_to == target.name]
    if users:
        return fail(f"{target.name} is the target of {', '.join(users)}: change their --deliver-to first")
    c.config.delete_target(target.name)
    c.secrets.delete(target.secret_id)
    print(safe(f"removed target {target.name} and its secret"))
    return EXIT_OK
