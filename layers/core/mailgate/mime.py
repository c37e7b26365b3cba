"""MIME structure and text of raw messages (RFC 2045-2047, RFC 2231), on the standard library's parser.

The one place that turns raw bytes into `email.message.Message` trees and reads text out of them;
`message` (what routing needs) and `bounces` (what a notification says) both stand on it. None of
it raises on bad input: unknown charsets, broken base64 or quoted-printable and undecodable
8-bit headers all give text.

The parser is the standard library's in its default `compat32` policy: the lenient one (it never raises
while reading a header); headers are decoded here (RFC 2047 encoded words, RFC 2231 parameters)
so that one hostile header cannot stop the whole message. Parts are read on demand: `walk` lists
the leaf parts, and a part's text or bytes are decoded only when asked.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.header
import email.parser
import email.utils
import quopri
import re
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property
from typing import Iterator

#: Header values longer than this are cut (RFC 5322 §2.1.1 caps a line at 998 characters; a
#: folded header may be longer, but nothing we read needs more).
MAX_HEADER_CHARS = 8192
#: Values kept per header name: a header bomb cannot fill memory with one name.
MAX_VALUES_PER_NAME = 1000
#: The walk stops after this many parts or this deep (the rest of the message is not read).
MAX_PARTS = 1000
MAX_DEPTH = 30

_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_WS_RE = re.compile(r"\s+")

# --- charsets and header values -----------------------------------------------------------------


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset; an unknown or wrong charset never raises (UTF-8, then Latin-1)."""
    charset = (charset or "").strip().strip('"').lower() or "us-ascii"
    if charset in ("unknown-8bit", "x-unknown", "8bit", "default"):
        charset = "utf-8"
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):
        charset = ""
    if charset:
        try:
            return data.decode(charset)
        except (UnicodeDecodeError, LookupError, ValueError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def fix_jis(text: str) -> str:
    """ISO-2022-JP (RFC 1468) that reached us undecoded (no or a wrong charset): decode it.

    Its escape sequences are 7-bit, so any charset "decodes" it; ESC $ gives it away."""
    if "\x1b$" not in text:
        return text
    try:
        return text.encode("latin-1").decode("iso-2022-jp")
    except (UnicodeError, LookupError):
        return text


def to_text(value: object) -> str:
    """A header value as text: surrogate-escaped 8-bit bytes are read as UTF-8, else Latin-1."""
    if isinstance(value, email.header.Header):
        try:
            value = str(value)
        except Exception:  # noqa: BLE001 - hostile input
            value = value.encode() if hasattr(value, "encode") else ""
    value = str(value)
    if not value.isascii() and any("\udc80" <= ch <= "\udcff" for ch in value):
        raw = value.encode("ascii", "surrogateescape")
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            value = raw.decode("latin-1")
    return value


def clean_header(value: str, limit: int = MAX_HEADER_CHARS) -> str:
    """Unfold, drop control characters (CR/LF injected into a value cannot start a new header)."""
    if len(value) <= limit and value.isprintable():  # the common case: one clean line
        return value.strip()
    return _WS_RE.sub(" ", _CONTROL_RE.sub(" ", value[:limit * 2])).strip()[:limit]


def decode_header_value(value: object) -> str:
    """RFC 2047 encoded words decoded; unknown charsets and broken encodings handled without raising."""
    text = to_text(value)
    if "=?" not in text:
        return clean_header(text)
    try:
        chunks = email.header.decode_header(text)
    except Exception:  # noqa: BLE001 - email.errors.HeaderParseError, binascii errors
        return clean_header(text)
    out = []
    for chunk, charset in chunks:
        out.append(decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    # decode_header drops the whitespace between an encoded word and plain text inconsistently
    return clean_header("".join(out) if len(chunks) > 1 else out[0] if out else "")


# --- header fields ------------------------------------------------------------------------------


class Fields(dict):
    """Header fields by lower-case name, each name's values in the order read, as text (not
    RFC 2047-decoded, not unfolded). Also the shape of RFC 3464 / RFC 5965 report fields."""

    def first(self, name: str) -> str:
        values = self.get(name.lower())
        return values[0] if values else ""

    def get_all(self, name: str) -> list[str]:
        return self.get(name.lower()) or []


def header_fields(msg: Message) -> Fields:
    """The header fields of a parsed message or part, as read."""
    fields = Fields()
    for name, value in msg._headers:  # (name, raw value) pairs as read; raw_items() copies them
        lname = name.lower() if name.isascii() else to_text(name).strip().lower()
        values = fields.get(lname)
        text = value if value.__class__ is str and value.isascii() else to_text(value)
        if values is None:
            fields[lname] = [text]
        elif len(values) < MAX_VALUES_PER_NAME:
            values.append(text)
    return fields


def parse_header_block(text: str) -> Fields:
    """The header fields at the top of a block of text (RFC 5322 §2.2), as the parser reads them."""
    return header_fields(email.parser.HeaderParser().parsestr(text))


_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9-]{0,60}):[ \t]*(.*)$")


def field_lines(text: str) -> Iterator[tuple[str, str]]:
    """(lower name, unfolded value) of each "Name: value" field in a text; ("", "") at each blank
    line, which separates the blocks of an RFC 3464 §2.1 delivery-status body. Other lines are skipped."""
    name, value = None, ""
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and name is not None:
            value += " " + line.strip()
            continue
        if name is not None:
            yield name, value.strip()
            name = None
        m = _FIELD.match(line)
        if m:
            name, value = m.group(1).lower(), m.group(2)
        elif not line.strip():
            yield "", ""
    if name is not None:
        yield name, value.strip()


def parse_fields(text: str) -> Fields:
    """Every field of a text (all blocks together): name -> values."""
    fields = Fields()
    for name, value in field_lines(text):
        if name:
            fields.setdefault(name, []).append(value)
    return fields


# --- parsing, with big base64 runs kept out of the parser ----------------------------------------

#: Messages larger than this have their big base64 runs cut out before the stdlib parser reads
#: them (it would otherwise hold each attachment three times: as lines, as a joined payload, and
#: decoded). The runs are read back from the raw bytes when a part is decoded.
ELIDE_MIN_MESSAGE = 1 << 20
_B64_RUN = re.compile(rb"(?:^[A-Za-z0-9+/=]{16,998}\r?\n){2000,}", re.M)
_ELIDED_TOKEN = "MAILGATE-ELIDED-"
_ELIDED_RE = re.compile(_ELIDED_TOKEN + r"(\d+)\r?\n?")


class Elided:
    """Spans of the raw message replaced by one token line each in what the parser saw."""

    def __init__(self, raw: bytes, spans: list[tuple[int, int]]):
        self.raw, self.spans = raw, spans

    def expand(self, payload: str) -> bytes:
        out, pos = [], 0
        for m in _ELIDED_RE.finditer(payload):
            out.append(payload[pos:m.start()].encode("ascii", "surrogateescape"))
            i = int(m.group(1))
            if i < len(self.spans):
                start, end = self.spans[i]
                out.append(self.raw[start:end])
            pos = m.end()
        out.append(payload[pos:].encode("ascii", "surrogateescape"))
        return b"".join(out)

    def expand_bytes(self, data: bytes) -> bytes:
        return self.expand(data.decode("ascii", "surrogateescape")) if _ELIDED_TOKEN.encode() in data else data

    def encoded_size(self, payload: str) -> int:
        """Base64 characters in the payload, counting the elided spans without copying them."""
        n = 0
        for m in _ELIDED_RE.finditer(payload):
            i = int(m.group(1))
            if i < len(self.spans):
                start, end = self.spans[i]
                n += (end - start) - self.raw.count(b"\n", start, end) - self.raw.count(b"\r", start, end)
        rest = _ELIDED_RE.sub("", payload).strip()
        return n + len(rest) - rest.count("\n") - rest.count("\r")


def _elide(raw: bytes) -> tuple[bytes, Elided | None]:
    if len(raw) < ELIDE_MIN_MESSAGE:
        return raw, None
    pieces, spans, pos = [], [], 0
    for m in _B64_RUN.finditer(raw):
        pieces.append(raw[pos:m.start()])
        pieces.append(f"{_ELIDED_TOKEN}{len(spans)}\n".encode())
        spans.append((m.start(), m.end()))
        pos = m.end()
    if not spans:
        return raw, None
    pieces.append(raw[pos:])
    return b"".join(pieces), Elided(raw, spans)


def parse_bytes(raw: bytes) -> tuple[Message, Elided | None]:
    """The message tree of raw RFC 5322 bytes (compat32: lenient) and what was elided from it."""
    reduced, elided = _elide(raw)
    return email.message_from_bytes(reduced), elided  # the default policy is compat32


# --- parts --------------------------------------------------------------------------------------

def content_type_of(msg: Message) -> str:
    try:
        return msg.get_content_type()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"


def _decoded_payload(msg: Message, elided: Elided | None) -> bytes | None:
    """The part's bytes after its Content-Transfer-Encoding (RFC 2045 §6), elided runs restored."""
    if elided is not None:
        payload = msg.get_payload()
        if isinstance(payload, str) and _ELIDED_TOKEN in payload:
            data = elided.expand(payload)
            if _cte(msg) == "base64":
                try:
                    return binascii.a2b_base64(data)
                except (binascii.Error, ValueError):
                    return data
            return data
    return msg.get_payload(decode=True)


def _cte(msg: Message) -> str:
    return str(msg.get("content-transfer-encoding", "")).strip().lower()


def _as_bytes(msg: Message) -> bytes:
    try:
        return msg.as_bytes()
    except Exception:  # noqa: BLE001
        return b""


def _as_text(msg: Message) -> str:
    try:
        return msg.as_string()
    except Exception:  # noqa: BLE001
        return "\n".join(f"{k}: {v}" for k, v in msg.items())


def _blocks_text(msg: Message, blocks: list) -> str:
    """The text of a message/* part the parser split into header blocks (a message/delivery-status
    body is RFC 3464 §2.1 field blocks); when the part declared a transfer encoding, the parser
    read the encoded text as fields, so it is decoded here."""
    text = "\n\n".join(_as_text(b) for b in blocks if isinstance(b, Message))
    cte = _cte(msg)
    if cte in ("quoted-printable", "base64"):
        try:
            data = quopri.decodestring(text.encode("latin-1", "replace")) if cte == "quoted-printable" \
                else base64.b64decode("".join(text.split()) + "==", validate=False)
            text = decode_bytes(data, None)
        except ValueError:  # binascii.Error included
            pass
    return text


@dataclass
class Part:
    """A leaf of a message's MIME tree: a part that is not a multipart, or an attached message
    (message/*, not entered). `msg` is the standard library's object for it."""

    msg: Message = field(repr=False)
    content_type: str
    depth: int = 0
    elided: Elided | None = field(default=None, repr=False)

    @cached_property
    def disposition(self) -> str:
        try:
            return (self.msg.get_content_disposition() or "").lower()
        except Exception:  # noqa: BLE001
            return ""

    @cached_property
    def filename(self) -> str:
        """The file name (Content-Disposition filename, else Content-Type name; RFC 2231 / 2047)."""
        try:
            name = self.msg.get_filename() or self.msg.get_param("name") or ""
        except Exception:  # noqa: BLE001
            return ""
        if isinstance(name, tuple):  # RFC 2231 value the library could not collapse
            name = email.utils.collapse_rfc2231_value(name)
        return decode_header_value(name)[:255]

    @property
    def content_id(self) -> str:
        return clean_header(to_text(self.msg.get("content-id", "")), 500).strip("<>")

    def charset(self) -> str | None:
        try:
            return self.msg.get_content_charset()
        except Exception:  # noqa: BLE001
            return None

    @cached_property
    def text(self) -> str:
        """The part as text: transfer encoding undone, charset decoded (never raises)."""
        payload = self.msg.get_payload()
        if isinstance(payload, list):
            return fix_jis(_blocks_text(self.msg, payload))
        try:
            data = _decoded_payload(self.msg, self.elided)
        except Exception:  # noqa: BLE001 - a broken part still gives its raw text
            data = None
        if data is None:
            return fix_jis(to_text(payload)) if isinstance(payload, str) else ""
        return fix_jis(decode_bytes(data, self.charset()))

    def data(self) -> bytes:
        """The decoded bytes (decoded now, not kept: call once and store them); an attached
        message is its whole RFC 5322 text."""
        msg = self.msg
        try:
            if msg.is_multipart() or self.content_type.startswith("message/"):
                payload = msg.get_payload()
                data = _as_bytes(payload[0] if isinstance(payload, list) and len(payload) == 1 else msg)
                return self.elided.expand_bytes(data) if self.elided is not None else data
            return _decoded_payload(msg, self.elided) or b""
        except Exception:  # noqa: BLE001 - a broken part still gives its raw text
            return to_text(msg.get_payload()).encode("utf-8", "replace") if not msg.is_multipart() else b""

    def size(self) -> int:
        """The decoded size, estimated without decoding: base64 carries 3 bytes in 4 characters;
        an attached message/rfc822 counts its text; other message/* and multiparts 0."""
        if self.content_type.startswith("message/") or self.msg.is_multipart():
            return len(_as_bytes(self.msg)) if self.content_type == "message/rfc822" else 0
        payload = self.msg.get_payload()
        if not isinstance(payload, str):
            return 0
        if _cte(self.msg) == "base64":
            stripped = payload.rstrip()
            pad = len(stripped) - len(stripped.rstrip("="))
            if self.elided is not None and _ELIDED_TOKEN in payload:
                return max(0, self.elided.encoded_size(payload) * 3 // 4 - pad)
            n = len(stripped) - stripped.count("\n") - stripped.count("\r") - stripped.count(" ")
            return max(0, n * 3 // 4 - pad)
        return len(payload)

    def attached_message(self) -> Message | None:
        """The message a message/* part carries (message/rfc822, message/global, the header-only
        kinds), else None. message/delivery-status holds field blocks (RFC 3464), not a message."""
        if not self.content_type.startswith("message/") or self.content_type.endswith("delivery-status"):
            return None
        payload = self.msg.get_payload()
        return payload[0] if isinstance(payload, list) and payload and isinstance(payload[0], Message) else None

    def attached_fields(self) -> Fields | None:
        """The header fields of the message this part carries or quotes (message/rfc822,
        text/rfc822-headers, ...); None when the part holds no text at all."""
        inner = self.msg.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return header_fields(inner[0])
        text = self.text
        if not text:
            return None
        try:
            return parse_header_block(text.lstrip())
        except Exception:  # noqa: BLE001 - the header parser is lenient; this is a last resort
            return None


def walk(msg: Message, elided: Elided | None = None, *, max_parts: int = MAX_PARTS,
         max_depth: int = MAX_DEPTH) -> tuple[list[Part], bool]:
    """The leaf parts of a message in document order, and False when the walk stopped early
    (more than `max_parts` parts or deeper than `max_depth`). A multipart whose boundary never
    occurs has a text payload: it is a leaf, with its multipart/* type."""
    leaves: list[Part] = []
    stack: list[tuple[Message, int]] = [(msg, 0)]
    seen = 0
    while stack:
        part, depth = stack.pop()
        seen += 1
        if seen > max_parts or depth > max_depth:
            return leaves, False
        ctype = content_type_of(part)
        if part.is_multipart() and not ctype.startswith("message/"):
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((child, depth + 1) for child in reversed(children) if isinstance(child, Message))
            continue
        leaves.append(Part(part, ctype, depth, elided))
    return leaves, True
