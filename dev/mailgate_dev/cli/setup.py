"""`mailgate setup`: what CloudFormation cannot do for SES, and what is still missing.

Activates the stack's receipt rule set (when no other is active, or with
--replace-active-rule-set), sends the configuration set's bounces and complaints to the feedback
topic, and checks the account (sandbox, sending paused), the gateway domain's and every alias
domain's identity (verified, DKIM, MAIL FROM), each with its fix. Exit status 0 when nothing is
left to fix, 1 otherwise.
"""

from __future__ import annotations

from . import common


def register(subparsers) -> None:
    p = subparsers.add_parser("setup", help="activate SES receiving and check what SES still needs, with the fixes")
    p.add_argument("--replace-active-rule-set", action="store_true",
                   help="activate the stack's receipt rule set even though another one is active "
                        "(one per account and region: the other stops receiving)")
    common.add_json_flag(p)
    p.set_defaults(func=cmd_setup)


def render(steps) -> str:
    marks = {"ok": "ok  ", "done": "DONE", "fix": "FIX "}
    lines = []
    for s in steps:
        lines.append(f"[{marks.get(s.status, s.status)}] {s.item}: {s.found}")
        if s.fix:
            lines.append(f"       fix: {s.fix}")
    todo = sum(1 for s in steps if s.status == "fix")
    lines += ["", "nothing left to fix" if not todo else f"{todo} thing(s) left to fix"]
    return "\n".join(lines)


def cmd_setup(args) -> int:
    from ..admin import ses_setup

    c = common.get_container(args)
    admin = common.get_admin(args, c)
    steps = ses_setup.check(admin.ses, c, admin.outputs, replace_rule_set=args.replace_active_rule_set,
                            parameters=None if admin.local else admin.parameters)
    common.emit(args, [s.to_dict() for s in steps], render(steps))
    return common.EXIT_FAILED if any(s.status == "fix" for s in steps) else common.EXIT_OK
