"""Pure parsing of a raw message into what routing needs (no network, no AWS).

`parse(raw)` never raises on bad input: malformed MIME, unknown charsets, broken base64 or
quoted-printable, CR/LF injected into header values and missing headers all give a
`ParsedMessage` whose `defects` say what was wrong. The MIME tree and its decoding are
`mailgate.mime`'s; this module reads the routing fields from the headers (addresses, ids,
threading) and, on first use, the bodies and attachments. Attachment bytes are decoded only when
asked (`Attachment.data()`), to keep a 30 MB message's peak memory low.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property

from .addresses import MAX_ADDRESSES, address_list, clean_addr_spec, message_ids
from .headers import MAX_HEADER_CHARS, Fields, HeaderBlock, clean_header, decode_header_value, \
    read_header_block
from .htmltext import html_to_text
from .mime import MAX_DEPTH, Part, Source, content_type_of, email_message, parse_params, walk
from .replytext import reply_input_cut, reply_text as _reply_text

#: RFC 5322 header names whose addresses are recipients that survive a redirection
#: (Delivered-To / X-Original-To are added by the redirecting MTA; Resent-To by RFC 5322 §3.6.6).
RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "to", "cc", "resent-to")
#: References considered when looking up the thread (Odoo looks at the whole list; we keep the newest 32)
MAX_REFERENCES = 32
#: The address headers of one message are read up to this many characters in all (the first
#: ones first: From, Sender, Return-Path, Reply-To, To, Cc, ...); a To: of thousands of
#: recipients is real, a megabyte of them is an attack.
MAX_ADDRESS_TEXT = 256 * 1024


class _AddressReader:
    """The address headers of one message, read within one budget of characters."""

    def __init__(self, p: ParsedMessage):
        self.p, self.left = p, MAX_ADDRESS_TEXT

    def values(self, name: str, first_only: bool = False) -> list[str]:
        """The header's values, unfolded, as far as the budget goes (cut after a comma)."""
        out = []
        for value in self.p.headers.get(name, ())[:1 if first_only else None]:
            if len(value) > self.left:
                value = value[:max(value.rfind(",", 0, self.left), 0)]
                defect = f"address headers read up to {MAX_ADDRESS_TEXT} characters: {name} was cut"
                if defect not in self.p.defects:
                    self.p.defects.append(defect)
            self.left -= len(value)
            out.append(clean_header(value, MAX_ADDRESS_TEXT))
        return out

    def read(self, name: str, first_only: bool = False) -> list[tuple[str, str, bool]]:
        return _addresses(self.values(name, first_only))


def _addresses(values: list[str]) -> list[tuple[str, str, bool]]:
    """(display name, lower-cased address, written in angle brackets) of each mailbox; entries
    without a local part and a domain are dropped.

    Address headers are parsed encoded: RFC 2047 §5 encoded words are decoded in display names
    only, after the address is parsed, so an encoded "<x@evil>" or CR/LF cannot change the address."""
    pairs: list[tuple[str, str, bool]] = []
    for value in values:
        for name, addr, angle in address_list(value, MAX_ADDRESSES - len(pairs)):
            addr = clean_addr_spec(addr)
            if addr and " " not in addr:  # a quoted local part with a space is no alias of ours
                pairs.append((decode_header_value(name) if name else "", addr, angle))
        if len(pairs) >= MAX_ADDRESSES:
            break
    return pairs


def _dedup(items, limit: int = MAX_ADDRESSES) -> list[str]:
    """The first `limit` distinct items, in order."""
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item, None)
        if len(seen) >= limit:
            break
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
    reading its header block.
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
    _src: Source | None = field(default=None, repr=False, compare=False)
    _header: HeaderBlock | None = field(default=None, repr=False, compare=False)
    _span: tuple[int, int, int] = field(default=(0, 0, 0), repr=False, compare=False)  # body start, end, depth
    _parts: list[Part] | None = field(default=None, repr=False, compare=False)
    _body: tuple[str, str, list[Attachment]] | None = field(default=None, repr=False, compare=False)

    def header(self, name: str) -> str:
        """The first value of a header, decoded (RFC 2047) and on one line; "" when absent."""
        values = self.headers.get(name.lower())
        return decode_header_value(values[0]) if values else ""

    @cached_property
    def email_message(self) -> Message | None:
        """The standard library's message object built from our scan (bounded like `parts`),
        for libraries that read one (flufl.bounce)."""
        if self._src is None or self._header is None:
            return None
        start, end, depth = self._span
        return email_message(self._src, self._header, start, end, depth)

    def parts(self) -> list[Part]:
        """The leaf MIME parts in document order (bounded: see `mime.walk`); read once."""
        if self._parts is None:
            self._parts = []
            if self._src is not None and self._header is not None:
                start, end, depth = self._span
                try:
                    self._parts, _ = walk(self._src, self._header, start, end, depth)
                except Exception as exc:  # noqa: BLE001 - the last line of defence: headers stay read
                    self.defects.append(f"body: {type(exc).__name__}: {exc}")
        return self._parts

    def attached(self, part: Part) -> ParsedMessage | None:
        """The message a message/* part carries, parsed like this one (no raw size or digest: it
        was never raw bytes on its own); None for any other part, or beyond MAX_DEPTH levels of
        nesting (recorded in the defects)."""
        carried = part.carried()
        if carried is None:
            return None
        if part.depth + 1 > MAX_DEPTH:
            self._src.defect(f"MIME parts nested more than {MAX_DEPTH} deep: the deeper ones were not read")
            return None
        src, start, end = carried
        return _read(src.buf, start, end, 0, "", part.depth + 1, src.decoded)

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
    return _read(raw, 0, len(raw), len(raw), hashlib.sha256(raw).hexdigest(), 0)


def _read(buf: bytes, start: int, end: int, raw_size: int, digest: str, depth: int,
          decoded: bool = False) -> ParsedMessage:
    """The message in buf[start:end]: its header block now, its parts on first use."""
    parsed = ParsedMessage(raw_size=raw_size, digest=digest)
    try:
        header = read_header_block(buf, start, end)
    except Exception as exc:  # noqa: BLE001 - the last line of defence
        parsed.defects.append(f"unparseable message: {type(exc).__name__}: {exc}")
        return parsed
    parsed.defects += header.defects
    parsed.headers, parsed._header = header.fields, header
    parsed._src, parsed._span = Source(buf, parsed.defects, decoded), (header.body_start, end, depth)
    try:
        _read_headers(parsed)
    except Exception as exc:  # noqa: BLE001
        parsed.defects.append(f"headers: {type(exc).__name__}: {exc}")
    return parsed


# --- headers ----------------------------------------------------------------------------------


def _first(p: ParsedMessage, name: str, limit: int = MAX_HEADER_CHARS) -> str:
    values = p.headers.get(name)
    return clean_header(values[0], limit) if values else ""


def _read_headers(p: ParsedMessage) -> None:
    mid = _first(p, "message-id")
    ids = message_ids(mid)
    p.message_id = ids[0] if ids else mid.strip("<>")[:500].replace(" ", "")
    p.subject = p.header("subject")
    p.date = _first(p, "date")
    reader = _AddressReader(p)
    _read_senders(p, reader)
    _read_recipients(p, reader)
    _read_threading(p)
    p.content_type = content_type_of(p.headers)
    if p.content_type == "multipart/report":  # RFC 6522 §3
        p.report_type = parse_params(_first(p, "content-type"))[1].get("report-type", "").strip().lower()


def _read_senders(p: ParsedMessage, reader: _AddressReader) -> None:
    froms = reader.read("from", first_only=True) or reader.read("sender", first_only=True)
    if len(froms) > 1:
        # several mailboxes, or a hostile display name that parses as a group: the angle-addr wins
        froms = [f for f in froms if f[2]][:1] or froms
    if froms:
        p.sender_name, p.sender = froms[0][:2]
    if "return-path" in p.headers:
        found = reader.read("return-path", first_only=True)
        p.return_path = found[0][1] if found else ""  # RFC 5321 §4.5.5: <> is the null sender
    if "reply-to" in p.headers:
        p.reply_to = [a for _, a, _ in reader.read("reply-to")]


def _read_recipients(p: ParsedMessage, reader: _AddressReader) -> None:
    p.to = [a for _, a, _ in reader.read("to")]
    p.cc = [a for _, a, _ in reader.read("cc")]
    recipients: list[str] = []
    for name in RECIPIENT_HEADERS:
        if name == "to":
            recipients += p.to
        elif name == "cc":
            recipients += p.cc
        elif name in p.headers:
            recipients += [a for _, a, _ in reader.read(name)]
    p.header_recipients = _dedup(recipients)


def _read_threading(p: ParsedMessage) -> None:
    irt = message_ids(_first(p, "in-reply-to"))
    p.in_reply_to = irt[0] if irt else ""
    if "references" in p.headers or p.in_reply_to:
        refs = message_ids(" ".join(p.headers.get("references", ())))
        if p.in_reply_to:
            refs = [r for r in refs if r != p.in_reply_to] + [p.in_reply_to]
        p.references = _dedup(reversed(refs), MAX_REFERENCES)[::-1]


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


def without_attachments(raw: bytes) -> tuple[bytes, list[str]]:
    """The raw message with each attached file replaced by a one-line text/plain note (Odoo's
    fetchmail "keep attachments" off), and the names of the files removed.

    A file is a part with Content-Disposition "attachment", or with a file name and not "inline"
    (RFC 2183); inline parts a body shows stay. The parts are cut out of the raw bytes by their
    offsets (one scan, no re-encoding), so everything else stays byte for byte; an attached
    message that is itself a file goes whole, its own parts are not looked into."""
    parsed = parse(raw)
    cuts: list[tuple[int, int, str]] = []
    for part in parsed.parts():
        if part.entity_start is None or part.src.buf is not raw:
            continue  # the message itself, or a part inside a decoded attached message
        if part.disposition == "attachment" or (part.filename and part.disposition != "inline"):
            cuts.append((part.entity_start, part.end, part.filename or "unnamed"))
    out, pos, removed = [], 0, []
    for start, end, name in sorted(cuts):
        if start < pos:
            continue
        eol = b"\r\n" if b"\r\n" in raw[start:start + 200] else b"\n"
        note = f"[attachment {name!r} removed by mailgate]".encode("utf-8", "replace")
        out += [raw[pos:start], b'Content-Type: text/plain; charset="utf-8"', eol,
                b"Content-Transfer-Encoding: 8bit", eol, eol, note]
        pos = end
        removed.append(name)
    return (b"".join(out) + raw[pos:], removed) if removed else (raw, [])


def _default_name(ctype: str, index: int) -> str:
    ext = {"message/rfc822": "eml", "text/plain": "txt", "text/html": "html",
           "message/delivery-status": "txt"}.get(ctype) or ctype.rpartition("/")[2][:10] or "bin"
    return f"part-{index + 1}.{ext}"
