"""`mailgate send`: put a send request on the outbound queue, or send it at once with --now."""

from __future__ import annotations

import mimetypes
import pathlib

from . import common

EPILOG = """examples:
  mailgate send --from 'Shop <shop@example.test>' --to bob@example.org --subject Hi --text 'Hello Bob'
  mailgate send --from shop@example.test --to bob@example.org --subject Invoice --text-file body.txt \\
      --attach invoice.pdf --record sale.order:42 --now
The request schema is in docs/outbound.md."""


def register(subparsers) -> None:
    p = subparsers.add_parser("send", help="send a message (queued, or at once with --now)",
                              description="Send a DKIM-signed message through the gateway.", epilog=EPILOG,
                              formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="sender", required=True, metavar="ADDR", help="author, e.g. 'Name <a@b>'")
    p.add_argument("--to", action="append", default=[], metavar="ADDR", help="recipient (repeatable)")
    p.add_argument("--cc", action="append", default=[], metavar="ADDR", help="copy recipient (repeatable)")
    p.add_argument("--bcc", action="append", default=[], metavar="ADDR", help="blind copy (repeatable)")
    p.add_argument("--subject", required=True)
    body = p.add_argument_group("body (at least one)")
    body.add_argument("--text", help="plain text body")
    body.add_argument("--text-file", type=pathlib.Path, metavar="FILE", help="plain text body from a file")
    body.add_argument("--html", help="HTML body")
    body.add_argument("--html-file", type=pathlib.Path, metavar="FILE", help="HTML body from a file")
    p.add_argument("--attach", action="append", default=[], type=pathlib.Path, metavar="FILE",
                   help="attach a file (uploaded to the bucket first; repeatable)")
    thread = p.add_mutually_exclusive_group()
    thread.add_argument("--thread", metavar="ID", help="an existing thread id")
    thread.add_argument("--record", metavar="MODEL:ID", help="the record whose thread to use (created on first use)")
    p.add_argument("--header", action="append", default=[], metavar="NAME=VALUE", help="extra header (repeatable)")
    p.add_argument("--notification", action="store_true", help="mark as automatic (Auto-Submitted: auto-generated)")
    p.add_argument("--idempotency-key", metavar="KEY", help="the same key never sends twice (default: a new one)")
    p.add_argument("--now", action="store_true", help="send from here instead of queueing")
    common.add_json_flag(p)
    p.set_defaults(func=cmd_send)


def _read(path: pathlib.Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise common.UsageError(f"cannot read {path}: {e}") from None


def build_request(args) -> dict:
    from mailgate.domain import new_id

    req: dict = {
        "idempotency_key": args.idempotency_key or f"cli-{new_id()}",
        "from": args.sender, "to": args.to, "cc": args.cc, "bcc": args.bcc, "subject": args.subject,
    }
    text = args.text if args.text is not None else _read(args.text_file)
    html = args.html if args.html is not None else _read(args.html_file)
    if text is not None:
        req["text"] = text
    if html is not None:
        req["html"] = html
    if args.thread:
        req["thread_id"] = args.thread
    if args.record:
        model, sep, record_id = args.record.rpartition(":")
        if not sep or not model or not record_id:
            raise common.UsageError(f"--record takes MODEL:ID (e.g. sale.order:42), not {args.record!r}")
        req["record"] = {"model": model, "id": record_id}
    headers = {}
    for h in args.header:
        name, sep, value = h.partition("=")
        if not sep:
            raise common.UsageError(f"--header takes NAME=VALUE, not {h!r}")
        headers[name.strip()] = value
    if headers:
        req["headers"] = headers
    if args.notification:
        req["notification"] = True
    return req


def cmd_send(args) -> int:
    from mailgate import compose
    from mailgate.services.outbound import upload_prefix

    try:
        req = build_request(args)
        for path in args.attach:
            if not path.is_file():
                raise common.UsageError(f"--attach {path}: no such file")
        req["attachments"] = [{"key": f"pending/{p.name}", "filename": p.name} for p in args.attach]
        compose.parse_request(req)  # refuse a bad request here, before anything is uploaded or queued
    except compose.InvalidRequest as e:
        print(f"mailgate: {e}", file=__import__("sys").stderr)
        return common.EXIT_USAGE
    except common.UsageError as e:
        print(f"mailgate: {e}", file=__import__("sys").stderr)
        return common.EXIT_USAGE
    c = common.get_container(args)
    for item, path in zip(req["attachments"], args.attach):
        item["key"] = f"{upload_prefix(req['idempotency_key'])}{path.name}"
        item["content_type"] = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        c.raw_store.put(item["key"], path.read_bytes(), content_type=item["content_type"])
    if not req["attachments"]:
        del req["attachments"]
    if args.now:
        from mailgate.services import outbound

        result = outbound.send(c, req)
        lines = [f"{result['status']}: {result.get('reason') or result.get('message_id', '')}".rstrip(": ")]
        lines += [f"  {r['address']}: {r['status']} {r.get('detail') or ''}".rstrip() for r in result["recipients"]]
        common.emit(args, result, "\n".join(lines))
        return common.EXIT_OK if result["status"] in ("sent", "duplicate") else common.EXIT_FAILED
    from mailgate.services.outbound import claim_ref

    ref = claim_ref(c, req["idempotency_key"])  # drawn now, so that it can be printed; the worker reads it
    c.outbound_queue.send(req, dedup_id=req["idempotency_key"])
    common.emit(args, {"queued": True, "idempotency_key": req["idempotency_key"], "ref": ref},
                f"queued {req['idempotency_key']} (ref {ref}); the result is published as a 'Send Result' event")
    return common.EXIT_OK
