"""`mailgate token show|rotate`: the keys of reply and VERP tokens (never their values)."""

from __future__ import annotations

import time

from . import common


def register(subparsers) -> None:
    p = subparsers.add_parser("token", help="keys of reply and bounce (VERP) tokens")
    sub = p.add_subparsers(dest="token_command", metavar="ACTION")
    s = sub.add_parser("show", help="the key ids in use and when the previous one stops verifying")
    common.add_json_flag(s)
    s.set_defaults(func=cmd_show)
    r = sub.add_parser(
        "rotate", help="make a new signing key; the current one verifies for a grace period",
        description="Make a new key for reply and bounce tokens. The current key keeps verifying the "
                    "reply and bounce addresses already sent for --grace-days; the key before it (if any) "
                    "is dropped at once: at most two keys are valid together. Running functions use the new "
                    "key within 5 minutes (their secret cache).")
    r.add_argument("--grace-days", type=float, default=None,
                   help="days the current key still verifies (default 90; 0 after a leak: addresses already "
                        "sent then thread through In-Reply-To/References only)")
    common.add_json_flag(r)
    r.set_defaults(func=cmd_rotate)
    p.set_defaults(func=lambda args: (p.print_help(), common.EXIT_USAGE)[1])


def _describe(keys) -> dict:
    previous = None
    if keys.previous is not None:
        until = keys.previous.until or 0
        previous = {"kid": keys.previous.kid or "legacy", "until": until,
                    "until_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(until)),
                    "expired": until < time.time()}
    return {"current": keys.current.kid or "legacy", "previous": previous}


def _text(info: dict) -> str:
    lines = [f"current key: {info['current']} (signs new reply and bounce addresses)"]
    prev = info["previous"]
    if prev:
        state = "verified until" if not prev["expired"] else "no longer verifies since"
        lines.append(f"previous key: {prev['kid']} ({state} {prev['until_utc']})")
    else:
        lines.append("previous key: none")
    return "\n".join(lines)


def _read(c):
    from mailgate import tokens

    try:
        return tokens.parse_secret(c.secrets.get(c.settings.token_secret_id))
    except ValueError as exc:
        raise common.UsageError(f"the token-key secret {c.settings.token_secret_id} is not usable: {exc}") from None


def cmd_show(args) -> int:
    info = _describe(_read(common.get_container(args)))
    common.emit(args, info, _text(info))
    return common.EXIT_OK


def cmd_rotate(args) -> int:
    from mailgate import tokens

    grace = tokens.DEFAULT_GRACE_DAYS if args.grace_days is None else args.grace_days
    if not 0 <= grace <= 3650:
        raise common.UsageError("--grace-days must be between 0 and 3650")
    c = common.get_container(args)
    before = _read(c)
    after = tokens.rotate(before, grace_days=grace)
    c.secrets.put(c.settings.token_secret_id, after.to_secret())
    info = _describe(after)
    dropped = (before.previous.kid or "legacy") if before.previous is not None else None
    info["dropped"] = dropped
    text = _text(info)
    if dropped:
        text += f"\ndropped key: {dropped} (addresses it signed no longer verify)"
    common.emit(args, info, text)
    return common.EXIT_OK
