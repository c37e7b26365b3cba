"""`mailgate deliveries list [--failed] | show ID | retry ID`: deliveries to the targets, per attempt."""

from __future__ import annotations

import time

from mailgate.errors import NotFound
from mailgate.services import delivery
from . import common


def register(sub) -> None:
    p = sub.add_parser("deliveries", help="deliveries of routed mail to Odoo and webhook targets")
    s = p.add_subparsers(dest="deliveries_command", metavar="ACTION")
    ls = s.add_parser("list", help="the latest deliveries, newest first")
    ls.add_argument("--failed", action="store_true", help="only those that failed (to retry after a fix)")
    ls.add_argument("--limit", type=int, default=50)
    common.add_json_flag(ls)
    ls.set_defaults(func=cmd_list)
    show = s.add_parser("show", help="one delivery with every attempt and the target's answers")
    show.add_argument("id", metavar="ID", help="<message key>#<target> (see `mailgate deliveries list`)")
    common.add_json_flag(show)
    show.set_defaults(func=cmd_show)
    retry = s.add_parser("retry", help="queue a delivery again (after fixing what made it fail)")
    retry.add_argument("id", metavar="ID")
    common.add_json_flag(retry)
    retry.set_defaults(func=cmd_retry)


def _when(ts) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts or 0))


def _row(d: dict) -> dict:
    return {"id": d.get("id"), "status": d.get("status"), "attempts": len(d.get("attempts", [])),
            "updated": _when(d.get("updated")), "detail": str(d.get("detail", ""))[:70]}


def cmd_list(args) -> int:
    if args.limit < 1:
        raise common.UsageError("--limit must be at least 1")
    rows = delivery.list_deliveries(common.get_container(args), failed=args.failed, limit=args.limit)
    common.emit(args, rows, common.table([_row(r) for r in rows], ["id", "status", "attempts", "updated", "detail"]))
    return common.EXIT_OK


def _describe(d: dict) -> str:
    lines = [f"Delivery:  {d.get('id')}", f"Target:    {d.get('target')}", f"Status:    {d.get('status')}",
             f"Detail:    {d.get('detail', '')}"]
    for a in d.get("attempts", []):
        lines.append(f"Attempt {a.get('attempt')}: {_when(a.get('at'))} {a.get('outcome')} "
                     f"{a.get('status') or ''} {a.get('detail', '')}".rstrip())
    if d.get("status") == "failed":
        lines.append(f"Retry with `mailgate deliveries retry {d.get('id')}` once the cause is fixed.")
    return "\n".join(lines)


def cmd_show(args) -> int:
    d = delivery.get(common.get_container(args), args.id)
    if d is None:
        return common.fail(f"no delivery {args.id!r} (see `mailgate deliveries list`)")
    common.emit(args, d, _describe(d))
    return common.EXIT_OK


def cmd_retry(args) -> int:
    try:
        d = delivery.retry(common.get_container(args), args.id)
    except NotFound as exc:
        return common.fail(str(exc))
    if d.get("status") in delivery.DONE:
        common.emit(args, d, f"{args.id} is {d['status']} already: nothing to retry")
        return common.EXIT_OK
    common.emit(args, d, f"{args.id} queued again")
    return common.EXIT_OK
