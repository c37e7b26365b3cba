"""`mailgate status [--json] [--watch [SECONDS]]`: the gateway now, on one screen.

Queues and dead-letter queues, the last 24 hours of outcomes, each mailbox's last fetch, lag and
health, suppressions, each domain's last DNS check, the alarms in ALARM (CloudWatch; none on the
local stack). Exit status 1 when something needs a person (listed first), else 0.
"""

from __future__ import annotations

import json
import sys
import time

from . import common


def register(subparsers) -> None:
    p = subparsers.add_parser("status", help="queues, messages, mailboxes, suppressions, DNS and alarms on one screen")
    p.add_argument("--watch", nargs="?", type=float, const=5.0, metavar="SECONDS",
                   help="redraw every SECONDS (default 5) until interrupted; with --json, one JSON document per line")
    common.add_json_flag(p)
    p.set_defaults(func=cmd_status)


def cmd_status(args) -> int:
    from ..admin import status

    if args.watch is not None and args.watch < 1:
        raise common.UsageError("--watch takes at least 1 second")
    c = common.get_container(args)
    admin = common.get_admin(args, c)
    stack = f"stack {args.stack}" if getattr(args, "stack", None) else "local stack"
    while True:
        state = status.gather(c, admin, stack=stack)
        _show(args, state, status.render)
        if args.watch is None:
            return common.EXIT_FAILED if state["attention"] else common.EXIT_OK
        time.sleep(args.watch)


def _show(args, state, render) -> None:
    if args.json:
        text = json.dumps(state, sort_keys=True, default=str)
        print(text if args.watch is not None else json.dumps(state, indent=2, sort_keys=True, default=str))
    else:
        if args.watch is not None and sys.stdout.isatty():
            print("\033[H\033[2J", end="")  # clear the screen, cursor home (ANSI)
        print(render(state))
        if args.watch is not None:
            print(f"\n(every {args.watch:g} s; Ctrl-C to stop)")
    sys.stdout.flush()
