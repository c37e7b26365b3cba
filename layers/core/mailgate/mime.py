"""MIME structure and text of raw messages (RFC 2045, RFC 2046, RFC 2047, RFC 2231), read by our
own scanner over the raw bytes.

A message is one `bytes` object and every part is a pair of offsets into it: boundaries are found
with `bytes.find`, header blocks are read by `headers.read_header_block`, and a part's body is
decoded (transfer encoding, then charset) only when asked. What routing needs is the headers, the
text and HTML bodies and the attachments' names and sizes; an attachment's bytes are decoded only
when it is stored. Every step is linear in the bytes it reads, nothing is copied beyond a
constant factor of the message, and none of it raises on bad input: unknown charsets, broken
base64 or quoted-printable, unclosed multiparts and undecodable 8-bit headers all give text.
Where a bound cuts (MAX_PARTS, MAX_DEPTH and the header bounds), the message's defects say so.

The standard library's parser is not used on received mail: it tests every line against every
enclosing boundary (time O(lines x depth)), recurses per nesting level (a thousand nested parts
raise RecursionError and lose every header) and holds each part as lines, then as one string,
then decoded. `email_message` builds its object tree from our scan, for the libraries that read one.
"""

from __future__ import annotations

import binascii
from email.message import Message
from functools import cached_property

# addresses and headers are part of this layer; the names its readers import from here:
from .addresses import MAX_ADDRESS_VALUE_CHARS, addr_spec, addr_specs  # noqa: F401
from .headers import (Fields, HeaderBlock, _b64, clean_header, decode_bytes, decode_header_value,  # noqa: F401
                      field_lines, fix_jis, parse_fields, parse_header_block, parse_params, read_header_block,
                      scan_fields)

#: The walk reads at most this many parts and this deep (nested multiparts and attached
#: messages together); what is beyond is not read, and the message's defects say so.
MAX_PARTS = 1000
MAX_DEPTH = 30
#: Fields read from the header block of one MIME part (a part needs a handful).
MAX_PART_FIELDS = 50
#: Bytes of one part's body that `email_message` puts in its object (the detectors that read it
#: look at notification texts, not at attachments).
MAX_EMAIL_PAYLOAD = 1 << 20


class Source:
    """The bytes a message was read from, shared by all its parts, and its list of defects.
    `decoded` is set when the bytes are not the raw message but an attached message decoded
    from it: what that carries is not decoded again, so nesting cannot multiply the copies."""

    __slots__ = ("buf", "defects", "decoded")

    def __init__(self, buf: bytes, defects: list[str], decoded: bool = False):
        self.buf, self.defects, self.decoded = buf, defects, decoded

    def defect(self, text: str) -> None:
        if text not in self.defects and len(self.defects) < 100:
            self.defects.append(text)


def content_type_of(fields: Fields, default: str = "text/plain") -> str:
    """RFC 2045 §5.2: no Content-Type means the default (text/plain; message/rfc822 inside a
    multipart/digest, RFC 2046 §5.1.5); an invalid one means text/plain."""
    value = fields.first("content-type")
    if not value:
        return default
    # the type ends at ";" or, where a sender forgot the ";" before a parameter, at white space
    words = value.partition(";")[0].split(None, 1)
    ctype = words[0].lower() if words else ""
    return ctype if ctype.count("/") == 1 else "text/plain"


# --- multipart bodies (RFC 2046 §5.1) -------------------------------------------------------------

def split_multipart(buf: bytes, start: int, end: int, boundary: bytes,
                    max_parts: int = MAX_PARTS) -> tuple[list[tuple[int, int]], str]:
    """The body ranges of a multipart body in buf[start:end], and "closed", "open" (no close
    delimiter: the last part runs to the end) or "none" (the boundary never occurs).

    RFC 2046 §5.1.1: a delimiter is a line of "--" boundary, "--" after it on the close
    delimiter, then only white space; the line break before it belongs to it. Each delimiter is
    found with one `bytes.find` from where the last one ended, so the body is read once. After
    `max_parts` parts (or twice as many lines that only look like delimiters) the rest is not
    read ("cut")."""
    delim = b"--" + boundary
    ranges: list[tuple[int, int]] = []
    part_start, state, pos, tries = -1, "none", start, 0
    at = start if buf.startswith(delim, start, end) else -1
    while len(ranges) < max_parts and tries < 2 * max_parts:
        tries += 1
        if at < 0:
            nl = buf.find(b"\n" + delim, pos, end)
            if nl < 0:
                break
            at = nl + 1
        line_end = buf.find(b"\n", at, end)
        line_end = end if line_end < 0 else line_end
        tail = buf[at + len(delim):line_end].rstrip(b" \t\r")
        if tail in (b"", b"--"):
            if part_start >= 0:
                body_end = at - 1 if at > start else at
                if body_end > part_start and buf[body_end - 1] == 13:  # CR of a CRLF
                    body_end -= 1
                if body_end > part_start:  # two delimiter lines in a row delimit nothing
                    ranges.append((part_start, body_end))
            if tail == b"--":
                return ranges, "closed"
            part_start, state = min(line_end + 1, end), "open"
        pos, at = line_end, -1
    else:
        return ranges, "cut" if state != "none" else "none"
    if part_start >= 0:
        ranges.append((part_start, end))
    return ranges, state


def _children(src: Source, params: dict[str, str], start: int, end: int) -> list[tuple[int, int]] | None:
    """The body ranges of a multipart's parts; None when it has none to read (it is then a leaf
    whose body is text, as broken MIME usually is)."""
    boundary = params.get("boundary", "").rstrip()
    if not boundary:
        src.defect("multipart without a boundary parameter (RFC 2046 §5.1.1): read as text")
        return None
    ranges, state = split_multipart(src.buf, start, end, boundary.encode("utf-8", "surrogateescape"))
    if state == "none":
        src.defect("multipart whose boundary never occurs: read as text")
        return None
    if state == "open":
        src.defect("multipart without its close delimiter (RFC 2046 §5.1.1): the last part runs to the end")
    elif state == "cut":
        src.defect(f"more than {MAX_PARTS} MIME parts: the rest were not read (too many parts)")
    return ranges


# --- transfer encodings (RFC 2045 §6) -------------------------------------------------------------

def decode_transfer(data, cte: str) -> bytes:
    """A body after its Content-Transfer-Encoding (RFC 2045 §6); `data` may be a memoryview.
    7bit, 8bit, binary and anything unknown (x-uuencode is not a MIME encoding) are read as is."""
    if cte == "base64":
        return _b64(data)
    if cte == "quoted-printable":
        return binascii.a2b_qp(data)
    return bytes(data)


# --- parts --------------------------------------------------------------------------------------

def _params(src: Source, value: str) -> dict[str, str]:
    cut: list[str] = []
    params = parse_params(value, cut)[1]
    for defect in cut:
        src.defect(defect)
    return params


class Part:
    """A leaf of a message's MIME tree: a part that is not a multipart, a multipart whose parts
    cannot be read, or an attached message (message/*, not entered: see `carried`). Its body is
    src.buf[start:end], decoded on demand."""

    def __init__(self, src: Source, header: HeaderBlock, content_type: str, depth: int, start: int, end: int,
                 params: dict[str, str] | None = None, entity_start: int | None = None):
        self.src, self.header, self.content_type, self.depth = src, header, content_type, depth
        self.start, self.end = start, end
        #: where the part's header starts in src.buf (None for the message itself)
        self.entity_start = entity_start
        self.params = params if params is not None else parse_params(header.fields.first("content-type"))[1]

    def __repr__(self) -> str:
        return f"Part({self.content_type!r}, depth={self.depth}, {self.end - self.start} bytes)"

    @property
    def fields(self) -> Fields:
        return self.header.fields

    @cached_property
    def disposition(self) -> str:
        return self._disposition[0]

    @cached_property
    def _disposition(self) -> tuple[str, dict[str, str]]:
        cut: list[str] = []
        disposition = parse_params(self.fields.first("content-disposition"), cut)
        for defect in cut:
            self.src.defect(defect)
        return disposition

    @cached_property
    def filename(self) -> str:
        """The file name (Content-Disposition filename, else Content-Type name; RFC 2231, and
        RFC 2047 words as some clients write them)."""
        name = self._disposition[1].get("filename") or self.params.get("name") or ""
        return decode_header_value(name)[:255] if name else ""

    @property
    def content_id(self) -> str:
        return clean_header(self.fields.first("content-id"), 500).strip("<>")

    def charset(self) -> str | None:
        charset = self.params.get("charset", "").strip().lower()
        return charset or None

    @property
    def transfer_encoding(self) -> str:
        return self.fields.first("content-transfer-encoding").strip().lower()

    @cached_property
    def text(self) -> str:
        """The part as text: transfer encoding undone, charset decoded (never raises)."""
        return fix_jis(decode_bytes(self.data(), self.charset()))

    def data(self) -> bytes:
        """The decoded bytes (decoded now, not kept: call once and store them); an attached
        message is its whole RFC 5322 text."""
        body = memoryview(self.src.buf)[self.start:self.end]
        if self.content_type.startswith("multipart/"):
            return bytes(body)  # RFC 2045 §6.4: a multipart is never encoded
        return decode_transfer(body, self.transfer_encoding)

    def size(self) -> int:
        """The decoded size, estimated without decoding: base64 carries 3 bytes in 4 characters;
        an attached message/rfc822 counts its text; other message/* and multiparts 0."""
        if self.content_type.startswith(("message/", "multipart/")):
            return self.end - self.start if self.content_type == "message/rfc822" else 0
        if self.transfer_encoding != "base64":
            return self.end - self.start
        buf, s, e = self.src.buf, self.start, self.end
        n = (e - s) - sum(buf.count(c, s, e) for c in (b"\n", b"\r", b" ", b"\t"))
        tail = buf[max(s, e - 8):e].rstrip()
        pad = len(tail) - len(tail.rstrip(b"="))
        return max(0, n * 3 // 4 - pad)

    def carried(self) -> tuple[Source, int, int] | None:
        """(source, start, end) of the message a message/* part carries (message/rfc822,
        message/global, the header-only kinds); None for any other part. message/delivery-status
        holds field blocks (RFC 3464), not a message. A carried message should not be encoded
        (RFC 2046 §5.2.1); when it is, it is decoded first, once: inside a decoded one it is read
        as it is."""
        if not self.content_type.startswith("message/") or self.content_type.endswith("delivery-status"):
            return None
        if self.transfer_encoding in ("base64", "quoted-printable") and not self.src.decoded:
            data = self.data()
            return Source(data, self.src.defects, decoded=True), 0, len(data)
        return self.src, self.start, self.end

    def attached_fields(self) -> Fields | None:
        """The header fields of the message this part carries or quotes (message/rfc822,
        text/rfc822-headers, ...); None when the part holds no text at all."""
        carried = self.carried()
        if carried is not None:
            src, start, end = carried
            return read_header_block(src.buf, start, end, max_fields=MAX_PART_FIELDS * 5).fields
        text = self.text
        return parse_header_block(text.lstrip()) if text else None


def walk(src: Source, header: HeaderBlock, start: int, end: int, depth: int = 0, *,
         max_parts: int = MAX_PARTS, max_depth: int = MAX_DEPTH) -> tuple[list[Part], bool]:
    """The leaf parts of the entity whose header is `header` and whose body is src.buf[start:end],
    in document order, and False when the walk stopped early (more than `max_parts` parts): one
    pass, no recursion. Parts nested deeper than `max_depth` are skipped; both bounds are recorded
    in src.defects."""
    leaves: list[Part] = []
    stack: list[tuple[HeaderBlock | None, int, int, int, str]] = [(header, start, end, depth, "text/plain")]
    seen = 0
    while stack:
        block, s, e, d, default = stack.pop()
        seen += 1
        if seen > max_parts:
            src.defect(f"more than {max_parts} MIME parts: the rest were not read (too many parts)")
            return leaves, False
        if d > max_depth:
            src.defect(f"MIME parts nested more than {max_depth} deep: the deeper ones were not read")
            continue
        entity = s if block is None else None
        if block is None:
            block = read_header_block(src.buf, s, e, max_fields=MAX_PART_FIELDS)
            for defect in block.defects:
                src.defect(f"MIME part: {defect}")
            s = block.body_start
        ctype = content_type_of(block.fields, default)
        params = _params(src, block.fields.first("content-type"))
        children = _children(src, params, s, e) if ctype.startswith("multipart/") else None
        if children is None:
            leaves.append(Part(src, block, ctype, d, s, e, params, entity))
            continue
        child_default = "message/rfc822" if ctype == "multipart/digest" else "text/plain"
        stack.extend((None, cs, ce, d + 1, child_default) for cs, ce in reversed(children))
    return leaves, True


# --- the standard library's object, for libraries that read one ---------------------------------

def email_message(src: Source, header: HeaderBlock, start: int, end: int, depth: int = 0,
                  budget: list[int] | None = None) -> Message:
    """A `email.message.Message` tree (compat32, as `email.message_from_bytes` builds it) made
    from our scan: the same bounds as `walk`, bodies cut at MAX_EMAIL_PAYLOAD bytes."""
    budget = [MAX_PARTS] if budget is None else budget
    msg = Message()
    msg._headers = list(header.items)  # (name, value) pairs, as the parser stores them
    budget[0] -= 1
    ctype = content_type_of(header.fields)
    scratch = Source(src.buf, [], src.decoded)  # the walk records the defects, not this copy
    params = parse_params(header.fields.first("content-type"))[1]
    children = _children(scratch, params, start, end) if ctype.startswith("multipart/") else None
    if budget[0] > 0 and depth < MAX_DEPTH and children is not None:
        msg._payload = []
        for cs, ce in children:
            if budget[0] <= 0:
                break
            block = read_header_block(src.buf, cs, ce, max_fields=MAX_PART_FIELDS)
            msg._payload.append(email_message(src, block, block.body_start, ce, depth + 1, budget))
        return msg
    part = Part(scratch, header, ctype, depth, start, end, params)
    if ctype == "message/delivery-status":  # RFC 3464 §2.1: blocks of fields, one object each
        msg._payload = [_fields_message(b) for b in part.text.replace("\r\n", "\n").split("\n\n") if b.strip()]
        return msg
    carried = part.carried() if budget[0] > 0 and depth < MAX_DEPTH else None
    if carried is not None:
        inner_src, inner_start, inner_end = carried
        inner = read_header_block(inner_src.buf, inner_start, inner_end, max_fields=MAX_PART_FIELDS * 5)
        msg._payload = [email_message(inner_src, inner, inner.body_start, inner_end, depth + 1, budget)]
        return msg
    msg._payload = src.buf[start:min(end, start + MAX_EMAIL_PAYLOAD)].decode("ascii", "surrogateescape")
    return msg


def _fields_message(text: str) -> Message:
    msg = Message()
    msg._headers = scan_fields(text.strip("\n") + "\n", max_fields=MAX_PART_FIELDS).items
    msg._payload = ""
    return msg
