"""Pure parsing of a raw message into what routing needs (no network, no AWS).

`parse(raw)` never raises on bad input: malformed MIME, unknown charsets, broken base64 or
quoted-printable, CR/LF injected into header values and missing headers all give a
`ParsedMessage` whose `defects` say what was wrong.

The parser is the standard library's (RFC 5322 / MIME) in its `compat32` policy: it is the
lenient one (it never raises while reading a header), and we decode headers ourselves (RFC 2047
encoded words, RFC 2231 parameters) so that one hostile header cannot stop the whole message.
Attachment bytes are decoded only when asked (`Attachment.data()`), to keep a 30 MB message's
peak memory low.
"""

from __future__ import annotations

import binascii
import codecs
import email
import email.header
import email.policy
import email.utils
import hashlib
import html as html_lib
import re
from dataclasses import dataclass, field
from email.message import Message
from functools import cached_property

#: RFC 5322 header names whose addresses are recipients that survive a redirection
#: (Delivered-To / X-Original-To are added by the redirecting MTA; Resent-To by RFC 5322 §3.6.6).
RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "to", "cc", "resent-to")
#: References considered when looking up the thread (Odoo looks at the whole list; we keep the newest 32)
MAX_REFERENCES = 32
#: Header values longer than this are cut (RFC 5322 §2.1.1 caps a line at 998 characters; a
#: folded header may be longer, but nothing we route on needs more).
MAX_HEADER_CHARS = 8192
MAX_ADDRESSES = 10_000
#: RFC 5321 §4.5.3.1: a path is at most 256 octets, local part 64 + domain 255 at most; longer
#: "addresses" are dropped (they also could not be keys in the table: DynamoDB sort keys <= 1 KB)
MAX_ADDRESS_CHARS = 320

_MSGID_RE = re.compile(r"<([^<>\s]{1,500})>")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_WS_RE = re.compile(r"\s+")


def _to_text(value: object) -> str:
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


def _decode_bytes(data: bytes, charset: str | None) -> str:
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


def clean_header(value: str, limit: int = MAX_HEADER_CHARS) -> str:
    """Unfold, drop control characters (CR/LF injected into a value cannot start a new header)."""
    if len(value) <= limit and value.isprintable():  # the common case: one clean line
        return value.strip()
    return _WS_RE.sub(" ", _CONTROL_RE.sub(" ", value[:limit * 2])).strip()[:limit]


def decode_header_value(value: object) -> str:
    """RFC 2047 encoded words decoded; unknown charsets and broken encodings handled without raising."""
    text = _to_text(value)
    if "=?" not in text:
        return clean_header(text)
    try:
        chunks = email.header.decode_header(text)
    except Exception:  # noqa: BLE001 - email.errors.HeaderParseError, binascii errors
        return clean_header(text)
    out = []
    for chunk, charset in chunks:
        out.append(_decode_bytes(chunk, charset) if isinstance(chunk, bytes) else chunk)
    # decode_header drops the whitespace between an encoded word and plain text inconsistently
    return clean_header("".join(out) if len(chunks) > 1 else out[0] if out else "")


_SIMPLE_ADDR = re.compile(r'\s*(?:([A-Za-z0-9 ._-]*?)\s*<([A-Za-z0-9._%+=-]+@[A-Za-z0-9.-]+)>|([A-Za-z0-9._%+=-]+@[A-Za-z0-9.-]+))\s*')


def _addresses(values: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-cased address) pairs; entries without an '@' are dropped."""
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
    _part: Message | None = field(default=None, repr=False, compare=False)
    _elided: "_Elided | None" = field(default=None, repr=False, compare=False)

    def data(self) -> bytes:
        """The decoded bytes (decoded now, not kept: call once and store them)."""
        if self._part is None:
            return b""
        try:
            if self._part.is_multipart() or self.content_type.startswith("message/"):
                payload = self._part.get_payload()
                inner = payload[0] if isinstance(payload, list) and len(payload) == 1 else self._part
                data = inner.as_bytes() if inner is not self._part else _as_bytes_body(self._part)
                return self._elided.expand_bytes(data) if self._elided is not None else data
            return _decoded_payload(self._part, self._elided) or b""
        except Exception:  # noqa: BLE001 - a broken part still gives its raw text
            return _to_text(self._part.get_payload()).encode("utf-8", "replace") if not self._part.is_multipart() else b""

    def to_dict(self) -> dict:
        return {"filename": self.filename, "content_type": self.content_type, "size": self.size,
                "inline": self.inline, "content_id": self.content_id}


def _as_bytes_body(part: Message) -> bytes:
    try:
        return part.as_bytes()
    except Exception:  # noqa: BLE001
        return b""


@dataclass
class ParsedMessage:
    """What the gateway knows about one raw message. Every text field is decoded and single-line.

    Headers are read at parse time (routing needs them); the bodies and attachments are read on
    first use (routing does not), so classifying a message costs little more than the stdlib parse.
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
    raw_headers: dict[str, list[str]] = field(default_factory=dict, repr=False)  # lower name -> raw values
    _msg: Message | None = field(default=None, repr=False, compare=False)
    _elided: "_Elided | None" = field(default=None, repr=False, compare=False)
    _body: tuple[str, str, list[Attachment]] | None = field(default=None, repr=False, compare=False)

    @property
    def headers(self) -> dict[str, list[str]]:
        return self.raw_headers

    def header(self, name: str) -> str:
        """The first value of a header, decoded (RFC 2047) and on one line; "" when absent."""
        values = self.raw_headers.get(name.lower())
        return decode_header_value(values[0]) if values else ""

    def _load_body(self) -> tuple[str, str, list[Attachment]]:
        if self._body is None:
            body: list = ["", "", []]
            if self._msg is not None:
                try:
                    _read_body(self._msg, self, body)
                except Exception as exc:  # noqa: BLE001
                    self.defects.append(f"body: {type(exc).__name__}: {exc}")
            self._body = (body[0], body[1], body[2])
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

    def attachment_types(self) -> list[str]:
        return [a.content_type for a in self.attachments]

    @cached_property
    def reply_text(self) -> str:
        """The new text of a reply: quoted history and signature trimmed (see `extract_reply`)."""
        return extract_reply(self.text or html_to_text(self.html, drop_quotes=True))

    def summary(self) -> dict:
        return {
            "message_id": self.message_id, "subject": self.subject, "date": self.date,
            "from": self.sender, "from_name": self.sender_name, "return_path": self.return_path,
            "to": self.to, "cc": self.cc, "recipients": self.header_recipients[:200],
            "in_reply_to": self.in_reply_to, "references": self.references,
            "content_type": self.content_type, "size": self.raw_size, "digest": self.digest,
            "attachments": [a.to_dict() for a in self.attachments], "defects": self.defects,
        }


#: Messages larger than this have their big base64 runs cut out before the stdlib parser reads
#: them (it would otherwise hold each attachment three times: as lines, as a joined payload, and
#: decoded). The runs are read back from the raw bytes when an attachment is decoded.
ELIDE_MIN_MESSAGE = 1 << 20
_B64_RUN = re.compile(rb"(?:^[A-Za-z0-9+/=]{16,998}\r?\n){2000,}", re.M)
_ELIDED_TOKEN = "MAILGATE-ELIDED-"
_ELIDED_RE = re.compile(_ELIDED_TOKEN + r"(\d+)\r?\n?")


class _Elided:
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


def _elide(raw: bytes) -> tuple[bytes, _Elided | None]:
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
    return b"".join(pieces), _Elided(raw, spans)


def parse(raw: bytes) -> ParsedMessage:
    """Parse raw RFC 5322 bytes. Never raises for bad input (the failure is in `defects`)."""
    if not isinstance(raw, bytes):
        if not isinstance(raw, (bytearray, memoryview)):
            raise TypeError("parse() takes the raw message as bytes")
        raw = bytes(raw)
    parsed = ParsedMessage(raw_size=len(raw), digest=hashlib.sha256(raw).hexdigest())
    try:
        reduced, parsed._elided = _elide(raw)
        msg = email.message_from_bytes(reduced, policy=email.policy.compat32)
        del reduced
    except Exception as exc:  # noqa: BLE001 - the feed parser is lenient; this is a last resort
        parsed.defects.append(f"unparseable message: {type(exc).__name__}: {exc}")
        return parsed
    parsed._msg = msg
    try:
        _read_headers(msg, parsed)
    except Exception as exc:  # noqa: BLE001
        parsed.defects.append(f"headers: {type(exc).__name__}: {exc}")
    for defect in getattr(msg, "defects", [])[:20]:
        parsed.defects.append(type(defect).__name__)
    return parsed


def _read_headers(msg: Message, p: ParsedMessage) -> None:
    headers: dict[str, list[str]] = {}
    for name, value in msg._headers:  # (name, raw value) pairs as read; raw_items() copies them
        lname = name.lower() if name.isascii() else _to_text(name).strip().lower()
        values = headers.get(lname)
        if values is None:
            headers[lname] = [value if value.__class__ is str and value.isascii() else _to_text(value)]
        elif len(values) < 1000:
            values.append(value if value.__class__ is str and value.isascii() else _to_text(value))
    p.raw_headers = headers

    def first(name: str, limit: int = MAX_HEADER_CHARS) -> str:
        v = headers.get(name)
        return clean_header(v[0], limit) if v else ""

    def all_of(name: str) -> list[str]:
        return [clean_header(v, MAX_ADDRESS_HEADER_CHARS) for v in headers.get(name, ())]

    mid = first("message-id")
    ids = message_ids(mid)
    p.message_id = ids[0] if ids else mid.strip("<>")[:500].replace(" ", "")
    p.subject = p.header("subject")
    p.date = first("date")
    from_value = first("from", MAX_ADDRESS_HEADER_CHARS)
    froms = _addresses([from_value] if from_value else []) or _addresses(all_of("sender")[:1])
    if len(froms) > 1:
        # several mailboxes, or a hostile display name that parses as a group: the angle-addr wins
        angle = [a.lower() for a in re.findall(r"<([^<>\s]+@[^<>\s]+)>", from_value)]
        froms = [f for f in froms if f[1] in angle][:1] or froms
    if froms:
        p.sender_name, p.sender = froms[0]
    if "return-path" in headers:
        found = _addresses([first("return-path")])
        p.return_path = found[0][1] if found else ""  # RFC 5321 §4.5.5: <> is the null sender
    if "reply-to" in headers:
        p.reply_to = [a for _, a in _addresses(all_of("reply-to"))]
    p.to = [a for _, a in _addresses(all_of("to"))]
    p.cc = [a for _, a in _addresses(all_of("cc"))]
    recipients: list[str] = []
    for name in RECIPIENT_HEADERS:
        if name == "to":
            recipients += p.to
        elif name == "cc":
            recipients += p.cc
        elif name in headers:
            recipients += [a for _, a in _addresses(all_of(name))]
    p.header_recipients = _dedup(recipients)[:MAX_ADDRESSES]
    irt = message_ids(first("in-reply-to"))
    p.in_reply_to = irt[0] if irt else ""
    if "references" in headers or p.in_reply_to:
        refs = message_ids(" ".join(headers.get("references", ())))
        if p.in_reply_to:
            refs = [r for r in refs if r != p.in_reply_to] + [p.in_reply_to]
        p.references = _dedup(reversed(refs))[:MAX_REFERENCES][::-1]
    # RFC 2045 §5.2: no (or an invalid) Content-Type means text/plain
    ctype = first("content-type").partition(";")[0].strip().lower()
    p.content_type = ctype if ctype.count("/") == 1 and " " not in ctype else "text/plain"
    if p.content_type == "multipart/report":
        try:
            p.report_type = str(msg.get_param("report-type") or "").lower()
        except Exception:  # noqa: BLE001
            p.report_type = ""


# Address headers are kept encoded: RFC 2047 §5 encoded words are decoded in display names only,
# after the address is parsed, so an encoded "<x@evil>" or CR/LF cannot change the address.
_DECODED = frozenset({"subject", "thread-topic", "comments", "keywords"})
_ADDRESS_HEADERS = frozenset({"from", "sender", "reply-to", "to", "cc", "resent-to", "delivered-to", "x-original-to"})
MAX_ADDRESS_HEADER_CHARS = 1_000_000


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # noqa: BLE001
        return "application/octet-stream"


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or part.get_param("name") or ""
    except Exception:  # noqa: BLE001
        return ""
    if isinstance(name, tuple):  # RFC 2231 value the library could not collapse
        name = email.utils.collapse_rfc2231_value(name)
    return decode_header_value(name)[:255]


def _payload_size(part: Message, elided: "_Elided | None" = None) -> int:
    """Decoded size without decoding: base64 carries 3 bytes in 4 characters."""
    payload = part.get_payload()
    if not isinstance(payload, str):
        return 0
    cte = str(part.get("content-transfer-encoding", "")).strip().lower()
    if cte == "base64":
        stripped = payload.rstrip()
        pad = len(stripped) - len(stripped.rstrip("="))
        if elided is not None and _ELIDED_TOKEN in payload:
            return max(0, elided.encoded_size(payload) * 3 // 4 - pad)
        n = len(stripped) - stripped.count("\n") - stripped.count("\r") - stripped.count(" ")
        return max(0, n * 3 // 4 - pad)
    return len(payload)


def _decoded_payload(part: Message, elided: "_Elided | None") -> bytes | None:
    """The part's bytes after its Content-Transfer-Encoding (RFC 2045 §6), elided runs restored."""
    if elided is not None:
        payload = part.get_payload()
        if isinstance(payload, str) and _ELIDED_TOKEN in payload:
            data = elided.expand(payload)
            cte = str(part.get("content-transfer-encoding", "")).strip().lower()
            if cte == "base64":
                try:
                    return binascii.a2b_base64(data)
                except (binascii.Error, ValueError):
                    return data
            return data
    return part.get_payload(decode=True)


def _text_of(part: Message, elided: "_Elided | None" = None) -> str:
    data = _decoded_payload(part, elided)
    if data is None:
        payload = part.get_payload()
        return _to_text(payload) if isinstance(payload, str) else ""
    try:
        charset = part.get_content_charset()
    except Exception:  # noqa: BLE001
        charset = None
    return _decode_bytes(data, charset)


def _read_body(msg: Message, p: ParsedMessage, body: list) -> None:
    """Fill body = [text, html, attachments]: the first text/plain and text/html that are not
    attachments are the bodies; every other leaf part (and attached messages) is an attachment."""
    elided = p._elided
    attachments: list[Attachment] = body[2]
    stack: list[tuple[Message, int]] = [(msg, 0)]
    parts_seen = 0
    while stack:
        part, depth = stack.pop()
        parts_seen += 1
        if parts_seen > 1000 or depth > 30:
            p.defects.append("too many or too deeply nested MIME parts; the rest were not read")
            break
        ctype = _content_type(part)
        if part.is_multipart() and not ctype.startswith("message/"):
            children = part.get_payload()
            if isinstance(children, list):
                stack.extend((child, depth + 1) for child in reversed(children))
            continue
        try:
            disposition = (part.get_content_disposition() or "").lower()
        except Exception:  # noqa: BLE001
            disposition = ""
        filename = _filename(part)
        is_body_text = ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename
        if is_body_text and ctype == "text/plain" and not body[0]:
            body[0] = _text_of(part, elided)
            continue
        if is_body_text and ctype == "text/html" and not body[1]:
            body[1] = _text_of(part, elided)
            continue
        content_id = clean_header(_to_text(part.get("content-id", "")), 500).strip("<>")
        if ctype.startswith("message/") or part.is_multipart():
            size = len(_as_bytes_body(part)) if ctype == "message/rfc822" else 0
        else:
            size = _payload_size(part, elided)
        inline = disposition == "inline" or (bool(content_id) and disposition != "attachment")
        attachments.append(Attachment(
            filename=filename or _default_name(ctype, len(attachments)), content_type=ctype, size=size,
            inline=inline, content_id=content_id, _part=part, _elided=elided))


def _default_name(ctype: str, index: int) -> str:
    ext = {"message/rfc822": "eml", "text/plain": "txt", "text/html": "html",
           "message/delivery-status": "txt"}.get(ctype) or ctype.rpartition("/")[2][:10] or "bin"
    return f"part-{index + 1}.{ext}"


# --- HTML and reply text ---------------------------------------------------------------------

_DROP_BLOCKS = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.I | re.S)
_QUOTE_START = re.compile(
    r"<blockquote\b|<div[^>]+class=[\"'][^\"']*(gmail_quote|moz-cite-prefix|yahoo_quoted)|<div id=[\"']?(appendonsend|divRplyFwdMsg)",
    re.I)
_BREAKS = re.compile(r"<(br|/p|/div|/li|/tr|/h[1-6])\b[^>]*>", re.I)
_TAGS = re.compile(r"<[^>]+>")


def html_to_text(html: str, *, drop_quotes: bool = False) -> str:
    """Plain text of an HTML body (enough for routing and reply text; not a renderer)."""
    if not html:
        return ""
    html = _DROP_BLOCKS.sub("", html[:2_000_000])
    if drop_quotes:
        m = _QUOTE_START.search(html)
        if m:
            html = html[:m.start()]
    text = html_lib.unescape(_TAGS.sub("", _BREAKS.sub("\n", html)))
    lines = [line.strip() for line in text.replace("\xa0", " ").splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


_REPLY_HEADER = re.compile(
    r"^\s*(?:"
    r"On\b.{0,200}\bwrote:\s*$"                              # Gmail, Apple Mail, Thunderbird (en)
    r"|Le\b.{0,200}\ba écrit\s?:\s*$"                        # fr
    r"|Am\b.{0,200}\bschrieb.{0,80}:\s*$"                    # de
    r"|El\b.{0,200}\bescribió:\s*$"                          # es
    r"|-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original)\s*-{2,}"
    r"|_{10,}\s*$"                                            # Outlook separator line
    r"|(?:From|De|Von|Van)\s?:\s.+\n\s*\*?(?:Sent|Date|To|Gesendet|Datum|An|Envoy[ée]|Enviado|Para|À|Subject|Betreff|Objet)\s?:"  # Outlook header block
    r")", re.I | re.M)
_SIGNATURE = re.compile(r"^-- ?$", re.M)  # RFC 3676 §4.3 signature separator "-- "
_MOBILE_SIG = re.compile(r"^\s*(Sent from my \w+|Get Outlook for \w+|Envoyé de mon \w+|Von meinem \w+ gesendet)", re.I | re.M)


def trim_reply(text: str) -> str:
    """Our own trimmer: cut at the first quote header, drop '>' lines, cut the signature."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    m = _REPLY_HEADER.search(text)
    if m:
        text = text[:m.start()]
    lines = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    text = "\n".join(lines)
    for pattern in (_SIGNATURE, _MOBILE_SIG):
        m = pattern.search(text)
        if m and m.start() > 0:
            text = text[:m.start()]
    return text.strip()


_PARSER_CACHE: dict[str, object] = {}
REPLY_LANGUAGES = ["en", "de", "fr", "es", "it", "nl"]


def _library_reply(text: str) -> str | None:
    """mail-parser-reply's latest reply, with its compiled regexes built once per process."""
    try:
        from mailparser_reply.parser import EmailMessage
    except ImportError:  # pragma: no cover - it is a runtime dependency
        return None
    template = _PARSER_CACHE.get("template")
    if template is None:
        template = EmailMessage(text="", languages=list(REPLY_LANGUAGES))
        _ = template.HEADER_REGEX, template.SIGNATURE_REGEX, template.DISCLAIMERS_REGEX
        _PARSER_CACHE["template"] = template
    msg = EmailMessage(text=text, languages=list(REPLY_LANGUAGES),
                       _header_regex=template._header_regex, _signature_regex=template._signature_regex,
                       _disclaimers_regex=template._disclaimers_regex)
    return msg.read().latest_reply


MAX_REPLY_INPUT = 200_000


def extract_reply(text: str, *, method: str = "auto") -> str:
    """The reply's own words. `auto` uses mail-parser-reply and falls back to `trim_reply`
    where the library finds nothing or fails; `library` / `own` force one (for measuring)."""
    if not text:
        return ""
    text = text[:MAX_REPLY_INPUT]
    if method == "own":
        return trim_reply(text)
    if method == "auto":
        # the quoted history is not the reply: cut it first, so the library's many patterns run
        # over the few new lines only (its cost grows with the length of the text)
        m = _REPLY_HEADER.search(text)
        if m:
            text = text[:m.start()]
    try:
        found = _library_reply(text)
    except Exception:  # noqa: BLE001 - regex libraries have failed on hostile input
        found = None
    if method == "library":
        return (found or "").strip()
    found = (found or "").strip()
    if not found:
        return trim_reply(text)
    # The library keeps lines quoted with '>' at the end of a top-posted reply in some layouts.
    own = trim_reply(found)
    return own or found
