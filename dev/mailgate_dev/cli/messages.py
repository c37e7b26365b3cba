"""`mailgate messages list|show` and `mailgate replay ID... | --failed`: the ledger of inbound messages."""

from __future__ import annotations

import dataclasses
import time

from . import common


def register(subparsers) -> None:
    p = subparsers.add_parser("messages", help="list or show recorded messages and their outcomes")
    sub = p.add_subparsers(dest="messages_command", metavar="ACTION")
    lp = sub.add_parser("list", help="the latest messages, newest first")
    lp.add_argument("--limit", type=int, default=50)
    lp.add_argument("--direction", choices=["in", "out"])
    lp.add_argument("--outcome", help="only this outcome (thread, new-record, bounce, loop, ...)")
    common.add_json_flag(lp)
    lp.set_defaults(func=run_list)
    sp = sub.add_parser("show", help="one message's record: outcome, reason, route, attachments")
    sp.add_argument("key", help="the message key (see `mailgate messages list`)")
    common.add_json_flag(sp)
    sp.set_defaults(func=run_show)
    rp = subparsers.add_parser("replay", help="route stored inbound messages again (after a fix)")
    rp.add_argument("key", metavar="ID", nargs="*", help="a message key or the raw message's key (several allowed)")
    rp.add_argument("--failed", action="store_true",
                    help="every inbound message recorded failed in the last --since hours")
    rp.add_argument("--since", type=float, default=24.0, metavar="HOURS", help="with --failed (default 24)")
    common.add_json_flag(rp)
    rp.set_defaults(func=run_replay)


def _row(r) -> dict:
    return {"key": r.key, "when": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.received_at)),
            "dir": r.direction, "outcome": r.outcome, "from": r.sender[:40], "subject": r.subject[:50],
            "reason": r.reason[:60]}


def run_list(args) -> int:
    c = common.get_container(args)
    if args.limit < 1:
        raise common.UsageError("--limit must be at least 1")
    fetch = args.limit if not args.outcome else max(args.limit * 10, 500)
    rows = c.messages.list(limit=fetch, direction=args.direction)
    if args.outcome:
        rows = [r for r in rows if r.outcome == args.outcome][:args.limit]
    common.emit(args, [dataclasses.asdict(r) for r in rows],
                common.table([_row(r) for r in rows], ["key", "when", "dir", "outcome", "from", "subject", "reason"]))
    return common.EXIT_OK


def _describe(r) -> str:
    lines = [f"Key:        {r.key}", f"Raw:        {r.raw_key}", f"Direction:  {r.direction}  Source: {r.source}",
             f"Message-ID: {r.message_id or '(none)'}", f"From:       {r.sender}", f"Subject:    {r.subject}",
             f"Recipients: {', '.join(r.recipients[:10])}", f"Outcome:    {r.outcome}", f"Reason:     {r.reason}"]
    if r.thread_id:
        lines.append(f"Thread:     {r.thread_id}")
    route = r.detail.get("route") or {}
    for note in route.get("notes", []):
        lines.append(f"Note:       {note}")
    for a in r.detail.get("attachments", []):
        lines.append(f"Attachment: {a.get('filename')} ({a.get('content_type')}, {a.get('size')} bytes) -> {a.get('key')}")
    for name, what in (r.detail.get("omitted") or {}).items():
        lines.append(f"Omitted:    {name}: {what}")
    if r.detail.get("answer"):
        lines.append(f"Answer:     {r.detail['answer']}")
    said = r.detail.get("effects_error")
    if said and said.startswith("pending: "):  # services.outbox: the retry or the sweep carries them out
        lines.append(f"Effects:    {said} (carried out by the next retry or the outbox sweep)")
    elif said:
        lines.append(f"Effects:    FAILED {said} (run `mailgate replay {r.key}`)")
    return "\n".join(lines)


def run_show(args) -> int:
    c = common.get_container(args)
    r = c.messages.get(args.key)
    if r is None:
        return common.fail(f"no message with key {args.key!r} (see `mailgate messages list`)")
    common.emit(args, dataclasses.asdict(r), _describe(r))
    return common.EXIT_OK


def run_replay(args) -> int:
    from mailgate.errors import NotFound
    from mailgate.services.inbound import replay

    if bool(args.key) == args.failed:
        raise common.UsageError("name the messages to replay (ID ...) or pass --failed, not both")
    c = common.get_container(args)
    keys = args.key or _failed_keys(c, args.since)
    if len(keys) == 1 and not args.failed:
        try:
            r = replay(c, keys[0])
        except NotFound as exc:
            return common.fail(str(exc))
        common.emit(args, dataclasses.asdict(r), "Replayed.\n" + _describe(r))
        return common.EXIT_OK
    return _replay_many(args, c, keys, replay)


def _failed_keys(c, hours: float) -> list[str]:
    since = time.time() - hours * 3600
    return [r.key for r in c.messages.list(limit=5000, direction="in") if r.outcome == "failed" and r.received_at >= since]


def _replay_many(args, c, keys: list[str], replay) -> int:
    """Each message again, one by one (a message that cannot be found is reported, the rest go on)."""
    from mailgate.errors import MailgateError

    from .progress import Progress

    rows = []
    with Progress("replaying", len(keys), args=args) as progress:
        for key in keys:
            try:
                r = replay(c, key)
                rows.append({"key": r.key, "outcome": r.outcome, "reason": r.reason[:60]})
            except MailgateError as exc:
                rows.append({"key": key, "outcome": "not replayed", "reason": str(exc)[:60]})
            progress.advance()
    common.emit(args, rows, common.table(rows, ["key", "outcome", "reason"]) + f"\n{len(rows)} message(s) replayed"
                if rows else "nothing to replay")
    return common.EXIT_FAILED if any(r["outcome"] == "not replayed" for r in rows) else common.EXIT_OK
