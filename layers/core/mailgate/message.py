"""Pure parsing of a raw message into what routing needs (no network, no AWS).

`parse(raw)` never raises on bad input: malformed MIME, unknown charsets, broken base64 or
quoted-printable, CR/LF injected into header values and missing headers all give a
`ParsedMessage` whose `defects` say what was wrong. The MIME tree and its decoding are
`mailgate.mime`'s; this module reads the routing fields from the headers (addresses, ids,
threading) and, on first use, the bodies and attachments. Attachment bytes are decoded only when
asked (`Attachment.data()`), to keep a 30 MB message's peak memory low.
"""

from __future__ import annotations

import email.utils
import hashlib
import re
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property

from .htmltext import html_to_text
from .mime import (MAX_HEADER_CHARS, Elided, Fields, Part, clean_header, decode_header_value, header_fields,
                   parse_bytes, walk)
from .replytext import reply_input_cut, reply_text as _reply_text

#: RFC 5322 header names whose addresses are recipients that survive a redirection
#: (Delivered-To / X-Original-To are added by the redirecting MTA; Resent-To by RFC 5322 §3.6.6).
RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "to", "cc", "resent-to")
#: References considered when looking up the thread (Odoo looks at the whole list; we keep the newest 32)
MAX_REFERENCES = 32
MAX_ADDRESSES = 10_000
#: RFC 5321 §4.5.3.1: a path is at most 256 octets, local part 64 + domain 255 at most; longer
#: "addresses" are dropped (they also could not be keys in the table: DynamoDB sort keys <= 1 KB)
MAX_ADDRESS_CHARS = 320
#: Address headers are read up to this many characters (a To: of thousands of recipients is real).
MAX_ADDRESS_HEADER_CHARS = 1_000_000

_MSGID_RE = re.compile(r"<([^<>\s]{1,500})>")
_ANGLE_ADDR = re.compile(r"<([^<>\s]+@[^<>\s]+)>")
_SIMPLE_ADDR = re.compile(r'\s*(?:([A-Za-z0-9 ._-]*?)\s*<([A-Za-z0-9._%+=-]+@[A-Za-z0-9.-]+)>|([A-Za-z0-9._%+=-]+@[A-Za-z0-9.-]+))\s*')


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs; entries without an '@' are dropped.

    Address headers are parsed encoded: RFC 2047 §5 encoded words are decoded in display names
    only, after the address is parsed, so an encoded "<x@evil>" or CR/LF cannot change the address."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        m = _SIMPLE_ADDR.fullmatch(value)
        if m:  # the common case, "Name <a@b>" or "a@b": no need for the full RFC 5322 parser
            addr = (m.group(2) or m.group(3)).lower()
            if len(addr) <= MAX_ADDRESS_CHARS:
                pairs.append(((m.group(1) or "").strip(), addr))
            continue
        try:
            found = email.utils.getaddresses([value])
        except Exception:  # noqa: BLE001 - the address parser has had crashing inputs
            found = [("", a) for a in re.findall(r"[^\s<>,;\"]+@[^\s<>,;\"]+", value)]
        for name, addr in found:
            addr = addr.strip().strip("<>").lower()
            if "@" in addr and " " not in addr and len(addr) <= MAX_ADDRESS_CHARS:
                pairs.append((decode_header_value(name) if name else "", addr))
                if len(pairs) >= MAX_ADDRESSES:
                    return pairs
    return pairs


def message_ids(value: str) -> list[str]:
    """Message-IDs (RFC 5322 §3.6.4 msg-id) inside a header value, without angle brackets."""
    return _MSGID_RE.findall(value or "")


def _dedup(items) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)


@dataclass
class Attachment:
    """A part that is not the body: a file, an inline image, an attached message."""

    filename: str
    content_type: str
    size: int
    inline: bool = False
    content_id: str = ""
    _part: Part | None = field(default=None, repr=False, compare=False)

    def data(self) -> bytes:
        """The decoded bytes (decoded now, not kept: call once and store them)."""
        return self._part.data() if self._part is not None else b""

    def to_dict(self) -> dict:
        return {"filename": self.filename, "content_type": self.content_type, "size": self.size,
                "inline": self.inline, "content_id": self.content_id}


@dataclass
class ParsedMessage:
    """What the gateway knows about one raw message. Every text field is decoded and single-line.

    Headers are read at parse time (routing needs them); the MIME parts, bodies and attachments
    are read on first use (routing does not), so classifying a message costs little more than
    the stdlib parse.
    """

    raw_size: int
    digest: str
    message_id: str = ""
    subject: str = ""
    date: str = ""
    sender: str = ""           # From: address (lower case)
    sender_name: str = ""
    return_path: str | None = None  # envelope sender from Return-Path; "" is the null sender <>
    reply_to: list[str] = field(default_factory=list)
    header_recipients: list[str] = field(default_factory=list)  # RECIPIENT_HEADERS, in that order
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    in_reply_to: str = ""
    references: list[str] = field(default_factory=list)  # oldest first, In-Reply-To last, <= 32
    content_type: str = "text/plain"
    report_type: str = ""
    defects: list[str] = field(default_factory=list)
    #: every header field as read (lower-case name -> raw values)
    headers: Fields = field(default_factory=Fields, repr=False)
    _msg: Message | None = field(default=None, repr=False, compare=False)
    _elided: Elided | None = field(default=None, repr=False, compare=False)
    _parts: list[Part] | None = field(default=None, repr=False, compare=False)
    _body: tuple[str, str, list[Attachment]] | None = field(default=None, repr=False, compare=False)

    def header(self, name: str) -> str:
        """The first value of a header, decoded (RFC 2047) and on one line; "" when absent."""
        values = self.headers.get(name.lower())
        return decode_header_value(values[0]) if values else ""

    @property
    def email_message(self) -> Message | None:
        """The standard library's message object, for libraries that read one (flufl.bounce)."""
        return self._msg

    def parts(self) -> list[Part]:
        """The leaf MIME parts in document order (bounded: see `mime.walk`); read once."""
        if self._parts is None:
            self._parts = []
            if self._msg is not None:
                try:
                    self._parts, complete = walk(self._msg, self._elided)
                except Exception as exc:  # noqa: BLE001
                    self.defects.append(f"body: {type(exc).__name__}: {exc}")
                else:
                    if not complete:
                        self.defects.append("too many or too deeply nested MIME parts; the rest were not read")
        return self._parts

    def attached(self, part: Part) -> ParsedMessage | None:
        """The message a message/rfc822 part carries, parsed like this one (no raw size or digest:
        it was never raw bytes on its own); None for any other part."""
        inner = part.attached_message()
        return _from_email(inner, 0, "", self._elided) if inner is not None else None

    def _load_body(self) -> tuple[str, str, list[Attachment]]:
        if self._body is None:
            try:
                self._body = _bodies(self.parts())
            except Exception as exc:  # noqa: BLE001
                self.defects.append(f"body: {type(exc).__name__}: {exc}")
                self._body = ("", "", [])
        return self._body

    @property
    def text(self) -> str:
        return self._load_body()[0]

    @property
    def html(self) -> str:
        return self._load_body()[1]

    @property
    def attachments(self) -> list[Attachment]:
        return self._load_body()[2]

    @cached_property
    def reply_text(self) -> str:
        """The new text of a reply: quoted history and signature trimmed (`replytext.reply_text`)."""
        if read := reply_input_cut(self.text, self.html):
            self.defects.append(f"reply text: only the first {read:,} characters of the body were read")
        return _reply_text(self.text, self.html)

    def summary(self) -> dict:
        return {
            "message_id": self.message_id, "subject": self.subject, "date": self.date,
            "from": self.sender, "from_name": self.sender_name, "return_path": self.return_path,
            "to": self.to, "cc": self.cc, "recipients": self.header_recipients[:200],
            "in_reply_to": self.in_reply_to, "references": self.references,
            "content_type": self.content_type, "size": self.raw_size, "digest": self.digest,
            "attachments": [a.to_dict() for a in self.attachments], "defects": self.defects,
        }


def parse(raw: bytes) -> ParsedMessage:
    """Parse raw RFC 5322 bytes. Never raises for bad input (the failure is in `defects`)."""
    if not isinstance(raw, bytes):
        if not isinstance(raw, (bytearray, memoryview)):
            raise TypeError("parse() takes the raw message as bytes")
        raw = bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    try:
        msg, elided = parse_bytes(raw)
    except Exception as exc:  # noqa: BLE001 - the feed parser is lenient; this is a last resort
        return ParsedMessage(raw_size=len(raw), digest=digest,
                             defects=[f"unparseable message: {type(exc).__name__}: {exc}"])
    return _from_email(msg, len(raw), digest, elided)


def _from_email(msg: Message, raw_size: int, digest: str, elided: Elided | None) -> ParsedMessage:
    parsed = ParsedMessage(raw_size=raw_size, digest=digest, _msg=msg, _elided=elided)
    try:
        parsed.headers = header_fields(msg)
        _read_headers(msg, parsed)
    except Exception as exc:  # noqa: BLE001
        parsed.defects.append(f"headers: {type(exc).__name__}: {exc}")
    for defect in getattr(msg, "defects", [])[:20]:
        parsed.defects.append(type(defect).__name__)
    return parsed


# --- headers ----------------------------------------------------------------------------------


def _first(p: ParsedMessage, name: str, limit: int = MAX_HEADER_CHARS) -> str:
    values = p.headers.get(name)
    return clean_header(values[0], limit) if values else ""


def _all_of(p: ParsedMessage, name: str) -> list[str]:
    return [clean_header(v, MAX_ADDRESS_HEADER_CHARS) for v in p.headers.get(name, ())]


def _read_headers(msg: Message, p: ParsedMessage) -> None:
    mid = _first(p, "message-id")
    ids = message_ids(mid)
    p.message_id = ids[0] if ids else mid.strip("<>")[:500].replace(" ", "")
    p.subject = p.header("subject")
    p.date = _first(p, "date")
    _read_senders(p)
    _read_recipients(p)
    _read_threading(p)
    # RFC 2045 §5.2: no (or an invalid) Content-Type means text/plain
    ctype = _first(p, "content-type").partition(";")[0].strip().lower()
    p.content_type = ctype if ctype.count("/") == 1 and " " not in ctype else "text/plain"
    if p.content_type == "multipart/report":
        try:
            p.report_type = str(msg.get_param("report-type") or "").lower()
        except Exception:  # noqa: BLE001
            p.report_type = ""


def _read_senders(p: ParsedMessage) -> None:
    from_value = _first(p, "from", MAX_ADDRESS_HEADER_CHARS)
    froms = _addresses([from_value] if from_value else []) or _addresses(_all_of(p, "sender")[:1])
    if len(froms) > 1:
        # several mailboxes, or a hostile display name that parses as a group: the angle-addr wins
        angle = [a.lower() for a in _ANGLE_ADDR.findall(from_value)]
        froms = [f for f in froms if f[1] in angle][:1] or froms
    if froms:
        p.sender_name, p.sender = froms[0]
    if "return-path" in p.headers:
        found = _addresses([_first(p, "return-path")])
        p.return_path = found[0][1] if found else ""  # RFC 5321 §4.5.5: <> is the null sender
    if "reply-to" in p.headers:
        p.reply_to = [a for _, a in _addresses(_all_of(p, "reply-to"))]


def _read_recipients(p: ParsedMessage) -> None:
    p.to = [a for _, a in _addresses(_all_of(p, "to"))]
    p.cc = [a for _, a in _addresses(_all_of(p, "cc"))]
    recipients: list[str] = []
    for name in RECIPIENT_HEADERS:
        if name == "to":
            recipients += p.to
        elif name == "cc":
            recipients += p.cc
        elif name in p.headers:
            recipients += [a for _, a in _addresses(_all_of(p, name))]
    p.header_recipients = _dedup(recipients)[:MAX_ADDRESSES]


def _read_threading(p: ParsedMessage) -> None:
    irt = message_ids(_first(p, "in-reply-to"))
    p.in_reply_to = irt[0] if irt else ""
    if "references" in p.headers or p.in_reply_to:
        refs = message_ids(" ".join(p.headers.get("references", ())))
        if p.in_reply_to:
            refs = [r for r in refs if r != p.in_reply_to] + [p.in_reply_to]
        p.references = _dedup(reversed(refs))[:MAX_REFERENCES][::-1]


# --- bodies and attachments -------------------------------------------------------------------


def _bodies(parts: list[Part]) -> tuple[str, str, list[Attachment]]:
    """(text, html, attachments): the first text/plain and text/html leaves that are not
    attachments are the bodies; every other leaf (and attached messages) is an attachment."""
    text, html, attachments = "", "", []
    for part in parts:
        ctype = part.content_type
        is_body_text = ctype in ("text/plain", "text/html") and part.disposition != "attachment" \
            and not part.filename
        if is_body_text and ctype == "text/plain" and not text:
            text = part.text
            continue
        if is_body_text and ctype == "text/html" and not html:
            html = part.text
            continue
        content_id = part.content_id
        inline = part.disposition == "inline" or (bool(content_id) and part.disposition != "attachment")
        attachments.append(Attachment(
            filename=part.filename or _default_name(ctype, len(attachments)), content_type=ctype,
            size=part.size(), inline=inline, content_id=content_id, _part=part))
    return text, html, attachments


def _default_name(ctype: str, index: int) -> str:
    ext = {"message/rfc822": "eml", "text/plain": "txt", "text/html": "html",
           "message/delivery-status": "txt"}.get(ctype) or ctype.rpartition("/")[2][:10] or "bin"
    return f"part-{index + 1}.{ext}"
