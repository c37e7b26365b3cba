"""`mailgate server add-imap|add-pop|add-smtp|list|remove|test|enable|disable`: external mail servers.

Passwords come from a prompt, standard input (--password-stdin) or an environment variable
(--password-env NAME); they go to Secrets Manager and are never printed or logged.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from dataclasses import asdict, replace

from mailgate.domain import IncomingServer, OutgoingServer, server_secret_id
from mailgate.validate import host_name
from .common import EXIT_FAILED, EXIT_OK, UsageError, add_json_flag, emit, fail, get_container, table

DEFAULT_PORTS = {("imap", "ssl"): 993, ("imap", "starttls"): 143, ("imap", "none"): 143,
                 ("pop", "ssl"): 995, ("pop", "starttls"): 110, ("pop", "none"): 110,
                 ("smtp", "ssl"): 465, ("smtp", "starttls"): 587, ("smtp", "none"): 587}


def _common(p, protocol: str) -> None:
    p.add_argument("name", help="a name for this server, e.g. office-inbox")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, help="default: by protocol and encryption (993/143, 995/110, 465/587)")
    p.add_argument("--encryption", choices=["ssl", "starttls", "none"],
                   default="ssl" if protocol != "smtp" else "starttls")
    p.add_argument("--allow-plaintext", action="store_true",
                   help="required with --encryption none: the password would cross the network in clear")
    p.add_argument("--no-verify-tls", dest="verify_tls", action="store_false",
                   help="accept any certificate (not recommended)")
    p.add_argument("--user", default="")
    pw = p.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    pw.add_argument("--password-env", metavar="VAR", help="read the password from this environment variable")
    pw.add_argument("--no-password", action="store_true", help="the server needs no password")
    add_json_flag(p)


def register(sub) -> None:
    p = sub.add_parser("server", help="incoming (IMAP/POP) and outgoing (SMTP) servers")
    s = p.add_subparsers(dest="server_command", metavar="ACTION")

    for proto in ("imap", "pop"):
        a = s.add_parser(f"add-{proto}", help=f"add an incoming {proto.upper()} mailbox to fetch")
        _common(a, proto)
        a.add_argument("--folder", default="INBOX")
        a.add_argument("--interval", type=int, default=5, help="minutes between fetches (default 5)")
        a.add_argument("--ack", choices=["leave", "seen", "move", "delete"], default="seen",
                       help="what to do with a message once it is stored (default: seen)")
        a.add_argument("--move-to", default="", help="folder for --ack move")
        a.add_argument("--no-attachments", dest="attachments", action="store_false")
        a.add_argument("--no-keep-original", dest="keep_original", action="store_false")
        a.add_argument("--fallback-model", default="", help="model for mail that matches no alias")
        a.set_defaults(func=cmd_add_incoming, protocol=proto)

    smtp = s.add_parser("add-smtp", help="add an outgoing SMTP server")
    _common(smtp, "smtp")
    smtp.add_argument("--from-filter", default="", help="an address or domain this server may send for")
    smtp.add_argument("--priority", type=int, default=10, help="lower is tried first (default 10)")
    smtp.set_defaults(func=cmd_add_outgoing, protocol="smtp")

    ls = s.add_parser("list", help="list servers")
    add_json_flag(ls)
    ls.set_defaults(func=cmd_list)

    mg = s.add_parser("migrate-secrets", help="move passwords to the per-kind prefixes the functions may read",
                      description="Move each server's password from <prefix><name> to <prefix><imap|pop|smtp>/<name>: "
                                  "the fetch worker may read mailbox passwords only, the outbound function relay "
                                  "passwords only. Run once after upgrading a stack whose servers were added before.")
    add_json_flag(mg)
    mg.set_defaults(func=cmd_migrate_secrets)
    rm = s.add_parser("remove", help="remove a server and its password")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_remove)

    t = s.add_parser("test", help="test the connection step by step (Odoo's TEST & CONFIRM)")
    t.add_argument("name")
    add_json_flag(t)
    t.set_defaults(func=cmd_test)

    en = s.add_parser("enable", help="fetch an incoming server again (after it was disabled for failing)")
    en.add_argument("name")
    en.set_defaults(func=cmd_enable, enabled=True)
    dis = s.add_parser("disable", help="stop fetching an incoming server (its settings and password are kept)")
    dis.add_argument("name")
    dis.set_defaults(func=cmd_enable, enabled=False)


def _password(args) -> str | None:
    if args.no_password:
        return None
    if args.password_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    elif args.password_env:
        if args.password_env not in os.environ:
            raise UsageError(f"environment variable {args.password_env} is not set")
        value = os.environ[args.password_env]
    elif sys.stdin.isatty():
        value = getpass.getpass(f"password for {args.user or args.name}: ")
    else:
        raise UsageError("give the password with --password-stdin, --password-env VAR or at the prompt "
                         "(or --no-password)")
    if not value:
        raise UsageError("the password is empty")
    return value


#: the name becomes part of the password's secret name (Secrets Manager takes letters, digits and
#: /_+=.@- only) and of S3 keys and table keys: a plain subset, which needs no escaping anywhere
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def _check_security(args) -> tuple[str, int]:
    if not _NAME.match(args.name):
        raise UsageError(f"{args.name!r} is not a usable server name: use up to 64 letters, digits, '.', '_' "
                         "or '-' (e.g. office-inbox)")
    host = host_name(args.host)
    if args.encryption == "none" and not args.allow_plaintext:
        raise UsageError("--encryption none sends the password in clear: add --allow-plaintext to mean it")
    port = args.port or DEFAULT_PORTS[(args.protocol, args.encryption)]
    if not 0 < port < 65536:
        raise UsageError(f"port {port} is out of range")
    return host, port


def _check_name_free(c, name: str, direction: str) -> None:
    """One name space for both kinds (one table item, one password secret per name): adding an IMAP
    server under an SMTP server's name would replace that server and overwrite its password."""
    other = c.config.get_outgoing(name) if direction == "in" else c.config.get_incoming(name)
    if other is not None:
        kind = "an outgoing (SMTP)" if direction == "in" else "an incoming (IMAP/POP)"
        raise UsageError(f"{name} is already {kind} server: choose another name, or remove it first with "
                         f"`mailgate server remove {name}`")


def _store_password(c, kind: str, name: str, password: str | None) -> str:
    if password is None:
        return ""
    secret_id = server_secret_id(c.settings.server_secret_prefix, kind, name)
    c.secrets.put(secret_id, password)
    return secret_id


def cmd_migrate_secrets(args) -> int:
    """Move passwords stored under the shared prefix (<prefix><name>, before mailbox and relay
    passwords were kept apart) to <prefix><imap|pop|smtp>/<name>: the functions may read only
    those (template.yaml). Idempotent."""
    from mailgate.errors import NotFound

    c = get_container(args)
    prefix = c.settings.server_secret_prefix
    servers = [(s, s.protocol) for s in c.config.list_incoming()] + [(s, "smtp") for s in c.config.list_outgoing()]
    moved = []
    for server, kind in servers:
        wanted = server_secret_id(prefix, kind, server.name)
        old = server.secret_id or f"{prefix}{server.name}"
        if old == wanted or not old.startswith(prefix):
            continue
        try:
            value = c.secrets.get(old)
        except NotFound:
            continue  # no password (added with --no-password)
        c.secrets.put(wanted, value)
        (c.config.put_incoming if kind != "smtp" else c.config.put_outgoing)(replace(server, secret_id=wanted))
        c.secrets.delete(old)
        moved.append({"server": server.name, "from": old, "to": wanted})
    text = "\n".join(f"{m['server']}: {m['from']} -> {m['to']}" for m in moved) or "nothing to move"
    emit(args, moved, text)
    return EXIT_OK


def cmd_add_incoming(args) -> int:
    host, port = _check_security(args)
    if args.ack == "move" and not args.move_to:
        raise UsageError("--ack move needs --move-to FOLDER")
    password = _password(args)
    c = get_container(args)
    _check_name_free(c, args.name, "in")
    server = IncomingServer(
        name=args.name, protocol=args.protocol, host=host, port=port, user=args.user,
        security=args.encryption, secret_id=_store_password(c, args.protocol, args.name, password), folder=args.folder,
        interval_minutes=max(1, args.interval), ack=args.ack, move_to=args.move_to,
        keep_original=args.keep_original, attachments=args.attachments, fallback_model=args.fallback_model,
        allow_plaintext=args.allow_plaintext, verify_tls=args.verify_tls,
    )
    c.config.put_incoming(server)
    emit(args, asdict(server), f"incoming server {server.name}: {server.protocol} {host}:{port} "
                               f"({server.security}), every {server.interval_minutes} min")
    return EXIT_OK


def cmd_add_outgoing(args) -> int:
    host, port = _check_security(args)
    password = _password(args)
    c = get_container(args)
    _check_name_free(c, args.name, "out")
    server = OutgoingServer(
        name=args.name, host=host, port=port, user=args.user, security=args.encryption,
        secret_id=_store_password(c, "smtp", args.name, password), from_filter=args.from_filter.strip().lower(),
        priority=args.priority, allow_plaintext=args.allow_plaintext, verify_tls=args.verify_tls,
    )
    c.config.put_outgoing(server)
    emit(args, asdict(server), f"outgoing server {server.name}: smtp {host}:{port} ({server.security})"
                               + (f", from filter {server.from_filter}" if server.from_filter else ""))
    return EXIT_OK


def cmd_list(args) -> int:
    c = get_container(args)
    rows = [dict(asdict(s), direction="in", filter="") for s in c.config.list_incoming()]
    rows += [dict(asdict(s), direction="out", protocol="smtp", filter=s.from_filter) for s in c.config.list_outgoing()]
    for r in rows:
        r.pop("secret_id", None)
    emit(args, rows, table(rows, ["name", "direction", "protocol", "host", "port", "security", "user", "filter"]))
    return EXIT_OK


def cmd_remove(args) -> int:
    c = get_container(args)
    server = c.config.get_incoming(args.name) or c.config.get_outgoing(args.name)
    if server is None:
        return fail(f"no server {args.name!r} (see `mailgate server list`)")
    c.config.delete_server(args.name)
    if server.secret_id:
        c.secrets.delete(server.secret_id)
    if isinstance(server, IncomingServer):
        from mailgate.services import fetch

        fetch.forget(c, args.name)
    print(f"removed server {args.name}")
    return EXIT_OK


def cmd_test(args) -> int:
    c = get_container(args)
    incoming = c.config.get_incoming(args.name)
    outgoing = None if incoming else c.config.get_outgoing(args.name)
    if incoming is None and outgoing is None:
        return fail(f"no server {args.name!r} (see `mailgate server list`)")
    if incoming is not None:
        from mailgate.services.fetch import test_connection
        steps = test_connection(c, incoming)
    else:
        from mailgate.services.outbound import test_connection
        steps = test_connection(c, outgoing)
    ok = bool(steps) and all(s.ok for s in steps)
    text = "\n".join(f"{'ok  ' if s.ok else 'FAIL'}  {s.name}: {s.detail}" for s in steps)
    text += f"\n{args.name}: {'connection works' if ok else 'connection FAILED'}"
    emit(args, {"server": args.name, "ok": ok, "steps": [s.to_dict() for s in steps]}, text)
    return EXIT_OK if ok else EXIT_FAILED


def cmd_enable(args) -> int:
    from mailgate.services import fetch

    c = get_container(args)
    server = c.config.get_incoming(args.name)
    if server is None:
        if c.config.get_outgoing(args.name) is not None:
            return fail(f"{args.name} is an outgoing server: only incoming servers are enabled or disabled "
                        "(remove an outgoing one with `mailgate server remove`)")
        return fail(f"no incoming server {args.name!r} (see `mailgate server list`)")
    c.config.put_incoming(replace(server, enabled=args.enabled))
    if args.enabled:
        # A fresh start: the days it failed before no longer count toward disabling it again.
        fetch.reset_failures(c, server.name)
        print(f"enabled server {server.name}: fetched on the next schedule, or now with "
              f"`mailgate fetch now {server.name}`")
    else:
        print(f"disabled server {server.name}: not fetched until `mailgate server enable {server.name}`")
    return EXIT_OK
