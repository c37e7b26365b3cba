"""`mailgate suppression list|add|remove|import|show`: the addresses the outbound path will not mail.

Entries are per sending (alias) domain. `show` also prints the address's bounce score.
"""

from __future__ import annotations

import sys
import time

from . import common


def register(subparsers) -> None:
    p = subparsers.add_parser("suppression", help="addresses not mailed after bounces and complaints")
    sub = p.add_subparsers(dest="suppression_command", required=True)

    ls = sub.add_parser("list", help="list suppressed addresses")
    ls.add_argument("--domain", help="only this sending domain")
    common.add_json_flag(ls)
    ls.set_defaults(func=cmd_list)

    add = sub.add_parser("add", help="stop mailing ADDRESS from DOMAIN")
    add.add_argument("domain")
    add.add_argument("address")
    add.add_argument("--reason", default="added by hand")
    common.add_json_flag(add)
    add.set_defaults(func=cmd_add)

    rm = sub.add_parser("remove", help="mail ADDRESS from DOMAIN again (and forget its bounce score)")
    rm.add_argument("domain")
    rm.add_argument("address")
    common.add_json_flag(rm)
    rm.set_defaults(func=cmd_remove)

    imp = sub.add_parser("import", help="stop mailing every address of FILE from DOMAIN (a list kept elsewhere)")
    imp.add_argument("domain")
    imp.add_argument("file", help="one address per line, or CSV with the address in the first column ('-': stdin)")
    imp.add_argument("--reason", default="imported")
    common.add_json_flag(imp)
    imp.set_defaults(func=cmd_import)

    show = sub.add_parser("show", help="suppression entry and bounce score of ADDRESS for DOMAIN")
    show.add_argument("domain")
    show.add_argument("address")
    common.add_json_flag(show)
    show.set_defaults(func=cmd_show)


def _valid(address: str) -> bool:
    local, at, domain = address.strip().rpartition("@")
    return bool(at and local and "." in domain and " " not in address.strip())


def cmd_list(args) -> int:
    from mailgate import suppression

    c = common.get_container(args)
    rows = suppression.list_suppressed(c.kv, args.domain)
    for r in rows:
        r["since_utc"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(r.get("since") or 0)))
    common.emit(args, rows, common.table(rows, ["domain", "address", "source", "since_utc", "reason"]))
    return common.EXIT_OK


def cmd_add(args) -> int:
    from mailgate import suppression

    if not _valid(args.address):
        print(f"mailgate: {args.address!r} is not an e-mail address (expected name@domain)", file=sys.stderr)
        return common.EXIT_USAGE
    c = common.get_container(args)
    suppression.suppress(c.kv, args.domain, args.address, args.reason, source="manual")
    entry = suppression.is_suppressed(c.kv, args.domain, args.address)
    common.emit(args, entry, f"suppressed {args.address.lower()} for mail from {args.domain.lower()}")
    return common.EXIT_OK


def cmd_remove(args) -> int:
    from mailgate import bounce_policy, suppression

    c = common.get_container(args)
    existed = suppression.unsuppress(c.kv, args.domain, args.address)
    # A fresh start: the old score would otherwise re-suppress on the next soft bounce.
    c.kv.delete_item(bounce_policy._score_key(args.address, args.domain))
    c.kv.delete_item(f"{bounce_policy.SOFT_PREFIX}{args.address.strip().lower()}#{args.domain.strip().lower()}")
    if not existed:
        return common.fail(f"{args.address.lower()} is not suppressed for {args.domain.lower()} "
                           f"(see `mailgate suppression list --domain {args.domain.lower()}`)")
    common.emit(args, {"address": args.address.lower(), "domain": args.domain.lower(), "removed": True},
                f"{args.address.lower()} will be mailed again from {args.domain.lower()}")
    return common.EXIT_OK


#: addresses written at once by an import (each is one conditional-free write)
IMPORT_CONCURRENCY = 8


def _addresses(path: str) -> tuple[list[str], list[str]]:
    """(addresses, lines refused) of an import file; blank lines, comments (#) and a CSV header skipped."""
    import csv

    handle = sys.stdin if path == "-" else open(path, newline="", encoding="utf-8-sig")
    good, bad = [], []
    with handle:
        for row in csv.reader(handle):
            cell = (row[0] if row else "").strip()
            if not cell or cell.startswith("#") or cell.lower() in ("address", "email", "e-mail"):
                continue
            (good if _valid(cell) else bad).append(cell)
    return list(dict.fromkeys(a.lower() for a in good)), bad


def cmd_import(args) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from mailgate import suppression

    from .progress import Progress

    try:
        addresses, refused = _addresses(args.file)
    except OSError as exc:
        return common.fail(f"cannot read {args.file}: {exc.strerror}")
    c = common.get_container(args)
    with Progress(f"suppressing for {args.domain.lower()}", len(addresses), args=args) as progress:
        def one(address: str) -> None:
            suppression.suppress(c.kv, args.domain, address, args.reason, source="import")
            progress.advance()

        with ThreadPoolExecutor(max_workers=IMPORT_CONCURRENCY) as pool:
            list(pool.map(one, addresses))
    data = {"domain": args.domain.lower(), "suppressed": len(addresses), "refused": refused}
    text = f"{len(addresses)} address(es) suppressed for mail from {args.domain.lower()}"
    if refused:
        text += f"; {len(refused)} line(s) are not addresses: " + ", ".join(repr(r) for r in refused[:5])
    common.emit(args, data, text)
    return common.EXIT_FAILED if refused else common.EXIT_OK


def cmd_show(args) -> int:
    from mailgate import bounce_policy, suppression

    c = common.get_container(args)
    entry = suppression.is_suppressed(c.kv, args.domain, args.address)
    data = {"address": args.address.lower(), "domain": args.domain.lower(), "suppressed": entry is not None,
            "entry": entry, "score": bounce_policy.score(c.kv, args.domain, args.address),
            "threshold": bounce_policy.DEFAULT_POLICY.threshold}
    text = (f"{data['address']} from {data['domain']}: "
            + (f"SUPPRESSED ({entry.get('reason')}, source {entry.get('source')})" if entry else "not suppressed")
            + f"; bounce score {data['score']}/{data['threshold']}")
    common.emit(args, data, text)
    return common.EXIT_OK
