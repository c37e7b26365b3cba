"""`mailgate route FILE.eml [--to ADDR ...] [--json]`: a dry run of the routing against the
configured stack: the route and why. Reads configuration, threads and counters; writes nothing.
"""

from __future__ import annotations

from . import common
from .inspect import read_message_file


def register(subparsers) -> None:
    p = subparsers.add_parser("route", help="dry-run the routing of a raw message against the stack (no writes)")
    p.add_argument("file", metavar="FILE.eml", help="a raw RFC 5322 message")
    p.add_argument("--to", action="append", default=[], metavar="ADDR",
                   help="an envelope recipient (as SES receipt.recipients); repeatable. "
                        "Default: only the recipients in the headers")
    p.add_argument("--verdict", action="append", default=[], metavar="NAME=STATUS",
                   help="an SES verdict, e.g. dmarc=FAIL or virus=FAIL; repeatable")
    common.add_json_flag(p)
    p.set_defaults(func=run)


def _verdicts(items: list[str]) -> dict:
    out = {}
    for item in items:
        name, sep, status = item.partition("=")
        if not sep or name.lower() not in ("spam", "virus", "spf", "dkim", "dmarc", "dmarc_policy"):
            raise common.UsageError(f"--verdict {item!r}: use NAME=STATUS with NAME one of spam, virus, spf, dkim, "
                                    "dmarc, dmarc_policy")
        out[name.lower()] = status
    return out


def run(args) -> int:
    from mailgate.message import parse
    from mailgate.services.inbound import message_key, route_message

    raw = read_message_file(args.file)
    verdicts = _verdicts(args.verdict)
    c = common.get_container(args)
    parsed = parse(raw)
    route = route_message(c, parsed, args.to, verdicts=verdicts or None)
    key = message_key(raw)
    existing = c.messages.get(key)
    data = {**route.to_dict(), "message_key": key,
            "already_seen": bool(existing), "previous_outcome": existing.outcome if existing else ""}
    lines = [f"Route:   {route.kind}", f"Why:     {route.reason}"]
    if route.thread_id:
        lines.append(f"Thread:  {route.thread_id}")
    if route.alias:
        lines.append(f"Alias:   {route.alias.address} -> {route.alias.model}")
    if route.answer:
        lines.append(f"Answer:  a polite reply to {route.answer_to} (at most one a day)")
    for note in route.notes:
        lines.append(f"Note:    {note}")
    if existing:
        lines.append(f"Seen:    already ingested as {existing.key} ({existing.outcome}); "
                     "a new delivery would change nothing (use `mailgate replay`)")
    common.emit(args, data, "\n".join(lines))
    return common.EXIT_OK
