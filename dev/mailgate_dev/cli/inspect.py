"""`mailgate inspect FILE.eml [--json]`: what the gateway reads in a raw message (no side effects).

Needs no stack: it parses the file and prints the message id, sender, recipients, its kind
(message / bounce / auto-reply / our own mail), the loop signals, the reply text and the
attachments.
"""

from __future__ import annotations

import pathlib

from . import common


def register(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="show what the gateway reads in a raw message file (no side effects)")
    p.add_argument("file", metavar="FILE.eml", help="a raw RFC 5322 message")
    common.add_json_flag(p)
    p.set_defaults(func=run)


def read_message_file(path: str) -> bytes:
    file = pathlib.Path(path)
    if not file.is_file():
        raise common.UsageError(f"{path}: no such file (give the path of a raw .eml message)")
    return file.read_bytes()


def inspect_bytes(raw: bytes) -> dict:
    from mailgate import loops
    from mailgate.inbound_model import message_key
    from mailgate.message import parse

    from mailgate.bounces import classify_parsed

    parsed = parse(raw)
    sig = loops.signals(parsed)
    # The kind (normal, bounce, auto-reply, complaint, delivery-report) and, for all but normal
    # mail, what the bounce classifier read: {"kind": ..., "bounce": {"recipients": [...]}}.
    report = classify_parsed(parsed).inspect_dict()
    if report["kind"] == "normal" and sig.auto_reply:
        report = {"kind": "auto-reply"}  # RFC 3834 headers the classifier leaves to the loop signals
    return {
        **parsed.summary(), **report, "signals": sig.to_dict(),
        "reply_text": parsed.reply_text, "text_chars": len(parsed.text), "html_chars": len(parsed.html),
        "message_key": message_key(raw),
    }


def run(args) -> int:
    data = inspect_bytes(read_message_file(args.file))
    lines = [
        f"Message-ID:  {data['message_id'] or '(none: deduplicated by its origin fields and body)'}",
        f"Key:         {data['message_key']}",
        f"From:        {data['from_name'] + ' ' if data['from_name'] else ''}<{data['from']}>",
        f"Return-Path: {'<>' if data['return_path'] == '' else data['return_path'] or '(none)'}",
        f"Subject:     {data['subject']}",
        f"Recipients:  {', '.join(data['recipients'][:10]) or '(none)'}"
        + (f" (+{len(data['recipients']) - 10} more)" if len(data['recipients']) > 10 else ""),
        f"References:  {len(data['references'])} (In-Reply-To {data['in_reply_to'] or 'none'})",
        f"Kind:        {data['kind']}",
    ]
    for r in (data.get("bounce") or {}).get("recipients", []):
        lines.append(f"  failed recipient: {r['address']} ({'permanent' if r['permanent'] else 'temporary'}"
                     f", {r.get('status') or 'no status'}): {(r.get('diagnostic') or '')[:120]}")
    for group, found in data["signals"].items():
        for s in found:
            lines.append(f"  signal ({group}): {s}")
    lines.append(f"Body:        {data['content_type']}, text {data['text_chars']} chars, html {data['html_chars']} chars")
    for a in data["attachments"]:
        lines.append(f"  attachment: {a['filename']} ({a['content_type']}, {a['size']} bytes"
                     + (", inline" if a["inline"] else "") + ")")
    for d in data["defects"]:
        lines.append(f"  defect: {d}")
    lines.append("Reply text:")
    lines += ["  " + line for line in (data["reply_text"] or "(empty)").splitlines()[:40]]
    common.emit(args, data, "\n".join(lines))
    return common.EXIT_OK
