"""`mailgate fetch now [NAME]` and `mailgate fetch status`: fetch incoming servers at once, see health."""

from __future__ import annotations

import datetime
import time

from . import common
from .progress import Progress


def register(subparsers) -> None:
    p = subparsers.add_parser("fetch", help="fetch incoming IMAP/POP3 servers now; their health")
    sub = p.add_subparsers(dest="fetch_command", metavar="ACTION")

    now = sub.add_parser("now", help="fetch one incoming server (or every enabled one) at once")
    now.add_argument("name", nargs="?", help="the incoming server (default: every enabled server)")
    now.add_argument("--max-messages", type=int, default=500, help="cap per server (default 500)")
    now.add_argument("--budget", type=float, default=300.0,
                     help="seconds allowed per server before stopping cleanly (default 300)")
    common.add_json_flag(now)
    now.set_defaults(func=cmd_now)

    status = sub.add_parser("status", help="last success, last error and failures per server")
    common.add_json_flag(status)
    status.set_defaults(func=cmd_status)

    skipped = sub.add_parser("skipped", help="messages left on a server for good, and why")
    skipped.add_argument("name", nargs="?", help="the incoming server (default: every server)")
    common.add_json_flag(skipped)
    skipped.set_defaults(func=cmd_skipped)


def cmd_now(args) -> int:
    from mailgate.services import fetch

    c = common.get_container(args)
    if args.name:
        server = c.config.get_incoming(args.name)
        if server is None:
            return common.fail(f"no incoming server named {args.name!r} "
                               "(list them with `mailgate server list`)")
        names = [server.name]
    else:
        names = [s.name for s in c.config.list_incoming() if s.enabled]
        if not names:
            return common.fail("no enabled incoming server; add one with `mailgate server add-imap` or "
                               "`mailgate server add-pop` (or enable one with `mailgate server enable NAME`)")
    results = []
    for name in names:
        with Progress(f"fetching {name}", args=args) as progress:
            res = fetch.fetch_mailbox(c, name, deadline=time.monotonic() + args.budget, max_messages=args.max_messages,
                                      mailbox_factory=_Counted(c.mailboxes, progress, args.max_messages),
                                      ingest=_counted_ingest(progress))
        results.append(res)
    rows = [{"server": r.server, "status": r.status, "fetched": r.fetched, "stored": r.stored,
             "duplicates": r.duplicates, "failed": r.failed, "skipped": r.skipped,
             "more": "yes" if r.more else "", "error": r.error} for r in results]
    common.emit(args, [r.to_dict() for r in results],
                common.table(rows, ["server", "status", "fetched", "stored", "duplicates", "failed",
                                    "skipped", "more", "error"]))
    return common.EXIT_FAILED if any(r.status in ("failed", "not-found") for r in results) else common.EXIT_OK


class _Counted:
    """The container's mailboxes, with the progress line told how many messages the run will
    take: what an IMAP server lists as new, up to the cap (a POP3 server lists every message it
    holds, taken or not: there the line counts without a total)."""

    def __init__(self, inner, progress: Progress, cap: int) -> None:
        self.inner, self.progress, self.cap = inner, progress, cap

    def __call__(self, server, password):
        return _CountedMailbox(self.inner(server, password), self.progress, self.cap)


class _CountedMailbox:
    def __init__(self, inner, progress: Progress, cap: int) -> None:
        self._inner, self._progress, self._cap = inner, progress, cap

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name != "list_since":
            return attr

        def listed(*args, **kwargs):
            items = attr(*args, **kwargs)
            self._progress.set_total(min(len(items), self._cap))
            return items

        return listed


def _counted_ingest(progress: Progress):
    def ingest(c, raw_key, **kw):
        from mailgate.services.inbound import ingest as route

        record = route(c, raw_key, **kw)
        progress.advance()
        return record

    return ingest


def _when(t) -> str:
    if not t:
        return ""
    return datetime.datetime.fromtimestamp(float(t), datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def cmd_status(args) -> int:
    from mailgate.services import fetch

    c = common.get_container(args)
    rows, data = [], []
    for server in c.config.list_incoming():
        h = fetch.health(c, server.name)
        data.append({"server": server.name, "enabled": server.enabled, "failed_messages": 0,
                     "skipped_messages": 0, **h})
        rows.append({"server": server.name, "enabled": "yes" if server.enabled else "NO",
                     "last_success": _when(h.get("last_success")),
                     "failures": h.get("consecutive_failures", 0),
                     "failed_msgs": h.get("failed_messages", 0), "skipped_msgs": h.get("skipped_messages", 0),
                     "last_error": h.get("last_error", "") if h.get("consecutive_failures") else ""})
    common.emit(args, data, common.table(rows, ["server", "enabled", "last_success", "failures",
                                                "failed_msgs", "skipped_msgs", "last_error"]))
    return common.EXIT_OK


def cmd_skipped(args) -> int:
    """What was left on the server for good: the message there (IMAP UID / POP3 UIDL), why, when."""
    from mailgate.services import fetch

    c = common.get_container(args)
    rows = fetch.skipped(c, args.name or "")
    common.emit(args, rows, common.table(
        [{**r, "at": _when(r.get("at"))} for r in rows], ["server", "message", "reason", "size", "at", "detail"]))
    return common.EXIT_OK
